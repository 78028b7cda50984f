"""Delivery to agencies: a queue in the reports table, taken by workers, answered with receipts.

A completed, paid report is ``queued`` with ``next_attempt_at`` set, in the transaction that
charged it. Workers (``tamga worker``, any number, on any machine) take due reports with
:func:`claim_due`: rows locked with SKIP LOCKED on PostgreSQL, and a lease (``lease_until``)
written in the same transaction, so two workers never hold one report; a worker that dies
mid-delivery leaves a lease that runs out, and another worker takes the report over.
As a report first leaves (:func:`prepare_dispatch`), Tamga's dispatch confirmation is signed and
the report becomes ``sent``; the delivery itself happens outside any transaction. The agency's
gateway is idempotent by report id, so a delivery retried after a lost answer is still one
report on its side. Its signed receipt (:func:`record_receipt`) makes the report ``delivered``;
a failure (:func:`record_failure`) schedules the next attempt with a doubling backoff. The
check result comes later from the agency (:func:`record_result`). Receipts and results are
believed only if they verify with the agency's pinned certificate and name this report and
these bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import db
from ca.cms import CMSInvalid, verify_encapsulated
from filing.agencies import agency_certificate
from filing.errors import AgencyAnswerInvalid, FilingConflict, NotFound
from filing.models import Agency, Report, ReportSignature
from filing.reports import locked_report, record_event, signatures_of
from policies.dates import iso_utc
from policies.filing import FILING_POLICY, FilingPolicy
from policies.statuses import CheckStatus, DeliveryStatus

__all__ = [
    "Outgoing",
    "claim_due",
    "dispatch_statement",
    "prepare_dispatch",
    "record_failure",
    "record_receipt",
    "record_result",
    "retry_now",
]

IN_DELIVERY = (DeliveryStatus.QUEUED, DeliveryStatus.SENT)
Confirmer = Callable[[Mapping[str, str]], bytes]  # statement -> CMS (DER)


@dataclass(frozen=True)
class Outgoing:
    """What a worker sends: the report's id, the URL and the JSON body."""

    report_id: str
    url: str
    body: bytes


def claim_due(
    session: Session,
    *,
    now: datetime,
    owner: str,
    limit: int = 1,
    policy: FilingPolicy = FILING_POLICY,
) -> list[str]:
    """Take up to ``limit`` due reports for ``owner`` until ``now`` + the lease; their ids."""
    rows = session.scalars(
        select(Report)
        .where(
            Report.delivery_status.in_(IN_DELIVERY),
            Report.next_attempt_at <= now,
            or_(Report.lease_until.is_(None), Report.lease_until <= now),
        )
        .order_by(Report.next_attempt_at, Report.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    for row in rows:
        row.lease_until = now + policy.delivery_lease
        row.lease_owner = owner[:64]
        row.attempts += 1
    session.flush()
    return [row.id for row in rows]


def dispatch_statement(
    report: Report, sent_at: datetime, signatures: Sequence[ReportSignature]
) -> dict[str, str]:
    """What the dispatch confirmation states (signed by the operator, time-stamped by our TSA).

    ``signatures`` names each slot's signature file by the SHA-256 of its CMS, so the
    confirmation is evidence that these very signatures existed when the report left.
    """
    named = ",".join(
        f"{s.slot}:{hashlib.sha256(s.cms).hexdigest()}"
        for s in sorted(signatures, key=lambda s: s.slot)
    )
    return {
        "type": "dispatch-confirmation",
        "report_id": report.id,
        "document_sha256": report.document_sha256,
        "agency": report.agency_code,
        "office": report.office_code,
        "inn": report.inn,
        "kind": report.kind,
        "period": report.period,
        "sent_at": iso_utc(sent_at) or "",
        "signatures": named,
    }


def _owned(session: Session, report_id: str, owner: str) -> Report:
    report = locked_report(session, report_id)
    if report.lease_owner != owner[:64] or report.delivery_status not in IN_DELIVERY:
        raise FilingConflict(f"report {report_id} is not held by {owner} for delivery")
    return report


def prepare_dispatch(
    session: Session,
    report_id: str,
    *,
    owner: str,
    confirm: Confirmer,
    now: datetime,
    actor: str,
) -> Outgoing:
    """The request to send; as the report first leaves, its dispatch confirmation is signed
    and it becomes ``sent`` (a retry resends the same confirmation)."""
    report = _owned(session, report_id, owner)
    if report.delivery_status == DeliveryStatus.QUEUED or report.dispatch_confirmation is None:
        confirmation = confirm(dispatch_statement(report, now, signatures_of(session, report.id)))
        report.dispatch_confirmation = confirmation
        report.delivery_status = DeliveryStatus.SENT
        report.sent_at = now
        record_event(session, report, "sent", now=now, actor=actor, document=confirmation)
    agency = session.get_one(Agency, report.agency_code)
    body = {
        "report_id": report.id,
        "agency": report.agency_code,
        "office": report.office_code,
        "inn": report.inn,
        "kind": report.kind,
        "period": report.period,
        "document": base64.b64encode(report.document).decode(),
        "document_sha256": report.document_sha256,
        "signatures": [base64.b64encode(s.cms).decode() for s in signatures_of(session, report.id)],
        "dispatch_confirmation": base64.b64encode(report.dispatch_confirmation or b"").decode(),
    }
    return Outgoing(report.id, f"{agency.endpoint}/reports/{report.id}", json.dumps(body).encode())


def _verified(agency: Agency, der: bytes, expected_type: str) -> dict[str, Any]:
    try:
        content, _ = verify_encapsulated(der, agency_certificate(agency))
    except CMSInvalid as ex:
        raise AgencyAnswerInvalid(
            f"the {expected_type} does not verify with {agency.code}'s certificate: {ex}"
        ) from None
    try:
        statement = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AgencyAnswerInvalid(f"the {expected_type} is not JSON") from None
    if not isinstance(statement, dict) or statement.get("type") != expected_type:
        raise AgencyAnswerInvalid(f"the signed content is not a {expected_type}")
    return statement


def record_receipt(
    session: Session, report_id: str, receipt: bytes, *, now: datetime, actor: str
) -> Report:
    """Record the agency's signed delivery receipt: the report is ``delivered``. A second
    receipt for a delivered report changes nothing."""
    report = locked_report(session, report_id)
    agency = session.get_one(Agency, report.agency_code)
    statement = _verified(agency, receipt, "delivery-receipt")
    if (
        statement.get("report_id") != report.id
        or statement.get("document_sha256") != report.document_sha256
    ):
        raise AgencyAnswerInvalid("the receipt names another report or other bytes")
    if report.delivery_status == DeliveryStatus.DELIVERED:
        return report
    if report.delivery_status != DeliveryStatus.SENT:
        raise FilingConflict(f"the report is {report.delivery_status}, not sent")
    number = statement.get("registration_number")
    report.registration_number = str(number)[:64] if number else None
    report.receipt = receipt
    report.delivery_status = DeliveryStatus.DELIVERED
    report.check_status = CheckStatus.AWAITING_CHECK
    report.delivered_at = now
    report.lease_until = report.lease_owner = report.next_attempt_at = None
    report.last_error = None
    record_event(
        session,
        report,
        "delivered",
        now=now,
        actor=actor,
        document=receipt,
        registration_number=report.registration_number,
        received_at=str(statement.get("received_at", "")),
    )
    db.append(
        session,
        actor=actor,
        action="filing.report.delivered",
        object=f"report:{report.id}",
        details={"agency": report.agency_code, "registration_number": report.registration_number},
        now=now,
    )
    return report


def record_failure(
    session: Session,
    report_id: str,
    error: str,
    *,
    owner: str,
    now: datetime,
    actor: str,
    policy: FilingPolicy = FILING_POLICY,
) -> Report:
    """A delivery attempt failed: keep it as evidence, try again after the backoff."""
    report = locked_report(session, report_id)
    if report.lease_owner != owner[:64] or report.delivery_status not in IN_DELIVERY:
        return report  # delivered meanwhile by another worker, or taken over
    wait = policy.retry_after(report.attempts)
    report.last_error = error[:500]
    report.lease_until = report.lease_owner = None
    report.next_attempt_at = now + wait
    record_event(
        session,
        report,
        "delivery_failed",
        now=now,
        actor=actor,
        attempt=report.attempts,
        error=error[:500],
        next_attempt_at=iso_utc(report.next_attempt_at),
    )
    return report


def retry_now(session: Session, report_id: str, *, now: datetime, actor: str) -> Report:
    """An officer's "retry delivery": a report in delivery is due at once (its lease kept)."""
    report = locked_report(session, report_id)
    if report.delivery_status not in IN_DELIVERY:
        raise FilingConflict(f"the report is {report.delivery_status}: nothing to deliver")
    report.next_attempt_at = now
    record_event(session, report, "retry", now=now, actor=actor)
    return report


def _unverified_report_id(der: bytes) -> str:
    """The report id a result names, read before its signature is checked (to find the agency
    whose certificate must verify it; nothing is believed until it does)."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(der)
        content = info["content"]["encap_content_info"]["content"].native
        statement = json.loads(content)
        report_id = statement["report_id"]
    except Exception:  # any malformed input is one answer
        raise AgencyAnswerInvalid("the body is not a signed check result (CMS with JSON)") from None
    if not isinstance(report_id, str):
        raise AgencyAnswerInvalid("the check result names no report")
    return report_id


def record_result(session: Session, der: bytes, *, now: datetime) -> Report:
    """Record an agency's signed check result (accepted or rejected, with its message).

    Believed only if it verifies with the pinned certificate of the agency the report went to.
    A repeated result changes nothing; a result before the receipt is a conflict (the agency
    retries).
    """
    report_id = _unverified_report_id(der)
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(f"no report {report_id}")
    report = locked_report(session, report_id)
    agency = session.get_one(Agency, report.agency_code)
    statement = _verified(agency, der, "check-result")
    if statement.get("report_id") != report.id or statement.get("agency") != agency.code:
        raise AgencyAnswerInvalid("the result names another report or agency")
    result = statement.get("result")
    if result not in (CheckStatus.ACCEPTED, CheckStatus.REJECTED):
        raise AgencyAnswerInvalid("the result is accepted or rejected")
    if report.check_status in (CheckStatus.ACCEPTED, CheckStatus.REJECTED):
        return report
    if report.delivery_status != DeliveryStatus.DELIVERED:
        raise FilingConflict(f"the report is {report.delivery_status}: no receipt yet")
    message = statement.get("message")
    report.check_status = CheckStatus(result)
    report.check_message = str(message)[:2000] if message else None
    report.check_result = der
    record_event(
        session,
        report,
        "checked",
        now=now,
        actor=f"agency:{agency.code}",
        document=der,
        result=str(result),
        message=report.check_message or "",
        checked_at=str(statement.get("checked_at", "")),
    )
    db.append(
        session,
        actor=f"agency:{agency.code}",
        action="filing.report.checked",
        object=f"report:{report.id}",
        details={"result": str(result)},
        now=now,
    )
    return report

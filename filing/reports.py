"""Reports: filed by a portal, signed by the head and the accountant, charged at completion.

A report is the exact bytes the portal sent (SHA-256 recorded). It needs two signatures over
those bytes, one per slot (head, accountant), each verified at intake by
:func:`crl.check_signature` (the same check the §8 dispute procedure uses) and then by
:func:`ca.usage.may_sign` (the certificate's role fits the slot, its company is the report's or
a power of attorney covers it). The second signature completes the report, and in the same
transaction the report is charged (its tariff, and the month's cloud-storage fee at the first
completed report of the month of a subscriber with cloud keys) and queued for delivery, or, if
the balance does not cover what is due, nothing moves and it waits in ``awaiting_payment``.
A waiting report goes first: a later report of the same subscriber waits behind it
(first in, first out), and :func:`release_waiting` charges and queues them in that order as
top-ups arrive. Until it leaves, a signer may stop it; its charge is then reversed.

Every transition appends one ``report_events`` row (append-only); charges are journalled by the
ledger, signatures and stops in the audit journal.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

import billing
import db
from ca.errors import InvalidField, UsageRefused
from ca.models import Certificate, Subscriber
from ca.registry import clean_text
from ca.usage import may_sign
from crl import check_signature
from filing.errors import (
    FilingConflict,
    IdempotencyConflict,
    InvalidReport,
    NotFound,
    SignatureRefused,
)
from filing.models import Agency, AgencyOffice, Report, ReportEvent, ReportSignature
from policies.cert_profiles import CertRole, signs_as
from policies.filing import (
    FILING_POLICY,
    REPORT_KINDS,
    FilingPolicy,
    Period,
    PeriodType,
    ReportKind,
    parse_period,
    report_tariff,
)
from policies.identifiers import is_inn
from policies.statuses import CertificateStatus, CheckStatus, DeliveryStatus
from policies.tariffs import TARIFFS, TariffSchedule, UnknownTariff

__all__ = [
    "SIGNING_STATUSES",
    "STOPPABLE",
    "Filed",
    "add_signature",
    "file_report",
    "record_event",
    "release_waiting",
    "signatures_of",
    "stop_report",
]

_BISHKEK = ZoneInfo("Asia/Bishkek")
SLOTS = ("head", "accountant")
SIGNING_STATUSES = frozenset(
    {
        DeliveryStatus.AWAITING_SIGNATURES,
        DeliveryStatus.AWAITING_HEAD,
        DeliveryStatus.AWAITING_ACCOUNTANT,
    }
)
# A report can be stopped until it leaves (the dispatch confirmation is issued as it leaves).
STOPPABLE = SIGNING_STATUSES | {DeliveryStatus.AWAITING_PAYMENT, DeliveryStatus.QUEUED}


@dataclass(frozen=True)
class Filed:
    report: Report
    replayed: bool


def record_event(
    session: Session,
    report: Report,
    event: str,
    *,
    now: datetime,
    actor: str,
    document: bytes | None = None,
    **details: Any,
) -> ReportEvent:
    """Append the report's transition (its statuses as they are now) to its history."""
    row = ReportEvent(
        report_id=report.id,
        at=now,
        actor=actor,
        event=event,
        delivery_status=report.delivery_status,
        check_status=report.check_status,
        details=details,
        document=document,
    )
    session.add(row)
    session.flush()
    return row


def locked_report(session: Session, report_id: str) -> Report:
    row = session.scalars(
        select(Report)
        .where(Report.id == report_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no report {report_id}")
    return row


# --- filing ---------------------------------------------------------------------------------


def _fingerprint(**fields: str) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class _Fields:
    inn: str
    kind: ReportKind
    period: Period
    agency: Agency
    office: str
    file_name: str


def _check_company(session: Session, inn: object, errors: dict[str, str]) -> str | None:
    if not isinstance(inn, str) or not is_inn(inn):
        errors["inn"] = "is the subscriber's 14-digit INN"
        return None
    if session.get(Subscriber, inn) is None:
        errors["inn"] = f"no subscriber with INN {inn}"
        return None
    return inn


def _check_form(kind: object, period: object, errors: dict[str, str]) -> tuple[Any, Any]:
    report_kind = REPORT_KINDS.get(kind) if isinstance(kind, str) else None
    if report_kind is None:
        errors["kind"] = f"is one of the report forms {', '.join(sorted(REPORT_KINDS))}"
    parsed = parse_period(period)
    if parsed is None:
        errors["period"] = "is a month (2026-11), a quarter (2026-Q3) or a year (2026)"
    elif report_kind is not None and parsed.type not in report_kind.periods:
        allowed = ", ".join(sorted(p.value for p in report_kind.periods))
        errors["period"] = f"form {report_kind.code} is filed {allowed}, not {parsed.type.value}"
        parsed = None
    return report_kind, parsed


def _check_destination(
    session: Session,
    report_kind: ReportKind | None,
    agency: object,
    office: object,
    errors: dict[str, str],
) -> tuple[Agency | None, str | None]:
    row = session.get(Agency, agency) if isinstance(agency, str) else None
    if row is None or not row.active:
        errors["agency"] = "is a registered agency's code"
        row = None
    elif report_kind is not None and report_kind.agency != row.code:
        errors["agency"] = f"form {report_kind.code} goes to {report_kind.agency}"
        row = None
    if not isinstance(office, str) or not office:
        errors["office"] = "is the code of one of the agency's offices"
        return row, None
    if row is None:
        return row, None
    found = session.scalars(
        select(AgencyOffice).where(
            AgencyOffice.agency_code == row.code,
            AgencyOffice.code == office,
            AgencyOffice.active.is_(True),
        )
    ).one_or_none()
    if found is None:
        errors["office"] = f"{row.code} has no office {office!r}"
        return row, None
    return row, office


def _check_file(
    file_name: object, document: bytes, policy: FilingPolicy, errors: dict[str, str]
) -> str | None:
    if not document:
        errors["document"] = "the report file is empty"
    elif len(document) > policy.max_document_bytes:
        errors["document"] = f"is larger than {policy.max_document_bytes} bytes"
    if not isinstance(file_name, str):
        errors["file_name"] = "is the report file's name"
        return None
    try:
        name = clean_text(file_name, "file_name")
    except InvalidField as ex:
        errors["file_name"] = ex.message
        return None
    if not name or len(name) > 200 or "/" in name or "\\" in name or name in (".", ".."):
        errors["file_name"] = "is 1 to 200 characters, without / or \\"
        return None
    return name


def _checked_fields(
    session: Session,
    *,
    inn: object,
    kind: object,
    period: object,
    agency: object,
    office: object,
    file_name: object,
    document: bytes,
    now: datetime,
    policy: FilingPolicy,
    tariffs: TariffSchedule,
) -> _Fields:
    """Every field checked, every bad one named at once (:class:`InvalidReport`)."""
    errors: dict[str, str] = {}
    company = _check_company(session, inn, errors)
    report_kind, parsed = _check_form(kind, period, errors)
    agency_row, office_code = _check_destination(session, report_kind, agency, office, errors)
    name = _check_file(file_name, document, policy, errors)
    if parsed is not None and agency_row is not None and report_kind is not None:
        tariff = tariff_code(tariffs, agency_row.code, parsed.type, report_kind.code, now)
        try:
            tariffs.price(tariff, now.astimezone(_BISHKEK).date())
        except UnknownTariff:
            errors["period"] = f"no tariff {tariff} is in force: the operator has no price for it"
    if (
        errors
        or company is None
        or report_kind is None
        or parsed is None
        or agency_row is None
        or office_code is None
        or name is None
    ):
        raise InvalidReport(errors or {"report": "is incomplete"})
    return _Fields(company, report_kind, parsed, agency_row, office_code, name)


def file_report(
    session: Session,
    *,
    inn: object,
    kind: object,
    period: object,
    agency: object,
    office: object,
    file_name: object,
    document: bytes,
    client_id: int | None,
    request_key: str | None,
    now: datetime,
    actor: str,
    policy: FilingPolicy = FILING_POLICY,
    tariffs: TariffSchedule = TARIFFS,
) -> Filed:
    """File a report (awaiting signatures). Every bad field is named at once; nothing is written
    then. A replay of ``request_key`` with the same content returns the first report."""
    digest = hashlib.sha256(document).hexdigest()
    fields = _checked_fields(
        session,
        inn=inn,
        kind=kind,
        period=period,
        agency=agency,
        office=office,
        file_name=file_name,
        document=document,
        now=now,
        policy=policy,
        tariffs=tariffs,
    )
    print_ = _fingerprint(
        inn=fields.inn,
        kind=fields.kind.code,
        period=fields.period.text,
        agency=fields.agency.code,
        office=fields.office,
        file_name=fields.file_name,
        sha256=digest,
    )
    if request_key is not None:
        earlier = session.scalars(select(Report).where(Report.request_key == request_key)).first()
        if earlier is not None:
            if earlier.request_print != print_:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used for a different report",
                    {"Idempotency-Key": "used before for another report"},
                )
            return Filed(earlier, replayed=True)
    report = Report(
        id=str(uuid.uuid4()),
        inn=fields.inn,
        client_id=client_id,
        kind=fields.kind.code,
        period=fields.period.text,
        period_type=fields.period.type.value,
        agency_code=fields.agency.code,
        office_code=fields.office,
        file_name=fields.file_name,
        document=document,
        document_sha256=digest,
        size=len(document),
        filed_at=now,
        filed_by=actor,
        request_key=request_key,
        request_print=print_,
        delivery_status=DeliveryStatus.AWAITING_SIGNATURES,
        check_status=CheckStatus.NONE,
        attempts=0,
    )
    session.add(report)
    session.flush()
    record_event(session, report, "filed", now=now, actor=actor, document_sha256=digest)
    return Filed(report, replayed=False)


# --- signatures -----------------------------------------------------------------------------


def signatures_of(session: Session, report_id: str) -> list[ReportSignature]:
    return list(
        session.scalars(
            select(ReportSignature)
            .where(ReportSignature.report_id == report_id)
            .order_by(ReportSignature.id)
        )
    )


def _has_accountant_certificate(session: Session, inn: str, now: datetime) -> bool:
    """Whether the company has a valid certificate of a separate accountant right now."""
    return (
        session.scalars(
            select(Certificate.id).where(
                Certificate.subscriber_inn == inn,
                Certificate.role == CertRole.ACCOUNTANT.value,
                Certificate.status == CertificateStatus.ACTIVE,
                Certificate.not_before <= now,
                Certificate.not_after > now,
            )
        ).first()
        is not None
    )


def _slot_for(
    session: Session,
    report: Report,
    certificate: Certificate,
    asked: str | None,
    filled: dict[str, ReportSignature],
    now: datetime,
    policy: FilingPolicy,
) -> str:
    """The slot this certificate's signature fills (the documented slot policy)."""
    allowed = signs_as(CertRole(certificate.role))
    if asked is not None and asked not in SLOTS:
        raise InvalidReport({"role": "is head or accountant"})
    candidates = [asked] if asked is not None else [s for s in SLOTS if s in allowed]
    for slot in candidates:
        if slot not in allowed:
            raise SignatureRefused(
                f"a {certificate.role} certificate does not sign as {slot} (§1.5.3)"
            )
    free = [slot for slot in candidates if slot not in filled]
    if not free:
        which = " and ".join(f"the {s}'s" for s in candidates)
        raise FilingConflict(
            f"{which} signature is already on the report",
            {"role": "this slot is already signed"},
        )
    slot = free[0]
    other = [s for s in filled.values() if s.slot != slot]
    if (
        other
        and other[0].certificate_id == certificate.id
        and not (
            policy.one_certificate_both_slots_without_accountant
            and CertRole(certificate.role) is CertRole.HEAD_AS_ACCOUNTANT
            and not _has_accountant_certificate(session, report.inn, now)
        )
    ):
        raise SignatureRefused(
            "one certificate fills one slot: only a head acting as accountant, in a company"
            " with no valid accountant's certificate, signs in both"
        )
    return slot


def add_signature(
    session: Session,
    report_id: str,
    *,
    cms: bytes,
    form: str,
    role: str | None,
    now: datetime,
    actor: str,
    policy: FilingPolicy = FILING_POLICY,
    tariffs: TariffSchedule = TARIFFS,
) -> ReportSignature:
    """Verify ``cms`` over the report's bytes and put it in its slot; the second signature
    completes the report (charged and queued, or awaiting payment). A refusal writes nothing."""
    report = locked_report(session, report_id)
    if report.delivery_status not in SIGNING_STATUSES:
        raise FilingConflict(
            f"the report is {report.delivery_status}: it takes no more signatures",
            {"report": f"is {report.delivery_status}"},
        )
    if not cms or len(cms) > policy.max_signature_bytes:
        raise InvalidReport({"signature": f"is a DER CMS of at most {policy.max_signature_bytes}"})
    check = check_signature(session, cms, content=report.document, now=now)
    if not check.ok or check.certificate_id is None:
        raise SignatureRefused(
            "the signature does not hold: " + "; ".join(check.problems), tuple(check.problems)
        )
    certificate = session.get_one(Certificate, check.certificate_id)
    filled = {s.slot: s for s in signatures_of(session, report.id)}
    slot = _slot_for(session, report, certificate, role, filled, now, policy)
    try:
        may_sign(session, certificate, inn=report.inn, role=slot, now=now, check_service=False)
    except UsageRefused as ex:
        raise SignatureRefused(ex.message) from None
    signature = ReportSignature(
        report_id=report.id,
        slot=slot,
        form=form,
        certificate_id=certificate.id,
        serial=certificate.serial,
        cms=cms,
        signed_at=check.signed_at,
        time_source=check.time_source,
        claimed_signing_time=check.claimed_signing_time,
        recorded_at=now,
        recorded_by=actor,
    )
    session.add(signature)
    session.flush()
    filled[slot] = signature
    if len(filled) < len(SLOTS):
        report.delivery_status = (
            DeliveryStatus.AWAITING_ACCOUNTANT if slot == "head" else DeliveryStatus.AWAITING_HEAD
        )
    record_event(
        session,
        report,
        "signed",
        now=now,
        actor=actor,
        slot=slot,
        serial=certificate.serial,
        form=form,
        signed_at=check.signed_at.isoformat(),
        time_source=check.time_source,
    )
    db.append(
        session,
        actor=actor,
        action="filing.report.signed",
        object=f"report:{report.id}",
        details={"slot": slot, "serial": certificate.serial, "form": form},
        now=now,
    )
    if len(filled) == len(SLOTS):
        _complete(session, report, now=now, actor=actor, tariffs=tariffs)
    return signature


# --- money ----------------------------------------------------------------------------------


def _has_cloud_keys(session: Session, inn: str) -> bool:
    return (
        session.scalars(
            select(Certificate.id).where(
                Certificate.subscriber_inn == inn,
                Certificate.storage == "cloud",
                Certificate.key_label.is_not(None),
                Certificate.status.in_((CertificateStatus.ACTIVE, CertificateStatus.SUSPENDED)),
            )
        ).first()
        is not None
    )


def _storage_key(inn: str, now: datetime) -> str:
    return f"storage:{inn}:{now.astimezone(_BISHKEK).strftime('%Y-%m')}"


def tariff_code(
    tariffs: TariffSchedule, agency: str, period: PeriodType, kind: str, now: datetime
) -> str:
    """The report's tariff: a price for this very form (``report:<agency>:<period>:<form>``)
    if the table has one in force, else the agency's price for the period type."""
    specific = f"{report_tariff(agency, period)}:{kind}"
    try:
        tariffs.price(specific, now.astimezone(_BISHKEK).date())
    except UnknownTariff:
        return report_tariff(agency, period)
    return specific


def _complete(
    session: Session, report: Report, *, now: datetime, actor: str, tariffs: TariffSchedule
) -> None:
    report.completed_at = now
    code = tariff_code(
        tariffs, report.agency_code, PeriodType(report.period_type), report.kind, now
    )
    report.tariff = code
    report.price = tariffs.price(code, now.astimezone(_BISHKEK).date()).price
    if not _try_charge(session, report, now=now, actor=actor, tariffs=tariffs, queue_first=True):
        report.delivery_status = DeliveryStatus.AWAITING_PAYMENT
        record_event(session, report, "awaiting_payment", now=now, actor=actor, due=report.price)


def _earlier_waiting(session: Session, report: Report) -> bool:
    """Whether another report of the subscriber waits for payment ahead of this one."""
    completed = report.completed_at
    return bool(
        session.scalar(
            select(
                exists().where(
                    Report.inn == report.inn,
                    Report.id != report.id,
                    Report.delivery_status == DeliveryStatus.AWAITING_PAYMENT,
                    or_(
                        Report.completed_at < completed,
                        and_(Report.completed_at == completed, Report.id < report.id),
                    ),
                )
            )
        )
    )


def _try_charge(
    session: Session,
    report: Report,
    *,
    now: datetime,
    actor: str,
    tariffs: TariffSchedule,
    queue_first: bool,
) -> bool:
    """Charge the report (and the month's storage fee if due) and queue it, all or nothing.

    Under the subscriber's account lock: if a report waits ahead of it (``queue_first``) or the
    available balance does not cover everything due, nothing moves and False is returned.
    """
    if report.price is None or report.tariff is None:
        raise FilingConflict(f"report {report.id} is not complete: it has no price yet")
    balance = billing.lock_account(session, report.inn)
    if queue_first and _earlier_waiting(session, report):
        return False
    storage_key = _storage_key(report.inn, now)
    storage_due = 0
    if _has_cloud_keys(session, report.inn) and billing.posting_for(session, storage_key) is None:
        storage_due = tariffs.price("storage:monthly", now.astimezone(_BISHKEK).date()).price
    if balance.status != "active" or balance.available < report.price + storage_due:
        return False
    charged = billing.charge_tariff(
        session,
        inn=report.inn,
        tariff_code=report.tariff,
        key=f"report:{report.id}",
        now=now,
        actor=actor,
        tariffs=tariffs,
    )
    report.charge_txn = charged.transaction_id
    if storage_due:
        storage = billing.charge_storage_fee(session, inn=report.inn, now=now, actor=actor)
        report.storage_txn = storage.transaction_id
    report.charged_at = now
    report.delivery_status = DeliveryStatus.QUEUED
    report.queued_at = now
    report.next_attempt_at = now
    record_event(
        session,
        report,
        "charged",
        now=now,
        actor=actor,
        price=report.price,
        tariff=report.tariff,
        transaction=charged.transaction_id,
        storage_fee=storage_due,
    )
    return True


def release_waiting(
    session: Session,
    *,
    now: datetime,
    actor: str,
    inns: Iterable[str] | None = None,
    tariffs: TariffSchedule = TARIFFS,
) -> list[str]:
    """Charge and queue waiting reports, oldest first per subscriber, while the balance covers
    them; the ids released. A report that does not fit stops its subscriber's queue."""
    query = select(Report.inn).where(Report.delivery_status == DeliveryStatus.AWAITING_PAYMENT)
    if inns is not None:
        query = query.where(Report.inn.in_(list(inns)))
    released: list[str] = []
    for inn in sorted(set(session.scalars(query))):
        billing.lock_account(session, inn)
        waiting = session.scalars(
            select(Report)
            .where(Report.inn == inn, Report.delivery_status == DeliveryStatus.AWAITING_PAYMENT)
            .order_by(Report.completed_at, Report.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for report in waiting:
            if not _try_charge(
                session, report, now=now, actor=actor, tariffs=tariffs, queue_first=False
            ):
                break
            released.append(report.id)
    return released


# --- stop -----------------------------------------------------------------------------------


def stop_report(
    session: Session,
    report_id: str,
    *,
    reason: str,
    now: datetime,
    actor: str,
    policy: FilingPolicy = FILING_POLICY,
) -> Report:
    """Stop a report before it leaves; what it was charged is reversed (not the month's storage
    fee). After it left (sent, delivered) the answer is a conflict and nothing changes."""
    report = locked_report(session, report_id)
    if report.delivery_status == DeliveryStatus.STOPPED:
        return report
    if report.delivery_status not in STOPPABLE:
        raise FilingConflict(
            f"the report is {report.delivery_status}: it has left and cannot be stopped",
            {"report": f"is {report.delivery_status}"},
        )
    try:
        why = clean_text(reason, "reason")
    except InvalidField as ex:
        raise InvalidReport({"reason": ex.message}) from None
    if not why or len(why) > 500:
        raise InvalidReport({"reason": "is 1 to 500 characters"})
    if report.charge_txn is not None and policy.reverse_charge_on_stop:
        reversal = billing.reverse(
            session,
            transaction_id=report.charge_txn,
            reason=f"отчет {report.id} остановлен",
            now=now,
            actor=actor,
        )
        report.reversal_txn = reversal.transaction_id
    report.delivery_status = DeliveryStatus.STOPPED
    report.stopped_at = now
    report.next_attempt_at = None
    record_event(
        session,
        report,
        "stopped",
        now=now,
        actor=actor,
        reason=why,
        reversal=report.reversal_txn,
    )
    db.append(
        session,
        actor=actor,
        action="filing.report.stopped",
        object=f"report:{report.id}",
        details={"reason": why, "reversal": report.reversal_txn},
        now=now,
    )
    return report

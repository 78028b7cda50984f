"""Renewing certificates (seed 003, contract §18.2): signed requests, review, auto-renewal.

The holder signs the renewal request (``renewal_terms``: the seed 003 text with the seven
§18.2.2 requisites as the registry holds them now and the new end date) as a detached CMS
signature with the current key. ``submit_renewal`` verifies it against the current certificate
(active, not expired) and compares the requisites with the snapshot the certificate was issued
with:

* all unchanged → accepted at once: the price is held (``renewal:<id>``) and the new
  certificate issued to take effect when the old one ends (notBefore = old notAfter); the hold
  is posted by issuance. An insufficient balance refuses the request and records nothing but
  the audit entry;
* something changed → ``review``: supporting documents are uploaded and an officer approves
  (then the same charge and issuance) or rejects.

A request with fewer than 3 working days left is accepted but flagged ``late``. Cloud
renewals get a new key; a RuToken renewal carries a new CSR made on the token at the office
(officers only). ``renew_due`` is the daily job of §18.2: cloud certificates whose
cancellation deadline (30 days before expiry) has passed renew themselves when the requisites
are unchanged and the balance covers the price; the others are listed with the reason.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

import billing
from ca.cms import verify_detached
from ca.errors import CAError, Conflict, InvalidField, NotAllowed, NotFound, PaymentRequired
from ca.issuance import Issued, issue_certificate, load_csr
from ca.models import Certificate, Holder, RenewalDocument, RenewalRequest, Subscriber
from ca.pricing import certificate_price
from ca.registry import REQUISITES, require_verified, requisites
from ca.renewal_text import parse_requisites, renewal_request_text
from ca.requests import IssueRequest
from db import audit
from hsm import HSMToken
from policies.calendar import RENEWAL_POLICY, local_date
from policies.cert_profiles import CertRole, Storage, validity
from policies.money import som
from policies.statuses import (
    CertificateStatus,
    CustomerAccountStatus,
    RenewalOutcome,
    RenewalStatus,
)
from policies.tariffs import Revenue

__all__ = [
    "OPEN_STATUSES",
    "DueOutcome",
    "Issuers",
    "RenewalTerms",
    "add_document",
    "approve_renewal",
    "cancel_deadline",
    "get_renewal",
    "reject_renewal",
    "renew_due",
    "renewal_terms",
    "set_auto_renew",
    "submit_renewal",
]

Transaction = Callable[[], AbstractContextManager[Session]]
OPEN_STATUSES = (
    RenewalStatus.REVIEW,
    RenewalStatus.ACCEPTED,
    RenewalStatus.APPROVED,
    RenewalStatus.ISSUED,
)
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class RenewalTerms:
    """What the holder signs and what it will cost."""

    text: str
    new_not_after: datetime
    tariff: str
    price: int
    changed: tuple[str, ...]  # requisites that differ from the certificate's snapshot
    late: bool


@dataclass(frozen=True)
class Issuers:
    """What issuing needs: tokens and the public URL of the CRL and CA certificates."""

    ca_token: HSMToken
    cloud_token: HSMToken
    public_url: str


def _live(row: Certificate, now: datetime) -> None:
    if row.status != CertificateStatus.ACTIVE:
        raise Conflict(f"certificate {row.serial} is {row.status}: it cannot be renewed")
    if row.not_after <= now:
        raise Conflict(f"certificate {row.serial} expired on {row.not_after:%Y-%m-%d}")


def _open_renewal(session: Session, certificate_id: int) -> RenewalRequest | None:
    query = select(RenewalRequest).where(
        RenewalRequest.certificate_id == certificate_id,
        RenewalRequest.status.in_(OPEN_STATUSES),
    )
    return session.scalars(query).first()


def renewal_terms(session: Session, row: Certificate, now: datetime) -> RenewalTerms:
    """The request text for ``row`` today (Conflict unless it can be renewed now)."""
    _live(row, now)
    opens = row.not_after - timedelta(days=RENEWAL_POLICY.notice_days)
    if now < opens:
        raise Conflict(f"renewal of {row.serial} opens on {local_date(opens):%Y-%m-%d}")
    subscriber = session.get_one(Subscriber, row.subscriber_inn)
    holder = session.get_one(Holder, row.holder_id)
    require_verified(holder)  # a holder registered before §3.3 was enforced: an officer first
    current = requisites(subscriber, holder)
    new_not_after = validity(row.not_after)
    text = renewal_request_text(
        full_name=current["full_name"],
        position=current["position"],
        company_name=current["company_name"],
        company_inn=current["company_inn"],
        locality=current["locality"],
        passport_series=current["passport_series"],
        email=current["email"],
        new_not_after=local_date(new_not_after),
    )
    tariff, price = certificate_price(CertRole(row.role), Storage(row.storage), now)
    changed = tuple(k for k in REQUISITES if current[k] != row.requisites.get(k))
    late = RENEWAL_POLICY.is_late(now, row.not_after)
    return RenewalTerms(text, new_not_after, tariff, price, changed, late)


def get_renewal(session: Session, renewal_id: int) -> RenewalRequest:
    row = session.get(RenewalRequest, renewal_id) if isinstance(renewal_id, int) else None
    if row is None:
        raise NotFound(f"no renewal request {renewal_id}")
    return row


def _journal(
    session: Session, action: str, renewal: RenewalRequest, now: datetime, actor: str, **more: Any
) -> None:
    audit.append(
        session,
        actor=actor,
        action=f"ca.renewal.{action}",
        object=f"renewal:{renewal.id}",
        details={"certificate": renewal.certificate_id, "status": renewal.status, **more},
        now=now,
    )


def _refused(transaction: Transaction, row_id: int, ex: CAError, now: datetime, actor: str) -> None:
    with transaction() as session:
        audit.append(
            session,
            actor=actor,
            action="ca.renewal.refused",
            object=f"certificate:{session.get_one(Certificate, row_id).serial}",
            outcome="refused",
            details={"reason": type(ex).__name__, "message": str(ex)[:500]},
            now=now,
        )


def _hold_price(
    session: Session, renewal: RenewalRequest, row: Certificate, price: int, tariff: str, *,
    now: datetime, actor: str,
) -> None:  # fmt: skip
    key = f"renewal:{renewal.id}"
    try:
        billing.hold(
            session, inn=row.subscriber_inn, amount=price, key=key,
            revenue_kind=Revenue.CERTIFICATES,
            description=f"Переизготовление ЭЦП {row.serial} ({tariff})", now=now, actor=actor,
        )  # fmt: skip
    except billing.InsufficientFunds as ex:
        raise PaymentRequired(
            f"the renewal costs {som(price)} som; the balance of {row.subscriber_inn} has"
            f" {som(ex.available)} som available: top it up and send the request again",
            amount_due=price - ex.available,
            payment_account=None,
        ) from None
    renewal.charge_key = key


def _issue_renewal(
    transaction: Transaction,
    renewal_id: int,
    issuers: Issuers,
    *,
    now: datetime,
    actor: str,
    lint: Any = None,
) -> RenewalRequest:
    """Issue the new certificate for an accepted or approved renewal (hold already placed)."""
    with transaction() as session:
        renewal = session.get_one(RenewalRequest, renewal_id)
        old = session.get_one(Certificate, renewal.certificate_id)
        holder_id, role, storage, key_spec = old.holder_id, old.role, old.storage, old.key_spec
        not_before, old_id, csr, key = old.not_after, old.id, renewal.csr_der, renewal.charge_key
    more = {} if lint is None else {"lint": lint}
    try:
        request = IssueRequest.parse(
            holder_id=holder_id, role=role, storage=storage, csr=csr,
            key_spec=key_spec if csr is None else None,
        )  # fmt: skip
        issued: Issued = issue_certificate(
            transaction, ca_token=issuers.ca_token, cloud_token=issuers.cloud_token,
            request=request, public_url=issuers.public_url, now=now, actor=actor,
            not_before=not_before, renewal_of=old_id, prepaid_key=key, **more,
        )  # fmt: skip
    except BaseException as ex:
        with transaction() as session:
            renewal = session.get_one(RenewalRequest, renewal_id, with_for_update=True)
            if key is not None:
                with contextlib.suppress(billing.HoldNotOpen, billing.NotFound):
                    billing.void_hold(session, key=key, now=now, actor=actor)
            renewal.status, renewal.decided_at = RenewalStatus.REJECTED, now
            renewal.decided_by = renewal.decided_by or actor
            renewal.decision_note = f"issuance failed: {ex}"[:1000]
            _journal(session, "failed", renewal, now, actor, error=type(ex).__name__)
        raise
    with transaction() as session:
        renewal = session.get_one(RenewalRequest, renewal_id, with_for_update=True)
        renewal.status, renewal.new_certificate_id = RenewalStatus.ISSUED, issued.certificate.id
        _journal(session, "issued", renewal, now, actor, serial=issued.certificate.serial)
        session.flush()
        session.expunge(renewal)
    return renewal


def _signature_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str) or not value.strip():
        raise InvalidField("signature", "the detached CMS signature (base64 DER, or PEM)")
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode("ascii", "replace")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidField("signature", "not base64 (send DER as base64, or PEM)") from None


def _storage_fee(session: Session, inn: str, *, now: datetime, actor: str) -> None:
    """The month's cloud-storage fee at a signed renewal request, if the first this month
    (FAQ). What the balance does not cover after the renewal's own price is left for the
    month's first report (filing charges it then): the request is not refused for it."""
    with contextlib.suppress(billing.InsufficientFunds), session.begin_nested():
        billing.charge_storage_fee(session, inn=inn, now=now, actor=actor)


def submit_renewal(
    transaction: Transaction,
    issuers: Issuers,
    *,
    certificate_id: int,
    document: object,
    signature: object,
    csr: bytes | str | None = None,
    now: datetime,
    actor: str,
    officer: bool,
) -> RenewalRequest:
    """A holder's signed renewal request: accepted and issued, or queued for review."""
    if not isinstance(document, str):
        raise InvalidField("document", "the renewal request text, exactly as served")
    raw_signature = _signature_bytes(signature)
    try:
        with transaction() as session:
            old = session.get_one(Certificate, certificate_id)
            terms = renewal_terms(session, old, now)
            if document != terms.text:
                raise InvalidField(
                    "document",
                    "differs from the request served at .../renewal-request: fetch it again",
                )
            if _open_renewal(session, old.id) is not None:
                raise Conflict(f"certificate {old.serial} already has a renewal request")
            if old.storage == Storage.RUTOKEN.value:
                if not officer:
                    raise NotAllowed("a RuToken renewal is made at the office (an officer)")
                if csr is None:
                    raise InvalidField("csr_pem", "a RuToken renewal needs a new CSR")
            elif csr is not None:
                raise InvalidField("csr_pem", "a cloud renewal gets a new key from Tamga")
            csr_der = None if csr is None else load_csr(csr).public_bytes(Encoding.DER)
            current = x509.load_der_x509_certificate(old.der or b"")
            verify_detached(document.encode("utf-8"), raw_signature, current)
            signed = parse_requisites(document)
            changed = [k for k in REQUISITES if signed[k] != old.requisites.get(k)]
            renewal = RenewalRequest(
                certificate_id=old.id,
                status=RenewalStatus.REVIEW if changed else RenewalStatus.ACCEPTED,
                automatic=False,
                document=document,
                signature=raw_signature,
                csr_der=csr_der,
                new_not_after=terms.new_not_after,
                changed=changed,
                late=terms.late,
                submitted_at=now,
                submitted_by=actor,
            )
            session.add(renewal)
            session.flush()
            if not changed:
                _hold_price(session, renewal, old, terms.price, terms.tariff, now=now, actor=actor)
            if old.storage == Storage.CLOUD.value:
                _storage_fee(session, old.subscriber_inn, now=now, actor=actor)
            _journal(session, "submitted", renewal, now, actor, changed=changed, late=terms.late,
                     sha256=hashlib.sha256(document.encode()).hexdigest())  # fmt: skip
            renewal_id = renewal.id
    except CAError as ex:
        _refused(transaction, certificate_id, ex, now, actor)
        raise
    if changed:
        with transaction() as session:
            renewal = session.get_one(RenewalRequest, renewal_id)
            session.expunge(renewal)
        return renewal
    return _issue_renewal(transaction, renewal_id, issuers, now=now, actor=actor)


def add_document(
    session: Session,
    renewal_id: int,
    *,
    filename: str,
    content_type: str,
    data: bytes,
    now: datetime,
    actor: str,
) -> RenewalDocument:
    """A supporting document for a renewal in review (a changed requisite, §18.2.3)."""
    renewal = get_renewal(session, renewal_id)
    if renewal.status != RenewalStatus.REVIEW:
        raise Conflict(f"renewal {renewal_id} is {renewal.status}: documents are not needed")
    name = " ".join((filename or "").split())[:255]
    if not name:
        raise InvalidField("file", "give the file a name")
    if not data:
        raise InvalidField("file", "the file is empty")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidField("file", f"at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    row = RenewalDocument(
        renewal_id=renewal.id,
        filename=name,
        content_type=(content_type or "application/octet-stream")[:100],
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        uploaded_at=now,
        uploaded_by=actor,
    )
    session.add(row)
    session.flush()
    _journal(session, "document", renewal, now, actor, filename=name, sha256=row.sha256)
    return row


def approve_renewal(
    transaction: Transaction,
    issuers: Issuers,
    renewal_id: int,
    *,
    note: str | None,
    now: datetime,
    actor: str,
) -> RenewalRequest:
    """An officer approves a renewal in review (documents seen): charge, then issue."""
    with transaction() as session:
        renewal = get_renewal(session, renewal_id)
        session.refresh(renewal, with_for_update=True)
        if renewal.status != RenewalStatus.REVIEW:
            raise Conflict(f"renewal {renewal_id} is {renewal.status}")
        count = session.scalars(
            select(RenewalDocument.id).where(RenewalDocument.renewal_id == renewal.id)
        ).first()
        if count is None:
            raise Conflict("a changed requisite needs a supporting document first")
        old = session.get_one(Certificate, renewal.certificate_id)
        _live(old, now)
        require_verified(session.get_one(Holder, old.holder_id))
        tariff, price = certificate_price(CertRole(old.role), Storage(old.storage), now)
        _hold_price(session, renewal, old, price, tariff, now=now, actor=actor)
        renewal.status, renewal.decided_at, renewal.decided_by = RenewalStatus.APPROVED, now, actor
        renewal.decision_note = note
        _journal(session, "approved", renewal, now, actor)
    return _issue_renewal(transaction, renewal_id, issuers, now=now, actor=actor)


def reject_renewal(
    session: Session, renewal_id: int, *, note: object, now: datetime, actor: str
) -> RenewalRequest:
    if not isinstance(note, str) or not note.strip():
        raise InvalidField("note", "say why the renewal is rejected")
    renewal = get_renewal(session, renewal_id)
    session.refresh(renewal, with_for_update=True)
    if renewal.status != RenewalStatus.REVIEW:
        raise Conflict(f"renewal {renewal_id} is {renewal.status}")
    renewal.status, renewal.decided_at, renewal.decided_by = RenewalStatus.REJECTED, now, actor
    renewal.decision_note = " ".join(note.split())[:1000]
    _journal(session, "rejected", renewal, now, actor, note=renewal.decision_note)
    return renewal


def cancel_deadline(row: Certificate) -> datetime:
    """Until when auto-renewal can be cancelled (§18.2: 30 days before expiry)."""
    return row.not_after - timedelta(days=RENEWAL_POLICY.cancel_before_days)


def set_auto_renew(
    session: Session, row: Certificate, *, enabled: object, now: datetime, actor: str
) -> Certificate:
    """Cancel (or restore) the automatic renewal of a cloud certificate, in time."""
    if not isinstance(enabled, bool):
        raise InvalidField("enabled", "true or false")
    if row.storage != Storage.CLOUD.value:
        raise Conflict("only cloud certificates renew automatically")
    if row.auto_renew == enabled:
        return row
    if now >= cancel_deadline(row):
        raise Conflict(
            f"auto-renewal can be changed until {local_date(cancel_deadline(row)):%Y-%m-%d}"
            " (30 days before expiry)"
        )
    row.auto_renew = enabled
    audit.append(
        session,
        actor=actor,
        action="ca.certificate.auto_renew",
        object=f"certificate:{row.serial}",
        details={"enabled": enabled},
        now=now,
    )
    return row


@dataclass(frozen=True)
class DueOutcome:
    """One certificate the daily job looked at: renewed, or why not."""

    serial: str
    inn: str
    outcome: RenewalOutcome
    reason: str
    new_serial: str | None = None


def renew_due(
    transaction: Transaction, issuers: Issuers, *, now: datetime, actor: str
) -> list[DueOutcome]:
    """The daily §18.2 job: renew the cloud certificates whose cancellation deadline passed."""
    with transaction() as session:
        query = select(Certificate).where(
            Certificate.status == CertificateStatus.ACTIVE,
            Certificate.storage == Storage.CLOUD.value,
            Certificate.not_after > now,
            Certificate.not_after <= now + timedelta(days=RENEWAL_POLICY.cancel_before_days),
        )
        candidates = [
            (row.id, row.serial, row.subscriber_inn, row.auto_renew)
            for row in session.scalars(query.order_by(Certificate.not_after, Certificate.id))
            if _open_renewal(session, row.id) is None
        ]
    outcomes = []
    for row_id, serial, inn, auto in candidates:
        if not auto:
            outcomes.append(
                DueOutcome(serial, inn, RenewalOutcome.SKIPPED, "auto-renewal was cancelled")
            )
            continue
        outcomes.append(_renew_one(transaction, issuers, row_id, now=now, actor=actor))
    return outcomes


def _renew_one(
    transaction: Transaction, issuers: Issuers, row_id: int, *, now: datetime, actor: str
) -> DueOutcome:
    try:
        with transaction() as session:
            old = session.get_one(Certificate, row_id)
            serial, inn = old.serial, old.subscriber_inn
            terms = renewal_terms(session, old, now)
            if terms.changed:
                return DueOutcome(
                    serial, inn, RenewalOutcome.SKIPPED,
                    "requisites changed (" + ", ".join(terms.changed) + "): renew with documents",
                )  # fmt: skip
            if billing.balance(session, inn).status != CustomerAccountStatus.ACTIVE:
                return DueOutcome(serial, inn, RenewalOutcome.SKIPPED, "the contract is terminated")
            renewal = RenewalRequest(
                certificate_id=old.id, status=RenewalStatus.ACCEPTED, automatic=True,
                document=terms.text, new_not_after=terms.new_not_after, changed=[], late=False,
                submitted_at=now, submitted_by=actor,
            )  # fmt: skip
            session.add(renewal)
            session.flush()
            _hold_price(session, renewal, old, terms.price, terms.tariff, now=now, actor=actor)
            _journal(session, "submitted", renewal, now, actor, automatic=True)
            renewal_id = renewal.id
    except CAError as ex:
        _refused(transaction, row_id, ex, now, actor)
        return DueOutcome(serial, inn, RenewalOutcome.SKIPPED, str(ex))
    try:
        done = _issue_renewal(transaction, renewal_id, issuers, now=now, actor=actor)
    except CAError as ex:
        return DueOutcome(serial, inn, RenewalOutcome.FAILED, str(ex))
    with transaction() as session:
        new = session.get_one(Certificate, done.new_certificate_id)
        return DueOutcome(serial, inn, RenewalOutcome.RENEWED, "", new.serial)

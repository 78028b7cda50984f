"""Registration requests: a subscriber, its first holder and certificate, decided by an officer.

A request is submitted at the office or online (§3.3) and must be decided by its deadline:
24 hours at the office, the end of the 7th Kyrgyz working day online (``REGISTRATION_POLICY``).
The submitted fields are checked with the registry's own validators and kept as JSON until an
officer decides. Approval creates (or reuses) the subscriber and the holder, which opens the
billing account, and issues the 16-digit payment account of the first certificate at today's
price; a subscriber that already has certificates pays later ones from its balance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

import billing
from ca import registry
from ca.errors import Conflict, InvalidField, InvalidFields, NotFound
from ca.models import Certificate, Holder, RegistrationRequest, Subscriber
from ca.pricing import certificate_price, first_certificate_purpose
from db import audit
from policies.calendar import REGISTRATION_POLICY
from policies.cert_profiles import CertRole, Storage
from policies.statuses import (
    CertificateStatus,
    HolderStatus,
    PaymentAccountStatus,
    RegistrationStatus,
)

__all__ = [
    "CHANNELS",
    "STATUSES",
    "approve_registration",
    "get_registration",
    "is_overdue",
    "list_registrations",
    "parse_role",
    "parse_storage",
    "price_of",
    "reject_registration",
    "submit_registration",
]

CHANNELS = ("office", "online")
STATUSES = tuple(RegistrationStatus)
_NOTE_LIMIT = 2000


_T = TypeVar("_T")


def parse_role(value: object) -> CertRole:
    """A CertRole from its API spelling; InvalidField("role") otherwise."""
    try:
        return CertRole(value)
    except ValueError:
        names = ", ".join(r.value for r in CertRole)
        raise InvalidField("role", f"one of {names}") from None


def parse_storage(value: object) -> Storage:
    """A Storage from its API spelling; InvalidField("storage") otherwise."""
    try:
        return Storage(value)
    except ValueError:
        names = ", ".join(s.value for s in Storage)
        raise InvalidField("storage", f"one of {names}") from None


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, Mapping):
        raise InvalidField(name, "is required and must be an object")
    return value


def _note(note: object, *, required: bool) -> str | None:
    if note is None and not required:
        return None
    if not isinstance(note, str) or not " ".join(note.split()):
        raise InvalidField("note", "a reason is required" if required else "must be text")
    text = registry.clean_text(note, "note")
    if len(text) > _NOTE_LIMIT:
        raise InvalidField("note", f"is longer than {_NOTE_LIMIT} characters")
    return text


def submit_registration(
    session: Session, data: Mapping[str, Any], *, channel: str, now: datetime, actor: str
) -> RegistrationRequest:
    """Record a registration request; ``data``: subscriber{...}, holder{...}, role, storage.

    Every field is checked now, and every bad one is named at once (InvalidFields, each field
    prefixed by its section: ``subscriber.inn``), so that an officer never has to approve a
    request that cannot be carried out.
    """
    errors: dict[str, str] = {}

    def attempt(check: Callable[[], _T], section: str = "") -> _T | None:
        try:
            return check()
        except InvalidFields as ex:
            errors.update({f"{section}{field}": text for field, text in ex.errors.items()})
        except InvalidField as ex:
            errors[f"{section}{ex.field}"] = ex.message
        return None

    if channel not in CHANNELS:
        errors["channel"] = "office or online"
    company = attempt(
        lambda: registry.validate_subscriber(_section(data, "subscriber")), "subscriber."
    )
    holder_data = attempt(lambda: _section(data, "holder"))
    holder = None
    if holder_data is not None:
        if company is not None:
            holder = attempt(
                lambda: registry.validate_holder(
                    holder_data, company["name"], company["inn"], company["locality"]
                ),
                "holder.",
            )
        else:  # the holder's own fields, without the subject check that needs the company
            attempt(lambda: registry.validate_holder_fields(holder_data), "holder.")
    role = attempt(lambda: parse_role(data.get("role")))
    storage = attempt(lambda: parse_storage(data.get("storage")))
    if errors or company is None or holder is None or role is None or storage is None:
        raise InvalidFields(errors)
    row = RegistrationRequest(
        channel=channel,
        status=RegistrationStatus.PENDING,
        inn=company["inn"],
        subscriber=company,
        holder=holder,
        role=role.value,
        storage=storage.value,
        submitted_at=now,
        submitted_by=actor,
        deadline_at=REGISTRATION_POLICY.deadline(channel, now),
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.registration.submitted",
        object=f"registration:{row.id}",
        # Not the passport series: the journal keeps who asked for what, not personal data.
        details={"inn": row.inn, "channel": channel, "role": row.role, "storage": row.storage},
        now=now,
    )
    return row


def get_registration(session: Session, request_id: int) -> RegistrationRequest:
    row = session.get(RegistrationRequest, request_id) if isinstance(request_id, int) else None
    if row is None:
        raise NotFound(f"no registration request {request_id}")
    return row


def list_registrations(
    session: Session,
    status: str | None = None,
    inns: set[str] | None = None,
    submitted_by: str | None = None,
) -> list[RegistrationRequest]:
    """Requests, oldest first; when ``inns`` is given, only those for these INNs or (if given)
    submitted by ``submitted_by``. ``status`` filters by status."""
    query = select(RegistrationRequest).order_by(RegistrationRequest.id)
    if status is not None:
        if status not in STATUSES:
            raise InvalidField("status", "pending, approved or rejected")
        query = query.where(RegistrationRequest.status == status)
    if inns is not None:
        mine: ColumnElement[bool] = RegistrationRequest.inn.in_(sorted(inns))
        if submitted_by is not None:
            mine = or_(mine, RegistrationRequest.submitted_by == submitted_by)
        query = query.where(mine)
    return list(session.scalars(query))


def is_overdue(row: RegistrationRequest, now: datetime) -> bool:
    """A pending request past its §3.3 deadline."""
    return row.status == RegistrationStatus.PENDING and now > row.deadline_at


def price_of(row: RegistrationRequest, now: datetime) -> tuple[str, int]:
    """(tariff, tyiyn): the price on the day of approval, or today's while not approved."""
    when = row.decided_at if row.status == RegistrationStatus.APPROVED and row.decided_at else now
    return certificate_price(CertRole(row.role), Storage(row.storage), when)


def _matching_holder(session: Session, inn: str, fields: Mapping[str, str]) -> Holder | None:
    """An active holder of ``inn`` with exactly these requisites (a returning person)."""
    query = select(Holder).where(Holder.subscriber_inn == inn, Holder.status == HolderStatus.ACTIVE)
    for holder in session.scalars(query.order_by(Holder.id)):
        if all(getattr(holder, k) == v for k, v in fields.items()):
            return holder
    return None


def _first_certificate_account(
    session: Session, inn: str, tariff: str, price: int, *, now: datetime, actor: str
) -> str | None:
    """The payment account of the subscriber's first certificate, or None: pay from the balance.

    None when the subscriber has certificates already, or when its first-certificate account
    was issued for another price or is already paid (it belongs to an earlier request).
    """
    issued = select(Certificate.id).where(
        Certificate.subscriber_inn == inn, Certificate.status != CertificateStatus.FAILED
    )
    if session.scalars(issued.limit(1)).first() is not None:
        return None
    try:
        info = billing.issue_payment_account(
            session,
            inn=inn,
            purpose=first_certificate_purpose(inn),
            tariff=tariff,
            amount_due=price,
            now=now,
            actor=actor,
        )
    except billing.IdempotencyConflict:  # nothing written: the lookup refused before any insert
        return None
    return info.number if info.created or info.status == PaymentAccountStatus.OPEN else None


def approve_registration(
    session: Session, request_id: int, *, now: datetime, actor: str, note: str | None = None
) -> RegistrationRequest:
    """Approve a pending request: registry rows, billing account, payment account; journalled.

    Approving an approved request returns it unchanged; a rejected one is a Conflict. A
    subscriber already registered with other requisites is a Conflict too (an officer changes
    the registry first).
    """
    row = get_registration(session, request_id)
    session.refresh(row, with_for_update=True)  # two officers approving at once: one at a time
    if row.status == RegistrationStatus.APPROVED:
        return row
    if row.status == RegistrationStatus.REJECTED:
        raise Conflict(f"registration request {request_id} was rejected")
    text = _note(note, required=False)
    existed = session.get(Subscriber, row.inn) is not None
    subscriber, _ = registry.create_subscriber(session, row.subscriber, now=now, actor=actor)
    holder = _matching_holder(session, subscriber.inn, row.holder)
    if holder is None:
        holder = registry.create_holder(
            session, {"inn": subscriber.inn, **row.holder}, now=now, actor=actor
        )
    # The officer approving the request is the registration authority vouching for the person.
    registry.verify_holder(
        session, holder.id, document=f"registration request {row.id}", now=now, actor=actor
    )
    tariff, price = certificate_price(CertRole(row.role), Storage(row.storage), now)
    account = _first_certificate_account(
        session, subscriber.inn, tariff, price, now=now, actor=actor
    )
    row.status, row.decided_at, row.decided_by = RegistrationStatus.APPROVED, now, actor
    row.decision_note = text
    row.holder_id, row.payment_account = holder.id, account
    row.subscriber_existed = existed
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.registration.approved",
        object=f"registration:{row.id}",
        details={
            "inn": row.inn,
            "existing_subscriber": existed,
            "holder_id": holder.id,
            "tariff": tariff,
            "amount_due": price,
            "payment_account": account,
        },
        now=now,
    )
    return row


def reject_registration(
    session: Session, request_id: int, *, note: object, now: datetime, actor: str
) -> RegistrationRequest:
    """Reject a pending request with a reason (required); a decided request is a Conflict,
    except that rejecting a rejected one again returns it unchanged."""
    row = get_registration(session, request_id)
    text = _note(note, required=True)
    if row.status == RegistrationStatus.REJECTED:
        return row
    if row.status == RegistrationStatus.APPROVED:
        raise Conflict(f"registration request {request_id} was approved")
    row.status, row.decided_at, row.decided_by = RegistrationStatus.REJECTED, now, actor
    row.decision_note = text
    row.subscriber_existed = session.get(Subscriber, row.inn) is not None
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.registration.rejected",
        object=f"registration:{row.id}",
        details={"inn": row.inn, "note": text},
        now=now,
    )
    return row

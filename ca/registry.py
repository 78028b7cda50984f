"""The registration authority's registry: subscribers and the holders who act for them.

Every change is journalled. A subscriber's billing account is opened when it is registered
(through ``billing``'s service function), so that payments can reach it at once. The seven
requisites a renewal must find unchanged (§18.2.2) are read from here by ``requisites``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import billing
from ca.errors import Conflict, IdentityNotVerified, InvalidField, InvalidFields, NotFound
from ca.models import ForeignAccess, Holder, Subscriber
from ca.profiles import SubjectFieldError, SubjectIdentity
from db import audit, outbox
from policies.identifiers import is_inn
from policies.statuses import HolderStatus, SubscriberStatus
from policies.text import describe, normalise, refused_character

__all__ = [
    "REQUISITES",
    "add_foreign_access",
    "check_inn",
    "check_text",
    "checked_fields",
    "clean_text",
    "create_holder",
    "create_subscriber",
    "foreign_addresses",
    "get_holder",
    "get_subscriber",
    "list_foreign_access",
    "list_holders",
    "list_subscribers",
    "require_verified",
    "requisites",
    "split_full_name",
    "subject_identity",
    "update_holder",
    "update_subscriber",
    "validate_holder",
    "validate_holder_fields",
    "validate_subscriber",
    "verify_holder",
]

# §18.2.2, in the contract's order: what a renewal compares with the certificate being renewed.
REQUISITES = (
    "company_inn",
    "company_name",
    "locality",
    "full_name",
    "position",
    "passport_series",
    "email",
)

_SUBSCRIBER_FIELDS = {"name": 64, "legal_form": 64, "locality": 128, "email": 254}
_HOLDER_FIELDS = {
    "full_name": 64,
    "position": 64,
    "passport_series": 32,
    "email": 254,
    "phone": 32,
}
_PASSPORT = re.compile(r"^[A-ZА-ЯЁ0-9][A-ZА-ЯЁ0-9 -]{1,31}$")
_PHONE = re.compile(r"^\+?[0-9]{7,15}$")


def clean_text(value: str, field: str) -> str:
    """``value`` in NFC with its whitespace collapsed, or InvalidField naming the first character
    that may not reach a certificate, a PDF or the journal (``policies.text``: no controls, no
    bidirectional overrides or zero-width characters, no private-use or unassigned ones)."""
    text = normalise(value)
    bad = refused_character(text)
    if bad is not None:
        raise InvalidField(field, f"has a character that is not accepted: {describe(bad)}")
    return text


def _text(data: Mapping[str, Any], field: str, limit: int) -> str:
    value = data.get(field)
    if not isinstance(value, str):
        raise InvalidField(field, "is required and must be a string")
    value = clean_text(value, field)
    if not value:
        raise InvalidField(field, "must not be empty")
    if len(value) > limit:
        raise InvalidField(field, f"is longer than {limit} characters")
    return value


def check_text(data: Mapping[str, Any], field: str, limit: int) -> str:
    """``data[field]`` as one line of at most ``limit`` characters (whitespace collapsed)."""
    return _text(data, field, limit)


def check_inn(inn: object, field: str = "inn") -> str:
    """The INN, or InvalidField unless it is 14 ASCII digits."""
    if not isinstance(inn, str) or not is_inn(inn):
        raise InvalidField(field, "an INN is exactly 14 digits")
    return inn


def split_full_name(full_name: str) -> tuple[str, str]:
    """(surname, given names): the passport order is "Surname Given [Patronymic]"."""
    parts = full_name.split()
    if len(parts) < 2:
        raise InvalidField("full_name", "give the surname and the given name")
    return parts[0], " ".join(parts[1:])


def _identity_check(fields: dict[str, str], company: str, inn: str, locality: str) -> None:
    """Refuse holder data that would not make a valid certificate subject (X.520 bounds...)."""
    surname, given = split_full_name(fields["full_name"])
    try:
        SubjectIdentity(
            full_name=fields["full_name"],
            surname=surname,
            given_name=given,
            position=fields["position"],
            company=company,
            company_inn=inn,
            locality=locality,
            email=fields["email"],
        )
    except SubjectFieldError as ex:
        raise InvalidField(ex.field if ex.field in fields else "email", str(ex)) from None


def checked_fields(checks: Mapping[str, Callable[[], str]]) -> dict[str, str]:
    """Run every field's check; InvalidFields naming **every** bad field at once (as pydantic
    does at the HTTP edge), so the console and the API report a request the same way."""
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, check in checks.items():
        try:
            fields[name] = check()
        except InvalidFields as ex:
            errors.update(ex.errors)
        except InvalidField as ex:
            errors[ex.field] = ex.message
    if errors:
        raise InvalidFields(errors)
    return fields


def _texts(data: Mapping[str, Any], limits: Mapping[str, int]) -> dict[str, Callable[[], str]]:
    return {name: functools.partial(_text, data, name, limit) for name, limit in limits.items()}


def _subscriber_fields(data: Mapping[str, Any], *, inn: bool = False) -> dict[str, str]:
    checks = _texts(data, _SUBSCRIBER_FIELDS)
    if inn:
        checks = {"inn": lambda: check_inn(data.get("inn")), **checks}
    fields = checked_fields(checks)
    _identity_check(
        {"full_name": "Check Name", "position": "-", "email": fields["email"]},
        fields["name"],
        "0" * 14,
        fields["locality"],
    )
    return fields


def validate_subscriber(data: Mapping[str, Any]) -> dict[str, str]:
    """The subscriber fields as ``create_subscriber`` would store them (inn included).

    InvalidField naming the first bad field; nothing is read or written.
    """
    return _subscriber_fields(data, inn=True)


def validate_holder_fields(data: Mapping[str, Any]) -> dict[str, str]:
    """The holder's own fields, every bad one named at once (no company: no subject check)."""
    return _holder_fields(data)


def validate_holder(
    data: Mapping[str, Any], company: str, inn: str, locality: str
) -> dict[str, str]:
    """The holder fields as ``create_holder`` would store them for that company (no inn).

    Checks that the holder with this company would make a valid certificate subject, as
    ``create_holder`` does; InvalidField naming the first bad field.
    """
    fields = _holder_fields(data)
    _identity_check(fields, company, inn, locality)
    return fields


def create_subscriber(
    session: Session, data: Mapping[str, Any], *, now: datetime, actor: str
) -> tuple[Subscriber, bool]:
    """Register a subscriber and open its billing account: ``(row, created)``.

    ``data``: inn, name, legal_form, locality, email. The same INN with the same data again is
    a replay (``created`` False); with other data it is a Conflict (use ``update_subscriber``).
    """
    fields = _subscriber_fields(data, inn=True)
    inn = fields.pop("inn")
    existing = session.get(Subscriber, inn)
    if existing is not None:
        if all(getattr(existing, k) == v for k, v in fields.items()):
            return existing, False
        raise Conflict(f"INN {inn} is already registered as {existing.name!r}")
    try:
        billing.open_account(session, inn=inn, name=fields["name"], now=now, actor=actor)
    except billing.AccountExists as ex:
        raise Conflict(str(ex)) from None
    row = Subscriber(
        inn=inn, status=SubscriberStatus.ACTIVE, created_at=now, updated_at=now, **fields
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.subscriber.registered",
        object=f"subscriber:{inn}",
        details={"inn": inn, **fields},
        now=now,
    )
    return row, True


def get_subscriber(session: Session, inn: str) -> Subscriber:
    row = session.get(Subscriber, inn) if isinstance(inn, str) else None
    if row is None:
        raise NotFound(f"no subscriber with INN {inn}")
    return row


def list_subscribers(session: Session, inns: set[str] | None = None) -> list[Subscriber]:
    """Subscribers by INN; only those in ``inns`` unless it is None."""
    query = select(Subscriber).order_by(Subscriber.inn)
    if inns is not None:
        if not inns:
            return []
        query = query.where(Subscriber.inn.in_(sorted(inns)))
    return list(session.scalars(query))


def update_subscriber(
    session: Session, inn: str, changes: Mapping[str, Any], *, now: datetime, actor: str
) -> Subscriber:
    """Change a subscriber's requisites (name, legal form, locality, e-mail); journalled.

    Certificates already issued keep what they say: a changed requisite is what makes the
    next renewal go to an officer (§18.2.3).
    """
    row = get_subscriber(session, inn)
    unknown = set(changes) - set(_SUBSCRIBER_FIELDS)
    if unknown:
        raise InvalidField(sorted(unknown)[0], "cannot be changed here")
    merged = {k: changes.get(k, getattr(row, k)) for k in _SUBSCRIBER_FIELDS}
    fields = _subscriber_fields(merged)
    before = {k: getattr(row, k) for k in fields if getattr(row, k) != fields[k]}
    if not before:
        return row
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = now
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.subscriber.changed",
        object=f"subscriber:{inn}",
        details={"before": before, "after": {k: fields[k] for k in before}},
        now=now,
    )
    return row


def _passport(data: Mapping[str, Any]) -> str:
    passport = _text(data, "passport_series", _HOLDER_FIELDS["passport_series"]).upper()
    if not _PASSPORT.match(passport):
        raise InvalidField("passport_series", "letters and digits, e.g. ID1234567 or AN 1234567")
    return passport


def _phone(data: Mapping[str, Any]) -> str:
    phone = _text(data, "phone", _HOLDER_FIELDS["phone"]).replace(" ", "").replace("-", "")
    if not _PHONE.match(phone):
        raise InvalidField("phone", "7 to 15 digits, optionally after +, e.g. +996555123456")
    return phone


def _holder_fields(data: Mapping[str, Any]) -> dict[str, str]:
    checks = _texts(data, _HOLDER_FIELDS)
    checks["passport_series"] = functools.partial(_passport, data)
    checks["phone"] = functools.partial(_phone, data)
    return checked_fields(checks)


def create_holder(
    session: Session, data: Mapping[str, Any], *, now: datetime, actor: str
) -> Holder:
    """Register a holder for the subscriber ``data["inn"]``.

    ``data``: inn, full_name, position, passport_series, email, phone.
    """
    inn = check_inn(data.get("inn"))
    subscriber = get_subscriber(session, inn)
    if subscriber.status != SubscriberStatus.ACTIVE:
        raise Conflict(f"subscriber {inn} is {subscriber.status}")
    fields = _holder_fields(data)
    _identity_check(fields, subscriber.name, inn, subscriber.locality)
    surname, given = split_full_name(fields["full_name"])
    row = Holder(
        subscriber_inn=inn,
        surname=surname,
        given_name=given,
        status=HolderStatus.ACTIVE,
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.holder.registered",
        object=f"holder:{row.id}",
        # The passport series is personal data: the journal keeps who and for whom, not it.
        details={"inn": inn, "full_name": fields["full_name"], "position": fields["position"]},
        now=now,
    )
    return row


def verify_holder(
    session: Session, holder_id: int, *, document: object, now: datetime, actor: str
) -> Holder:
    """An officer vouches for a holder's identity (§3.3) on ``document`` (what was checked: a
    registration request, a passport seen at the office with its file reference); journalled.

    Only officers call this (the API and the CLI check it). A holder verified already keeps
    its first verification (the call returns it unchanged).
    """
    row = get_holder(session, holder_id)
    if not isinstance(document, str):
        raise InvalidField("document", "say which document was checked")
    reference = _text({"document": document}, "document", 200)
    if row.passport_series.replace(" ", "") in reference.upper().replace(" ", ""):
        # The passport series is personal data and never reaches the journal.
        raise InvalidField("document", "name the office file, not the passport series")
    if row.identity_verified_at is not None:
        return row
    if row.status != HolderStatus.ACTIVE:
        raise Conflict(f"holder {holder_id} is {row.status}")
    row.identity_verified_at, row.identity_verified_by = now, actor
    row.identity_document = reference
    row.updated_at = now
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.holder.verified",
        object=f"holder:{row.id}",
        details={"inn": row.subscriber_inn, "document": reference},
        now=now,
    )
    return row


def require_verified(holder: Holder) -> None:
    """IdentityNotVerified unless an officer verified the holder's identity."""
    if holder.identity_verified_at is None:
        raise IdentityNotVerified(holder.id)


def get_holder(session: Session, holder_id: int) -> Holder:
    row = session.get(Holder, holder_id) if isinstance(holder_id, int) else None
    if row is None:
        raise NotFound(f"no holder {holder_id}")
    return row


def list_holders(session: Session, inn: str) -> list[Holder]:
    get_subscriber(session, inn)
    query = select(Holder).where(Holder.subscriber_inn == inn).order_by(Holder.id)
    return list(session.scalars(query))


_CONTACT_FIELDS = frozenset({"email", "phone"})


def update_holder(
    session: Session,
    holder_id: int,
    changes: Mapping[str, Any],
    *,
    now: datetime,
    actor: str,
    document: str | None = None,
) -> Holder:
    """Change a holder's requisites; journalled (which fields changed, not the values).

    The e-mail and phone are where activation codes go, so changing them is what an attacker
    would try first: it takes ``document`` (the reference of the papers the holder presented to
    the officer), notifies the **old** e-mail through the outbox, and stamps
    ``contact_changed_at``, which holds activation back for a policy delay.
    """
    row = get_holder(session, holder_id)
    unknown = set(changes) - set(_HOLDER_FIELDS)
    if unknown:
        raise InvalidField(sorted(unknown)[0], "cannot be changed here")
    merged = {k: changes.get(k, getattr(row, k)) for k in _HOLDER_FIELDS}
    fields = _holder_fields(merged)
    subscriber = get_subscriber(session, row.subscriber_inn)
    _identity_check(fields, subscriber.name, subscriber.inn, subscriber.locality)
    changed = sorted(k for k in fields if getattr(row, k) != fields[k])
    if not changed:
        return row
    contact = _CONTACT_FIELDS.intersection(changed)
    reference = clean_text(document or "", "document")
    if contact and not 1 <= len(reference) <= 200:
        raise InvalidField(
            "document",
            "a change of e-mail or phone needs the reference of the documents the holder"
            " presented (1-200 characters)",
        )
    old_email = row.email
    for key, value in fields.items():
        setattr(row, key, value)
    row.surname, row.given_name = split_full_name(fields["full_name"])
    row.updated_at = now
    details: dict[str, Any] = {"changed": changed}
    if contact:
        row.contact_changed_at = now
        details["document"] = reference
        details["notified"] = outbox.enqueue(
            session,
            recipient=old_email,
            subject="Tamga: контактные данные владельца сертификата изменены",
            body=_contact_notice(sorted(contact), now),
            purpose="contact-changed",
            now=now,
        )
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.holder.changed",
        object=f"holder:{holder_id}",
        details=details,
        now=now,
    )
    return row


def _contact_notice(fields: list[str], now: datetime) -> str:
    names = {"email": "e-mail", "phone": "телефон / phone"}
    return (
        f"{now:%Y-%m-%d %H:%M} UTC по вашему заявлению изменены: "
        f"{', '.join(names[f] for f in fields)}.\n"
        "Your contact details for Tamga certificates were changed at the operator's office.\n"
        "Activation codes now go to the new contact, after a waiting period. If you did not ask\n"
        "for this change, contact the operator at once: the change can be stopped before then.\n"
    )


def subject_identity(subscriber: Subscriber, holder: Holder) -> SubjectIdentity:
    """What a certificate for ``holder`` acting for ``subscriber`` names today."""
    return SubjectIdentity(
        full_name=holder.full_name,
        surname=holder.surname,
        given_name=holder.given_name,
        position=holder.position,
        company=subscriber.name,
        company_inn=subscriber.inn,
        locality=subscriber.locality,
        email=holder.email,
    )


def requisites(subscriber: Subscriber, holder: Holder) -> dict[str, str]:
    """The seven §18.2.2 requisites as they stand in the registry now."""
    return {
        "company_inn": subscriber.inn,
        "company_name": subscriber.name,
        "locality": subscriber.locality,
        "full_name": holder.full_name,
        "position": holder.position,
        "passport_series": holder.passport_series,
        "email": holder.email,
    }


def add_foreign_access(
    session: Session, inn: str, data: Mapping[str, Any], *, now: datetime, actor: str
) -> ForeignAccess:
    """Register a static IP the subscriber may use from abroad, with its place and dates (§3.6)."""
    subscriber = get_subscriber(session, inn)
    raw = data.get("address")
    try:
        address = str(ipaddress.ip_address(raw)) if isinstance(raw, str) else None
    except ValueError:
        address = None
    if address is None:
        raise InvalidField("address", "one static IPv4 or IPv6 address")
    location = _text(data, "location", 200)
    days: dict[str, date] = {}
    for field in ("valid_from", "valid_until"):
        value = data.get(field)
        try:
            days[field] = date.fromisoformat(value) if isinstance(value, str) else date.min
        except ValueError:
            days[field] = date.min
        if days[field] == date.min:
            raise InvalidField(field, "a date, YYYY-MM-DD")
    if days["valid_until"] < days["valid_from"]:
        raise InvalidField("valid_until", "is before valid_from")
    row = ForeignAccess(
        inn=subscriber.inn,
        address=address,
        location=location,
        created_at=now,
        created_by=actor,
        **days,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.subscriber.foreign_access",
        object=f"subscriber:{inn}",
        details={"address": address, "location": location, **{k: str(v) for k, v in days.items()}},
        now=now,
    )
    return row


def foreign_addresses(session: Session, inn: str, on: date) -> set[str]:
    """The static addresses subscriber ``inn`` may use from abroad on day ``on``."""
    query = select(ForeignAccess.address).where(
        ForeignAccess.inn == inn, ForeignAccess.valid_from <= on, ForeignAccess.valid_until >= on
    )
    return set(session.scalars(query))


def list_foreign_access(session: Session, inn: str) -> list[ForeignAccess]:
    get_subscriber(session, inn)
    query = select(ForeignAccess).where(ForeignAccess.inn == inn).order_by(ForeignAccess.id)
    return list(session.scalars(query))

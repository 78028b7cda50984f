"""Powers of attorney: which taxpayers a tax representative's holder may file for (§3.2).

A power of attorney names the served taxpayer's requisites (INN, name, legal form, locality),
its document number, the day it was issued and the days it is valid (both included, Bishkek
calendar days). It is recorded for a holder whatever the holder's certificates; revoking it is
final (§4.3.10: the representative must tell the operator when it ends).

A complex certificate serves a limited number of companies (``allowed_companies``): recording a
power that would make the holder's valid taxpayers exceed the limit of one of its *active*
complex certificates on any day from today on is refused. Other holders may record powers;
the limit of the certificate actually used is checked again at signing (``check_company_limit``).
Only the served taxpayers count, not the representative's own company.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca import registry
from ca.errors import Conflict, InvalidField, InvalidFields, NotFound
from ca.models import Certificate, Holder, PowerOfAttorney
from db import audit
from policies.calendar import local_date
from policies.cert_profiles import CertRole, allowed_companies
from policies.statuses import CertificateStatus, HolderStatus
from policies.words import article

__all__ = [
    "check_company_limit",
    "create_power",
    "get_power",
    "is_valid_on",
    "list_powers",
    "revoke_power",
    "valid_taxpayers",
]

_TEXT_FIELDS = {
    "taxpayer_name": 200,
    "taxpayer_legal_form": 64,
    "taxpayer_locality": 128,
    "document_number": 64,
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COMPLEX = tuple(r.value for r in CertRole if r.value.startswith("complex_"))
_NOTE_LIMIT = 2000


def _day(data: Mapping[str, Any], field: str) -> date:
    value = data.get(field)
    if not isinstance(value, str) or not _DAY.match(value):
        raise InvalidField(field, "a day as YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidField(field, f"{value} is not a calendar day") from None
    if not 1900 <= day.year <= 9998:
        raise InvalidField(field, "a day between 1900 and 9998")
    return day


def _fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The checked power-of-attorney fields; every bad one is named at once (InvalidFields)."""
    fields: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def take(name: str, check: Callable[[], Any]) -> None:
        try:
            fields[name] = check()
        except InvalidField as ex:
            errors[ex.field] = ex.message

    take("holder_id", lambda: _holder_id(data.get("holder_id")))
    take("taxpayer_inn", lambda: registry.check_inn(data.get("taxpayer_inn"), "taxpayer_inn"))
    for name, limit in _TEXT_FIELDS.items():
        take(name, functools.partial(registry.check_text, data, name, limit))
    for name in ("issued_on", "valid_from", "valid_until"):
        take(name, functools.partial(_day, data, name))
    if {"valid_from", "valid_until"} <= fields.keys() and fields["valid_until"] < fields[
        "valid_from"
    ]:
        errors["valid_until"] = "must not be before valid_from"
    if {"issued_on", "valid_from"} <= fields.keys() and fields["issued_on"] > fields["valid_from"]:
        errors["issued_on"] = "a power of attorney cannot take effect before it is issued"
    if errors:
        raise InvalidFields(errors)
    return fields


def _holder_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise InvalidField("holder_id", "a holder id (a positive whole number)")
    return value


def is_valid_on(power: PowerOfAttorney, on: date) -> bool:
    """Not revoked, and ``on`` lies within its validity (both ends included)."""
    return power.revoked_at is None and power.valid_from <= on <= power.valid_until


def _taxpayers_on(powers: Iterable[PowerOfAttorney], on: date) -> set[str]:
    return {p.taxpayer_inn for p in powers if is_valid_on(p, on)}


def _active_complex_limit(session: Session, holder_id: int) -> tuple[str, int] | None:
    """(role, companies) of the holder's most limiting active complex certificate, if any."""
    query = select(Certificate.role).where(
        Certificate.holder_id == holder_id,
        Certificate.status == CertificateStatus.ACTIVE,
        Certificate.role.in_(_COMPLEX),
    )
    limits = [
        (role, limit)
        for role in set(session.scalars(query))
        if (limit := allowed_companies(CertRole(role))) is not None
    ]
    return min(limits, key=lambda item: item[1]) if limits else None


def _check_new_power(
    session: Session, holder_id: int, fields: Mapping[str, Any], *, now: datetime
) -> None:
    """Conflict if the new power would exceed an active complex certificate's limit.

    The number of valid taxpayers only grows on a day some power starts, so it is enough to
    count on the new power's first day (or today) and on each later start within its period.
    """
    found = _active_complex_limit(session, holder_id)
    start = max(fields["valid_from"], local_date(now))
    if found is None or start > fields["valid_until"]:
        return
    role, limit = found
    others = list_powers(session, holder_id)
    days = {start} | {p.valid_from for p in others if start < p.valid_from <= fields["valid_until"]}
    for day in sorted(days):
        count = len(_taxpayers_on(others, day) | {fields["taxpayer_inn"]})
        if count > limit:
            raise Conflict(
                f"holder {holder_id}'s active {role} certificate serves at most {limit} "
                f"companies; on {day} this power of attorney would make {count}"
            )


def create_power(
    session: Session, data: Mapping[str, Any], *, now: datetime, actor: str
) -> tuple[PowerOfAttorney, bool]:
    """Record a power of attorney for holder ``data["holder_id"]``: ``(row, created)``.

    The same holder, taxpayer and document number with the same details again is a replay
    (``created`` False); with other details, or after it was revoked, a Conflict.
    """
    fields = _fields(data)
    holder = _get_holder(session, fields.pop("holder_id"))
    existing = session.scalars(
        select(PowerOfAttorney).where(
            PowerOfAttorney.holder_id == holder.id,
            PowerOfAttorney.taxpayer_inn == fields["taxpayer_inn"],
            PowerOfAttorney.document_number == fields["document_number"],
        )
    ).first()
    if existing is not None:
        return _replay(existing, fields), False
    if holder.status != HolderStatus.ACTIVE:
        raise Conflict(f"holder {holder.id} is {holder.status}")
    _check_new_power(session, holder.id, fields, now=now)
    row = PowerOfAttorney(holder_id=holder.id, created_at=now, created_by=actor, **fields)
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.power.recorded",
        object=f"power:{row.id}",
        details={
            "holder_id": holder.id,
            "taxpayer_inn": row.taxpayer_inn,
            "document_number": row.document_number,
            "valid_from": row.valid_from.isoformat(),
            "valid_until": row.valid_until.isoformat(),
        },
        now=now,
    )
    return row, True


def _replay(existing: PowerOfAttorney, fields: Mapping[str, Any]) -> PowerOfAttorney:
    what = f"power of attorney {existing.document_number} for {existing.taxpayer_inn}"
    if existing.revoked_at is not None:
        raise Conflict(f"{what} was revoked; a revoked power cannot be recorded again")
    if any(getattr(existing, k) != v for k, v in fields.items()):
        raise Conflict(f"{what} is already recorded with other details (id {existing.id})")
    return existing


def _get_holder(session: Session, holder_id: int) -> Holder:
    holder = session.get(Holder, holder_id)
    if holder is None:
        raise NotFound(f"no holder {holder_id}")
    return holder


def get_power(session: Session, power_id: int) -> PowerOfAttorney:
    row = session.get(PowerOfAttorney, power_id) if isinstance(power_id, int) else None
    if row is None:
        raise NotFound(f"no power of attorney {power_id}")
    return row


def revoke_power(
    session: Session, power_id: int, *, note: object, now: datetime, actor: str
) -> PowerOfAttorney:
    """Revoke a power of attorney with a reason (required); final: again is a Conflict."""
    row = get_power(session, power_id)
    if not isinstance(note, str) or not " ".join(note.split()):
        raise InvalidField("note", "a reason is required")
    text = registry.clean_text(note, "note")
    if len(text) > _NOTE_LIMIT:
        raise InvalidField("note", f"is longer than {_NOTE_LIMIT} characters")
    if row.revoked_at is not None:
        raise Conflict(f"power of attorney {power_id} was revoked already")
    row.revoked_at, row.revoked_by, row.revocation_note = now, actor, text
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="ca.power.revoked",
        object=f"power:{row.id}",
        details={"holder_id": row.holder_id, "taxpayer_inn": row.taxpayer_inn, "note": text},
        now=now,
    )
    return row


def list_powers(session: Session, holder_id: int) -> list[PowerOfAttorney]:
    """A holder's powers of attorney, revoked ones included, in the order recorded."""
    _get_holder(session, holder_id)
    query = select(PowerOfAttorney).where(PowerOfAttorney.holder_id == holder_id)
    return list(session.scalars(query.order_by(PowerOfAttorney.id)))


def valid_taxpayers(session: Session, holder_id: int, on: date) -> list[str]:
    """The INNs the holder may file for on ``on`` by an unrevoked power valid that day."""
    return sorted(_taxpayers_on(list_powers(session, holder_id), on))


def check_company_limit(session: Session, holder_id: int, role: CertRole, on: date) -> None:
    """Conflict when the holder's valid taxpayers on ``on`` exceed what ``role`` serves."""
    limit = allowed_companies(role)
    if limit is None:
        return
    count = len(valid_taxpayers(session, holder_id, on))
    if count > limit:
        raise Conflict(
            f"holder {holder_id} holds valid powers of attorney for {count} companies on {on}; "
            f"{article(role.value)} certificate serves at most {limit}"
        )

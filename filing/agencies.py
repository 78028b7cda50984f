"""The registry of agencies and their offices: where reports go, and whose signature answers.

An agency's receipt-signing certificate is pinned: a delivery receipt or a check result counts
only if it verifies with exactly that certificate (not with any certificate some CA vouches for).
Registering or changing an agency is an officer's act, journalled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

import db
from ca.errors import InvalidField
from ca.registry import clean_text
from filing.errors import InvalidReport, NotFound
from filing.models import Agency, AgencyOffice
from policies.filing import AGENCY_KINDS

__all__ = ["AgencyInfo", "add_office", "agency_certificate", "list_agencies", "register_agency"]


@dataclass(frozen=True)
class AgencyInfo:
    code: str
    name: str
    endpoint: str
    active: bool
    certificate_subject: str
    certificate_sha256: str
    offices: tuple[tuple[str, str], ...]  # (code, name)


def _certificate(data: bytes) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise InvalidReport(
            {"receipt_certificate": "is not an X.509 certificate (PEM or DER)"}
        ) from None


def _endpoint(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise InvalidReport({"endpoint": "is not a URL"}) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not value.isascii()
        or not value.isprintable()
        or len(value) > 500
        or (port is not None and not 0 < port < 65536)
        or parts.query
        or parts.fragment
    ):
        raise InvalidReport({"endpoint": "is an http(s) base URL without query or fragment"})
    return value.rstrip("/")


def _clean(value: str, field: str, limit: int) -> str:
    try:
        text = clean_text(value, field)
    except InvalidField as ex:
        raise InvalidReport({field: ex.message}) from None
    if not text or len(text) > limit:
        raise InvalidReport({field: f"is 1 to {limit} characters"})
    return text


def register_agency(
    session: Session,
    *,
    code: str,
    name: str,
    endpoint: str,
    receipt_certificate: bytes,
    now: datetime,
    actor: str,
) -> AgencyInfo:
    """Register an agency, or change an existing one's name, endpoint or pinned certificate."""
    if code not in AGENCY_KINDS:
        raise InvalidReport({"code": f"is one of {', '.join(AGENCY_KINDS)}"})
    name = _clean(name, "name", 200)
    endpoint = _endpoint(endpoint)
    der = _certificate(receipt_certificate).public_bytes(serialization.Encoding.DER)
    row = session.get(Agency, code)
    if row is None:
        row = Agency(code=code, created_at=now, active=True)
        session.add(row)
    row.name, row.endpoint, row.receipt_certificate, row.updated_at = name, endpoint, der, now
    session.flush()
    info = _info(session, row)
    db.append(
        session,
        actor=actor,
        action="filing.agency.registered",
        object=f"agency:{code}",
        details={"endpoint": endpoint, "certificate_sha256": info.certificate_sha256},
        now=now,
    )
    return info


def add_office(
    session: Session, *, agency: str, code: str, name: str, now: datetime, actor: str
) -> AgencyInfo:
    row = session.get(Agency, agency)
    if row is None:
        raise NotFound(f"no agency {agency!r}")
    if not code or len(code) > 16 or not code.isascii() or not code.replace("-", "").isalnum():
        raise InvalidReport({"code": "is 1 to 16 letters, digits or hyphens"})
    name = _clean(name, "name", 200)
    office = session.scalars(
        select(AgencyOffice).where(AgencyOffice.agency_code == agency, AgencyOffice.code == code)
    ).one_or_none()
    if office is None:
        session.add(AgencyOffice(agency_code=agency, code=code, name=name, active=True))
    else:
        office.name, office.active = name, True
    session.flush()
    db.append(
        session,
        actor=actor,
        action="filing.office.registered",
        object=f"agency:{agency}:office:{code}",
        details={"name": name},
        now=now,
    )
    return _info(session, row)


def agency_certificate(row: Agency) -> x509.Certificate:
    return x509.load_der_x509_certificate(row.receipt_certificate)


def _info(session: Session, row: Agency) -> AgencyInfo:
    cert = agency_certificate(row)
    offices = session.scalars(
        select(AgencyOffice)
        .where(AgencyOffice.agency_code == row.code, AgencyOffice.active.is_(True))
        .order_by(AgencyOffice.code)
    )
    return AgencyInfo(
        code=row.code,
        name=row.name,
        endpoint=row.endpoint,
        active=row.active,
        certificate_subject=cert.subject.rfc4514_string(),
        certificate_sha256=sha256(row.receipt_certificate).hexdigest(),
        offices=tuple((o.code, o.name) for o in offices),
    )


def list_agencies(session: Session) -> list[AgencyInfo]:
    return [_info(session, row) for row in session.scalars(select(Agency).order_by(Agency.code))]

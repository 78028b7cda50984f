"""Database rows of the CA domain: installed CA certificates and the serial registry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db import Base

__all__ = ["CACertificate", "CertificateSerial"]


class CACertificate(Base):
    """A CA certificate Tamga uses or used (root stand-in, configured root, issuing CA).

    Rows are never rewritten except ``active``: a re-imported issuing certificate is a new row
    and the old one is deactivated, so the history of what was published stays.
    """

    __tablename__ = "ca_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), index=True)  # "root" | "issuing"
    serial: Mapped[str] = mapped_column(String(64))  # lowercase hex
    subject: Mapped[str] = mapped_column(String(512))  # RFC 4514 string, for people
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_label: Mapped[str | None] = mapped_column(String(64))  # None: the key is not ours
    der: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CertificateSerial(Base):
    """Every serial number this CA has used or reserved: the uniqueness guarantee (RFC 5280).

    A serial is reserved here before anything is signed with it (two-phase issuance), so a
    crash after reservation wastes a number but never reuses one.
    """

    __tablename__ = "certificate_serials"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)  # lowercase hex
    issuer: Mapped[str] = mapped_column(String(32))  # which CA signs with it
    purpose: Mapped[str] = mapped_column(String(64))
    reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

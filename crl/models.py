"""Database rows of the CRL domain: every CRL ever signed, append-only.

Migration 0005 makes the database refuse UPDATE and DELETE on ``crl_issues``: a CRL that was
published is evidence (contract §8.2.7: the dispute commission checks the CRL), so it stays.
``UNIQUE(issuer, number)`` is what keeps CRL numbers from repeating across nodes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime

__all__ = ["CRLIssue", "OCSPResponseRow"]

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class CRLIssue(Base):
    """One signed CRL: its number, its dates, its DER and the digest used as HTTP ETag."""

    __tablename__ = "crl_issues"
    __table_args__ = (
        UniqueConstraint("issuer", "number", name="uq_crl_issues_issuer_number"),
        CheckConstraint("issuer IN ('root', 'issuing')", name="issuer_known"),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint("entries >= 0", name="entries_not_negative"),
        CheckConstraint("next_update > this_update", name="next_after_this"),
        CheckConstraint(
            "(kind = 'full' AND base_number IS NULL) OR "
            "(kind = 'delta' AND base_number IS NOT NULL AND base_number < number)",
            name="kind_base",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(16))  # "root" | "issuing"
    number: Mapped[int] = mapped_column(BigInteger)  # the CRLNumber extension (RFC 5280 §5.2.3)
    this_update: Mapped[datetime] = mapped_column(UTCDateTime)
    next_update: Mapped[datetime] = mapped_column(UTCDateTime)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))  # lowercase hex of the DER; the ETag
    entries: Mapped[int] = mapped_column(Integer)  # revoked certificates listed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The newest certificate status change this CRL reflects, to the microsecond, as
    # ``certificate_events.at`` records it: a later change makes the CRL due (issue #12).
    status_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 'full' (a base CRL) or 'delta' (RFC 5280 §5.2.4); both share the issuer's number sequence.
    kind: Mapped[str] = mapped_column(String(8), server_default="full", default="full")
    # A delta's BaseCRLNumber: the number of the full CRL it is relative to (None for a full).
    base_number: Mapped[int | None] = mapped_column(BigInteger)


class OCSPResponseRow(Base):
    """One pre-signed OCSP response: per issuer, certificate serial and CertID hash algorithm.

    A cache, not evidence (migration 0013): rows are re-signed in place (upsert) when the
    certificate's status changes, when their nextUpdate comes near, or when the responder
    certificate is renewed. ``status``/``revoked_at``/``reason`` are what the response says, to
    compare with ``crl.status_at`` now: a difference means the row is stale.
    """

    __tablename__ = "ocsp_responses"
    __table_args__ = (
        CheckConstraint("issuer IN ('root', 'issuing')", name="issuer_known"),
        CheckConstraint("status IN ('good', 'revoked', 'on_hold')", name="status_known"),
        CheckConstraint("next_update > this_update", name="next_after_this"),
    )

    issuer: Mapped[str] = mapped_column(String(16), primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), primary_key=True)  # lowercase hex
    hash_algorithm: Mapped[str] = mapped_column(String(16), primary_key=True)  # "sha1", ...
    status: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # as status_at says
    reason: Mapped[str | None] = mapped_column(String(32))  # ReasonFlags name
    this_update: Mapped[datetime] = mapped_column(UTCDateTime)
    next_update: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    produced_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responder_serial: Mapped[str] = mapped_column(String(40))  # the signing certificate's
    der: Mapped[bytes] = mapped_column(LargeBinary)

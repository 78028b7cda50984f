"""Database rows of the CA domain: CA certificates, serials, and the registry of subscribers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime
from policies.statuses import HolderStatus, RegistrationStatus, SubscriberStatus

__all__ = [
    "CACertificate",
    "Certificate",
    "CertificateEvent",
    "CertificateSerial",
    "Holder",
    "PooledKey",
    "PowerOfAttorney",
    "RegistrationRequest",
    "RenewalDocument",
    "RenewalRequest",
    "Subscriber",
]


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


# ---- the registry (issue #4) ------------------------------------------------------------------
#
# Subscribers, holders, registration requests, powers of attorney, subscriber certificates and
# their status history, renewal requests and their supporting documents. Migration 0006
# creates them; ``certificate_events`` is append-only.

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Subscriber(Base):
    """A company or individual entrepreneur, by its 14-digit INN (§1, DOMAIN.md "Parties")."""

    __tablename__ = "subscribers"
    __table_args__ = (CheckConstraint("status IN ('active', 'closed')", name="status_known"),)

    inn: Mapped[str] = mapped_column(String(14), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_form: Mapped[str] = mapped_column(String(64))
    locality: Mapped[str] = mapped_column(String(128))  # city or village (§18.2.2)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Holder(Base):
    """A person who holds certificates for one subscriber (§18.2.2 lists what must not change)."""

    __tablename__ = "holders"
    __table_args__ = (CheckConstraint("status IN ('active', 'inactive')", name="status_known"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_inn: Mapped[str] = mapped_column(ForeignKey("subscribers.inn"), index=True)
    full_name: Mapped[str] = mapped_column(String(64))  # "Surname Given [Patronymic]"
    surname: Mapped[str] = mapped_column(String(64))
    given_name: Mapped[str] = mapped_column(String(64))
    position: Mapped[str] = mapped_column(String(64))
    passport_series: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=HolderStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When an officer last changed the e-mail or phone (activation waits after it).
    contact_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who verified the person's identity (§3.3), when and on what: an officer approving a
    # registration request, or checking the documents at the office. No certificate without it.
    identity_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    identity_verified_by: Mapped[str | None] = mapped_column(String(64))
    identity_document: Mapped[str | None] = mapped_column(String(200))


class RegistrationRequest(Base):
    """A request to register a subscriber and its first holder and certificate (§3.3).

    ``subscriber`` and ``holder`` keep the submitted fields as JSON until an officer approves;
    approval creates (or reuses) the registry rows, opens the billing account and issues the
    payment account for the first certificate.
    """

    __tablename__ = "registration_requests"
    __table_args__ = (
        CheckConstraint("channel IN ('office', 'online')", name="channel_known"),
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=RegistrationStatus.PENDING)
    inn: Mapped[str] = mapped_column(String(14), index=True)
    subscriber: Mapped[dict[str, Any]] = mapped_column(JSON)
    holder: Mapped[dict[str, Any]] = mapped_column(JSON)
    role: Mapped[str] = mapped_column(String(32))
    storage: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str] = mapped_column(String(64))
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_note: Mapped[str | None] = mapped_column(Text)
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("holders.id"))
    payment_account: Mapped[str | None] = mapped_column(String(16))
    # At the decision: was the INN already registered (the request adds to a subscriber)?
    subscriber_existed: Mapped[bool | None] = mapped_column(Boolean)


class PowerOfAttorney(Base):
    """A served taxpayer's power of attorney for a tax representative (§3.2, §4.3.10)."""

    __tablename__ = "powers_of_attorney"
    __table_args__ = (CheckConstraint("valid_until >= valid_from", name="valid_period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    taxpayer_inn: Mapped[str] = mapped_column(String(14), index=True)
    taxpayer_name: Mapped[str] = mapped_column(String(200))
    taxpayer_legal_form: Mapped[str] = mapped_column(String(64))
    taxpayer_locality: Mapped[str] = mapped_column(String(128))
    document_number: Mapped[str] = mapped_column(String(64))
    issued_on: Mapped[date] = mapped_column(Date)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revocation_note: Mapped[str | None] = mapped_column(Text)


class Certificate(Base):
    """A subscriber certificate, from serial reservation (``pending``) to its final status.

    ``status``: pending (serial reserved, body linted, not signed yet) → active, or failed
    (refused after reservation: nothing was signed); active ⇄ suspended (certificateHold);
    active or suspended → revoked (final). Expiry is ``not_after``, not a status.
    """

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'failed', 'active', 'suspended', 'revoked')",
            name="status_known",
        ),
        CheckConstraint("storage IN ('cloud', 'rutoken')", name="storage_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # lowercase hex
    subscriber_inn: Mapped[str] = mapped_column(ForeignKey("subscribers.inn"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    storage: Mapped[str] = mapped_column(String(16))
    key_spec: Mapped[str] = mapped_column(String(16))  # "ec-p256", "rsa-2048", ...
    key_label: Mapped[str | None] = mapped_column(String(64))  # cloud: CKA_LABEL in tamga-cloud
    spki_sha256: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(1024))
    requisites: Mapped[dict[str, str]] = mapped_column(JSON)  # §18.2.2 snapshot at issuance
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tbs_sha256: Mapped[str] = mapped_column(String(64))  # the linted to-be-signed body
    der: Mapped[bytes | None] = mapped_column(LargeBinary)
    tariff: Mapped[str] = mapped_column(String(64))
    price: Mapped[int] = mapped_column(BigInteger)
    payment_key: Mapped[str] = mapped_column(String(120))  # the ledger hold that pays it
    request_key: Mapped[str | None] = mapped_column(String(250), unique=True)  # idempotency
    renewal_of: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"), unique=True)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The latest revocation or suspension: what the CRL entry says.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    invalidity_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    key_destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CertificateEvent(Base):
    """One change of a certificate's status, never rewritten (migration 0006 enforces it)."""

    __tablename__ = "certificate_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))  # issued | suspended | resumed | revoked | ...
    reason: Mapped[str | None] = mapped_column(String(32))
    invalidity_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the delta CRLs read by time
    actor: Mapped[str] = mapped_column(String(64))


class RenewalRequest(Base):
    """A holder's signed renewal request (seed 003, §18) and what became of it.

    ``status``: review (requisites changed: waits for documents and an officer) → approved or
    rejected; accepted (automatic) and approved requests are issued (``new_certificate_id``).
    """

    __tablename__ = "renewal_requests"
    __table_args__ = (
        CheckConstraint(
            "status IN ('review', 'accepted', 'approved', 'rejected', 'issued')",
            name="status_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)  # `tamga ca renew-due`
    document: Mapped[str] = mapped_column(Text)  # the request text the holder signed
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)  # detached CMS, DER
    csr_der: Mapped[bytes | None] = mapped_column(LargeBinary)  # RuToken: the new CSR
    new_not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    changed: Mapped[list[str]] = mapped_column(JSON)  # §18.2.2 requisites that changed
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    charge_key: Mapped[str | None] = mapped_column(String(120))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_note: Mapped[str | None] = mapped_column(Text)
    new_certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))


class RenewalDocument(Base):
    """A supporting document uploaded for a renewal whose requisites changed (§18.2.3)."""

    __tablename__ = "renewal_documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    renewal_id: Mapped[int] = mapped_column(ForeignKey("renewal_requests.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(64))


class ForeignAccess(Base):
    """A static IP from which a subscriber may use the service from abroad (§3.5–3.6)."""

    __tablename__ = "foreign_access"
    __table_args__ = (CheckConstraint("valid_until >= valid_from", name="valid_period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inn: Mapped[str] = mapped_column(ForeignKey("subscribers.inn"), index=True)
    address: Mapped[str] = mapped_column(String(64))  # one IPv4 or IPv6 address
    location: Mapped[str] = mapped_column(String(200))  # where the subscriber works from
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


# ---- the cloud key pool (issue #16) ----------------------------------------------------------


class PooledKey(Base):
    """A ready key pair in ``tamga-cloud`` that no certificate names yet (``ca.key_pool``).

    The row is the pool: a key is taken by deleting its row (``claim_key``), so it can be
    taken once; the label then moves to the certificate (``certificates.key_label``). The
    public key is kept here so that issuance needs no token call to certify it. Migration 0015.
    """

    __tablename__ = "cloud_key_pool"
    __table_args__ = (Index("ix_cloud_key_pool_key_spec_created_at", "key_spec", "created_at"),)

    label: Mapped[str] = mapped_column(String(64), primary_key=True)  # CKA_LABEL in tamga-cloud
    key_spec: Mapped[str] = mapped_column(String(16))  # KeySpec.name: "ec-p256", "rsa-2048"
    spki_der: Mapped[bytes] = mapped_column(LargeBinary)  # SubjectPublicKeyInfo, DER
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the key was generated
    created_by: Mapped[str] = mapped_column(String(64))

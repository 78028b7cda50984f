"""Database rows of cloud signing: activations (PIN and seed), SADs, and signature evidence."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime

__all__ = ["ActivationCode", "CloudCredential", "CloudSignature", "SignatureActivation"]

BigId = BigInteger().with_variant(Integer(), "sqlite")


class CloudCredential(Base):
    """A cloud certificate's activation: who may use its key, and the lock-out counter."""

    __tablename__ = "cloud_credentials"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    pin_hash: Mapped[str] = mapped_column(String(200))
    totp_label: Mapped[str] = mapped_column(String(64))  # HMAC key in tamga-cloud
    last_totp_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ActivationCode(Base):
    """A one-time code sent to the holder's registered contact; only its SHA-256 is kept.

    ``purpose`` is ``activate`` (the first PIN of a cloud certificate) or ``reset`` (a forgotten
    PIN or a lost authenticator: using it destroys the old seed). At most one code of a
    certificate is open (``closed_at`` is None): sending a new one closes the previous.
    """

    __tablename__ = "activation_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"))
    purpose: Mapped[str] = mapped_column(String(16))
    code_sha256: Mapped[str] = mapped_column(String(64))
    sent_to: Mapped[str] = mapped_column(String(254))  # the holder's e-mail at the time
    # The holder's contact_changed_at when it was sent: a later change of contact voids it.
    contact_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignatureActivation(Base):
    """A SAD: what one ``authorize`` allowed, stored by its SHA-256 only."""

    __tablename__ = "signature_activations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sad_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"))
    hashes: Mapped[list[str]] = mapped_column(JSON)  # base64, as authorised
    num_signatures: Mapped[int] = mapped_column(Integer)
    inn: Mapped[str] = mapped_column(String(14))
    role: Mapped[str] = mapped_column(String(16))
    end_user_ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CloudSignature(Base):
    """Evidence of one signature made with a cloud key (append-only, migration 0007)."""

    __tablename__ = "cloud_signatures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "hash" (signHash) | "cms" (/api/v1/signatures)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    serial: Mapped[str] = mapped_column(String(40))
    activation_id: Mapped[int] = mapped_column(ForeignKey("signature_activations.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"))
    inn: Mapped[str] = mapped_column(String(14), index=True)
    role: Mapped[str] = mapped_column(String(16))
    end_user_ip: Mapped[str | None] = mapped_column(String(64))
    hash_algorithm: Mapped[str] = mapped_column(String(16))
    document_hash: Mapped[str] = mapped_column(String(128))  # hex
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tst_serial: Mapped[str | None] = mapped_column(String(40))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)  # kind "cms": the CMS, DER

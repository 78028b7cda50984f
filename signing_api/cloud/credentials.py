"""Cloud credentials: the holder's PIN and one-time codes, SADs, and the signing rules.

Sole control (contract §6.6.4–6.6.8): a cloud key signs only with a Signature Activation Data
(SAD) that ``authorize`` hands out for the holder's PIN *and* a current TOTP code (RFC 6238).
The PIN is kept as an Argon2id hash; the TOTP seed is imported once into ``tamga-cloud`` as a
sensitive, non-extractable HMAC key (the token computes the codes), and is shown to the holder
once, as an ``otpauth://`` URI, at enrolment. Each code is accepted once.

A SAD is bound to the credential, the exact hashes (SCAL 2), their number, the calling client,
and the company and role it signs for; it lives 5 minutes and is consumed atomically (a
conditional UPDATE: of concurrent users exactly one wins). Only its SHA-256 is stored.
Five wrong PIN or OTP attempts lock the credential for 15 minutes; every attempt is journalled,
never with the PIN or the code.

A renewed certificate inherits its predecessor's activation (same holder, same PIN and seed),
found through ``certificates.renewal_of`` on first use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

import billing
from ca.errors import Conflict
from ca.issuance import certificate_state
from ca.models import Certificate
from ca.powers import check_company_limit, valid_taxpayers
from ca.registry import foreign_addresses
from db import Base, UTCDateTime, audit
from hsm import HSMError, HSMToken
from policies.calendar import local_date
from policies.cert_profiles import CertRole, allowed_companies, signs_as
from policies.signing import SIGNING_POLICY, SigningPolicy

__all__ = [
    "Authorized",
    "CloudCredential",
    "CloudSignature",
    "SignatureActivation",
    "SigningRefused",
    "activation_of",
    "authorize",
    "check_pin",
    "check_signing_allowed",
    "consume",
    "enrol",
    "record_signatures",
]

BigId = BigInteger().with_variant(Integer(), "sqlite")
_HASHER = PasswordHasher(type=Type.ID)  # Argon2id with argon2-cffi's RFC 9106 low-memory profile


class SigningRefused(Exception):
    """A signing request refused; ``code`` is the CSC error code, ``status`` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        self.code, self.message, self.status = code, message, status
        super().__init__(message)


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


# ---- enrolment ----------------------------------------------------------------------------------


def check_pin(pin: object, policy: SigningPolicy = SIGNING_POLICY) -> str:
    if not isinstance(pin, str) or not (policy.pin_min_length <= len(pin) <= policy.pin_max_length):
        raise SigningRefused(
            "invalid_request",
            f"a PIN is {policy.pin_min_length} to {policy.pin_max_length} characters",
        )
    if len(set(pin)) < 2:
        raise SigningRefused("invalid_request", "a PIN of one repeated character is refused")
    return pin


def enrol(
    session: Session,
    cloud_token: HSMToken,
    certificate: Certificate,
    *,
    pin: object,
    now: datetime,
    actor: str,
    policy: SigningPolicy = SIGNING_POLICY,
) -> str:
    """Set the holder's PIN and TOTP seed for a cloud certificate; the otpauth URI, once."""
    text = check_pin(pin, policy)
    if certificate.storage != "cloud" or certificate.key_label is None:
        raise SigningRefused("invalid_request", "only cloud certificates are activated here")
    if activation_of(session, certificate) is not None:
        raise SigningRefused("invalid_request", "this credential is activated already")
    seed = secrets.token_bytes(policy.totp.secret_bytes)
    label = f"totp-{certificate.serial}"[:64]
    try:
        cloud_token.import_hmac_secret(label, seed)
    except HSMError as ex:
        raise SigningRefused("server_error", f"the HSM refused the seed: {ex}", 503) from ex
    session.add(
        CloudCredential(
            certificate_id=certificate.id,
            holder_id=certificate.holder_id,
            pin_hash=_HASHER.hash(text),
            totp_label=label,
            failed_attempts=0,
            created_at=now,
        )
    )
    audit.append(
        session,
        actor=actor,
        action="csc.credential.enrolled",
        object=f"certificate:{certificate.serial}",
        details={"serial": certificate.serial, "holder": certificate.holder_id},
        now=now,
    )
    secret = base64.b32encode(seed).decode().rstrip("=")
    account = urllib.parse.quote(f"{policy.totp.issuer}:{certificate.serial[:16]}")
    query = urllib.parse.urlencode(
        {
            "secret": secret,
            "issuer": policy.totp.issuer,
            "algorithm": policy.totp.algorithm,
            "digits": policy.totp.digits,
            "period": policy.totp.period_seconds,
        }
    )
    return f"otpauth://totp/{account}?{query}"


def activation_of(session: Session, certificate: Certificate) -> CloudCredential | None:
    """The certificate's activation, or its predecessor's (a renewal keeps PIN and seed)."""
    found = session.get(CloudCredential, certificate.id)
    if found is not None:
        return found
    previous = certificate.renewal_of
    seen = 0
    while previous is not None and seen < 50:
        inherited = session.get(CloudCredential, previous)
        if inherited is not None:
            copy = CloudCredential(
                certificate_id=certificate.id,
                holder_id=certificate.holder_id,
                pin_hash=inherited.pin_hash,
                totp_label=inherited.totp_label,
                last_totp_step=inherited.last_totp_step,
                failed_attempts=0,
                created_at=inherited.created_at,
            )
            session.add(copy)
            session.flush()
            return copy
        previous = session.get_one(Certificate, previous).renewal_of
        seen += 1
    return None


# ---- the rules of use ---------------------------------------------------------------------------


def check_signing_allowed(
    session: Session,
    certificate: Certificate,
    *,
    inn: object,
    role: object,
    now: datetime,
    abroad: bool = False,
    end_user_ip: str | None = None,
) -> tuple[str, str]:
    """(inn, role) when ``certificate`` may sign for company ``inn`` in report role ``role``.

    head ↔ head, accountant ↔ accountant, head_as_accountant ↔ either (policies.cert_profiles);
    a complex certificate only for companies with a valid power of attorney, within its limit;
    any other only for its own company. The certificate must be valid now, the company's
    service not stopped (billing), and an end user the portal says is abroad must come from
    one of the subscriber's registered static addresses (§3.6).
    """
    state = certificate_state(certificate, now)
    if state != "valid":
        raise SigningRefused("invalid_request", f"the certificate is {state}")
    if not isinstance(role, str) or role not in ("head", "accountant"):
        raise SigningRefused("invalid_request", "clientData.role is head or accountant")
    if not isinstance(inn, str) or len(inn) != 14 or not inn.isdigit():
        raise SigningRefused("invalid_request", "clientData.inn is the company's 14-digit INN")
    cert_role = CertRole(certificate.role)
    if role not in signs_as(cert_role):
        raise SigningRefused(
            "invalid_request", f"a {cert_role.value} certificate does not sign as {role} (§1.5.3)"
        )
    today: date = local_date(now)
    if cert_role.value.startswith("complex_"):
        if inn not in valid_taxpayers(session, certificate.holder_id, today):
            raise SigningRefused(
                "invalid_request", f"no valid power of attorney of {inn} for this holder"
            )
        try:
            check_company_limit(session, certificate.holder_id, cert_role, today)
        except Conflict as ex:  # over the 5/10 limit
            limit = allowed_companies(cert_role)
            raise SigningRefused(
                "invalid_request", f"the certificate serves at most {limit} companies: {ex}"
            ) from None
        billed = inn
    elif inn != certificate.subscriber_inn:
        raise SigningRefused("invalid_request", "this certificate signs only for its own company")
    else:
        billed = certificate.subscriber_inn
    if abroad and (
        end_user_ip is None
        or end_user_ip not in foreign_addresses(session, certificate.subscriber_inn, today)
    ):
        raise SigningRefused(
            "access_denied",
            "from abroad the service is used only from the subscriber's registered static IP"
            " (§3.6)",
            403,
        )
    served = billing.service_state(session, certificate.subscriber_inn, now=now)
    if served.state != "active":
        raise SigningRefused("invalid_request", f"service for {billed} is stopped: {served.reason}")
    return inn, role


# ---- authorisation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authorized:
    """What ``authorize`` decided; ``sad`` is None when it refused (the refusal is committed)."""

    sad: str | None
    expires_in: int
    refusal: SigningRefused | None


def _totp_ok(
    session: Session,
    cloud_token: HSMToken,
    cred: CloudCredential,
    otp: str,
    now: datetime,
    policy: SigningPolicy,
) -> bool:
    if not otp.isascii() or not otp.isdigit() or len(otp) != policy.totp.digits:
        return False
    step = int(now.timestamp()) // policy.totp.period_seconds
    # The seed's last accepted step, over every credential that shares it (a renewal copies
    # its predecessor's activation on first use, and the predecessor may be used after that).
    steps = session.scalars(
        select(CloudCredential.last_totp_step)
        .where(CloudCredential.totp_label == cred.totp_label)
        .with_for_update()
    ).all()
    last = max((s for s in steps if s is not None), default=None)
    for candidate in range(step - policy.totp.skew_steps, step + policy.totp.skew_steps + 1):
        if last is not None and candidate <= last:
            continue  # each code once; never an older one after a newer one
        mac = cloud_token.hmac_sha1(cred.totp_label, candidate.to_bytes(8, "big"))
        offset = mac[-1] & 0x0F
        code = (int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF) % (
            10**policy.totp.digits
        )
        if hmac.compare_digest(f"{code:0{policy.totp.digits}d}", otp):
            cred.last_totp_step = candidate
            return True
    return False


def _pin_ok(cred: CloudCredential, pin: str) -> bool:
    try:
        return _HASHER.verify(cred.pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


def authorize(
    session: Session,
    cloud_token: HSMToken,
    certificate: Certificate,
    *,
    client_id: int,
    pin: object,
    otp: object,
    hashes: list[str],
    num_signatures: int,
    inn: str,
    role: str,
    end_user_ip: str | None,
    now: datetime,
    actor: str,
    policy: SigningPolicy = SIGNING_POLICY,
) -> Authorized:
    """Check PIN and OTP and issue a SAD; a wrong one counts towards the lock (committed)."""
    cred = activation_of(session, certificate)
    if cred is None:
        raise SigningRefused("invalid_request", "this credential has no PIN and OTP yet")
    session.refresh(cred, with_for_update=True)
    base = {"serial": certificate.serial, "client": client_id, "hashes": len(hashes)}
    if cred.locked_until is not None and cred.locked_until > now:
        audit.append(
            session,
            actor=actor,
            action="csc.authorize.refused",
            outcome="refused",
            object=f"certificate:{certificate.serial}",
            now=now,
            details={**base, "reason": "locked"},
        )
        return Authorized(
            None,
            0,
            SigningRefused(
                "invalid_request",
                f"the credential is locked until {cred.locked_until:%H:%M:%S} UTC after"
                f" {policy.max_failed_attempts} wrong attempts",
            ),
        )
    pin_ok = isinstance(pin, str) and _pin_ok(cred, pin)
    otp_ok = (
        pin_ok and isinstance(otp, str) and _totp_ok(session, cloud_token, cred, otp, now, policy)
    )
    if not (pin_ok and otp_ok):
        cred.failed_attempts += 1
        locked = cred.failed_attempts >= policy.max_failed_attempts
        if locked:
            cred.locked_until, cred.failed_attempts = now + policy.lock_for, 0
        which = "invalid_pin" if not pin_ok else "invalid_otp"
        audit.append(
            session,
            actor=actor,
            action="csc.authorize.refused",
            outcome="refused",
            object=f"certificate:{certificate.serial}",
            now=now,
            details={**base, "reason": which, "locked": locked},
        )
        words = "the PIN is wrong" if which == "invalid_pin" else "the OTP is wrong or used"
        return Authorized(None, 0, SigningRefused(which, words))
    cred.failed_attempts, cred.locked_until = 0, None
    sad = secrets.token_urlsafe(32)
    activation = SignatureActivation(
        sad_sha256=hashlib.sha256(sad.encode()).hexdigest(),
        certificate_id=certificate.id,
        client_id=client_id,
        hashes=hashes,
        num_signatures=num_signatures,
        inn=inn,
        role=role,
        end_user_ip=end_user_ip,
        created_at=now,
        expires_at=now + policy.sad_lifetime,
    )
    session.add(activation)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="csc.authorize.granted",
        object=f"certificate:{certificate.serial}",
        now=now,
        details={**base, "sad": activation.id, "inn": inn, "role": role},
    )
    return Authorized(sad, int(policy.sad_lifetime.total_seconds()), None)


def consume(
    session: Session,
    *,
    sad: object,
    certificate: Certificate,
    client_id: int,
    hashes: list[str],
    now: datetime,
) -> SignatureActivation:
    """The SAD's activation, used up now: SigningRefused unless every binding matches."""
    if not isinstance(sad, str) or not sad:
        raise SigningRefused("invalid_request", "SAD is required")
    digest = hashlib.sha256(sad.encode()).hexdigest()
    row = session.scalars(
        select(SignatureActivation).where(SignatureActivation.sad_sha256 == digest)
    ).one_or_none()
    refused = SigningRefused("invalid_request", "the SAD is not valid for this request")
    if row is None or row.certificate_id != certificate.id or row.client_id != client_id:
        raise refused
    if sorted(row.hashes) != sorted(hashes) or len(hashes) > row.num_signatures:
        raise SigningRefused("invalid_request", "the SAD was authorised for other hashes")
    if row.used_at is not None:
        raise SigningRefused("invalid_request", "the SAD was used already")
    if row.expires_at <= now:
        raise SigningRefused("invalid_request", "the SAD has expired")
    won = session.execute(
        update(SignatureActivation)
        .where(SignatureActivation.id == row.id, SignatureActivation.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent request used it
        raise SigningRefused("invalid_request", "the SAD was used already")
    session.refresh(row)
    return row


def record_signatures(
    session: Session,
    *,
    kind: str,
    certificate: Certificate,
    activation: SignatureActivation,
    hash_algorithm: str,
    document_hashes: list[bytes],
    now: datetime,
    actor: str,
    tst_serial: str | None = None,
    signature: bytes | None = None,
) -> list[CloudSignature]:
    """The evidence rows of one call (one per hash) and its one audit entry, written last.

    One journal entry per call, listing every hash, keeps the journal's head lock — taken by
    the append and held to the commit — as short as one entry whatever the batch size.
    """
    rows = [
        CloudSignature(
            kind=kind,
            certificate_id=certificate.id,
            serial=certificate.serial,
            activation_id=activation.id,
            client_id=activation.client_id,
            inn=activation.inn,
            role=activation.role,
            end_user_ip=activation.end_user_ip,
            hash_algorithm=hash_algorithm,
            document_hash=digest.hex(),
            signed_at=now,
            tst_serial=tst_serial,
            signature=signature,
        )
        for digest in document_hashes
    ]
    session.add_all(rows)
    session.flush()
    details: dict[str, Any] = {
        "signatures": [row.id for row in rows],
        "serial": certificate.serial,
        "inn": activation.inn,
        "role": activation.role,
        "sad": activation.id,
        "hashes": [row.document_hash for row in rows],
        "hash_algorithm": hash_algorithm,
        "end_user_ip": activation.end_user_ip,
    }
    if tst_serial:
        details["tst_serial"] = tst_serial
    audit.append(
        session,
        actor=actor,
        action=f"csc.signature.{kind}",
        object=f"certificate:{certificate.serial}",
        details=details,
        now=now,
    )
    return rows

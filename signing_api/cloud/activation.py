"""Activation and authorisation: the holder's PIN and one-time codes, and the SADs they open.

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
from datetime import datetime

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.models import Certificate
from db import audit
from hsm import HSMError, HSMToken
from policies.signing import SIGNING_POLICY, SigningPolicy
from signing_api.cloud.errors import Refusal, SigningRefused
from signing_api.cloud.models import CloudCredential, SignatureActivation

__all__ = ["Authorized", "activation_of", "authorize", "check_pin", "enrol"]

_HASHER = PasswordHasher(type=Type.ID)  # Argon2id with argon2-cffi's RFC 9106 low-memory profile


def check_pin(pin: object, policy: SigningPolicy = SIGNING_POLICY) -> str:
    if not isinstance(pin, str) or not (policy.pin_min_length <= len(pin) <= policy.pin_max_length):
        raise SigningRefused(
            Refusal.INVALID_REQUEST,
            f"a PIN is {policy.pin_min_length} to {policy.pin_max_length} characters",
            field="pin",
        )
    if len(set(pin)) < 2:
        raise SigningRefused(
            Refusal.INVALID_REQUEST, "a PIN of one repeated character is refused", field="pin"
        )
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
        raise SigningRefused(Refusal.INVALID_REQUEST, "only cloud certificates are activated here")
    if activation_of(session, certificate) is not None:
        raise SigningRefused(Refusal.INVALID_REQUEST, "this credential is activated already")
    seed = secrets.token_bytes(policy.totp.secret_bytes)
    label = f"totp-{certificate.serial}"[:64]
    try:
        cloud_token.import_hmac_secret(label, seed)
    except HSMError as ex:
        raise SigningRefused(Refusal.UNAVAILABLE, f"the HSM refused the seed: {ex}") from ex
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
        raise SigningRefused(Refusal.INVALID_REQUEST, "this credential has no PIN and OTP yet")
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
                Refusal.INVALID_REQUEST,
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
        return Authorized(None, 0, SigningRefused(Refusal(which), words))
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

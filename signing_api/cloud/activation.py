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

Who may set the PIN (issue #12): only someone who presents the one-time **activation code**
that Tamga sent to the holder's registered e-mail (``send_code``); a header naming the holder,
an officer's word or a portal's are not proof. The code is 80 random bits, kept as its SHA-256,
good for 72 hours and five attempts, never shown to officers or portals (it exists in clear only
in the outbox until the mail has left). A **reset** code (forgotten PIN, lost authenticator)
works the same way and, when used, destroys the old PIN hash and TOTP seed before the new ones
are made. Codes sent to an e-mail that is no longer the holder's are void, and a contact changed
by an officer opens activation only after ``ActivationPolicy.contact_change_delay``.
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

from ca.models import Certificate, Holder
from db import audit, outbox
from hsm import HSMError, HSMToken
from policies.dates import iso_utc
from policies.signing import SIGNING_POLICY, SigningPolicy
from policies.statuses import CertificateStatus, HolderStatus
from signing_api.cloud.errors import Refusal, SigningRefused
from signing_api.cloud.models import ActivationCode, CloudCredential, SignatureActivation

__all__ = [
    "Activated",
    "Authorized",
    "CodeSent",
    "activate",
    "activation_of",
    "authorize",
    "check_pin",
    "send_code",
]

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


def _enrol(
    session: Session,
    cloud_token: HSMToken,
    certificate: Certificate,
    *,
    pin: str,
    now: datetime,
    actor: str,
    policy: SigningPolicy,
    replacing: CloudCredential | None = None,
) -> str:
    """Set the holder's PIN and a new TOTP seed for a cloud certificate; the otpauth URI, once.

    ``replacing``: the activation a reset code replaces. Its PIN hash goes from every
    certificate that shared it (a renewal chain), and its seed is destroyed in the token.
    """
    old_label = None
    if replacing is not None:
        old_label = replacing.totp_label
        for stale in session.scalars(
            select(CloudCredential).where(CloudCredential.totp_label == old_label)
        ).all():
            session.delete(stale)
        session.flush()
    seed = secrets.token_bytes(policy.totp.secret_bytes)
    label = f"totp-{certificate.serial[:40]}-{secrets.token_hex(4)}"
    try:
        cloud_token.import_hmac_secret(label, seed)
    except HSMError as ex:
        raise SigningRefused(Refusal.UNAVAILABLE, f"the HSM refused the seed: {ex}") from ex
    session.add(
        CloudCredential(
            certificate_id=certificate.id,
            holder_id=certificate.holder_id,
            pin_hash=_HASHER.hash(pin),
            totp_label=label,
            failed_attempts=0,
            created_at=now,
        )
    )
    session.flush()
    if old_label is not None:
        try:
            cloud_token.destroy_secret(old_label)
        except HSMError as ex:
            raise SigningRefused(Refusal.UNAVAILABLE, f"the HSM kept the old seed: {ex}") from ex
    audit.append(
        session,
        actor=actor,
        action="csc.credential.reset" if old_label else "csc.credential.enrolled",
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


# ---- the activation code: what only the holder receives ---------------------------------------

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True)
class CodeSent:
    """A code is on its way: the outbox message, where it goes (masked) and until when."""

    serial: str
    purpose: str
    sent_to: str
    expires_at: datetime
    message_id: int

    def view(self) -> dict[str, str]:
        return {
            "serial": self.serial,
            "purpose": self.purpose,
            "sent_to": self.sent_to,
            "expires_at": iso_utc(self.expires_at) or "",
        }


@dataclass(frozen=True)
class Activated:
    """What ``activate`` decided: the otpauth URI, or the refusal (the attempt is committed)."""

    otpauth_uri: str | None
    refusal: SigningRefused | None


def mask_email(address: str) -> str:
    """``h***@test.kg``: enough for a holder to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def _normalise(code: object, policy: SigningPolicy) -> str | None:
    if not isinstance(code, str) or len(code) > 64:
        return None
    text = code.upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    if len(text) != policy.activation.code_chars or any(c not in _ALPHABET for c in text):
        return None
    return text


def _open_codes(session: Session, certificate_id: int) -> list[ActivationCode]:
    query = (
        select(ActivationCode)
        .where(ActivationCode.certificate_id == certificate_id, ActivationCode.closed_at.is_(None))
        .order_by(ActivationCode.id)
        .with_for_update()
    )
    return list(session.scalars(query))


def _mail_body(serial: str, code: str, purpose: str, expires_at: datetime) -> str:
    grouped = "-".join(code[i : i + 4] for i in range(0, len(code), 4))
    what = (
        "чтобы задать PIN-код облачной подписи"
        if purpose == "activate"
        else "чтобы заново задать PIN-код и аутентификатор (прежние будут уничтожены)"
    )
    return (
        f"Activation code: {grouped}\n"  # alone on an ASCII line: quoted-printable keeps it whole
        f"Код активации: {grouped}\n\n"
        f"Сертификат / certificate: {serial}\n"
        f"Действует до / valid until: {iso_utc(expires_at)}\n\n"
        f"Введите этот код в портале, {what}.\n"
        "Enter this code in your portal to choose your PIN; the portal then shows your\n"
        "authenticator enrolment once. Never give this code to anyone: Tamga's staff and\n"
        "portals never ask for it. If you did not ask for it, contact the operator.\n"
    )


def send_code(
    session: Session,
    certificate: Certificate,
    *,
    now: datetime,
    actor: str,
    policy: SigningPolicy = SIGNING_POLICY,
) -> CodeSent:
    """Send a new one-time code to the holder's registered e-mail (closing any open one).

    ``activate`` when the certificate has no PIN yet, else ``reset``. The code itself is only
    in the outbox message; the journal records that a code was sent, never the code.
    """
    if certificate.storage != "cloud" or certificate.key_label is None:
        raise SigningRefused(Refusal.INVALID_REQUEST, "only cloud certificates are activated")
    if certificate.status not in (CertificateStatus.ACTIVE, CertificateStatus.SUSPENDED):
        raise SigningRefused(
            Refusal.INVALID_REQUEST, f"the certificate is {certificate.status}: nothing to activate"
        )
    holder = session.get_one(Holder, certificate.holder_id)
    if holder.status != HolderStatus.ACTIVE:
        raise SigningRefused(Refusal.INVALID_REQUEST, "the holder is inactive")
    for row in _open_codes(session, certificate.id):
        row.closed_at = now
    purpose = "activate" if activation_of(session, certificate) is None else "reset"
    code = "".join(secrets.choice(_ALPHABET) for _ in range(policy.activation.code_chars))
    expires_at = (now + policy.activation.lifetime).replace(microsecond=0)  # as people read it
    session.add(
        ActivationCode(
            certificate_id=certificate.id,
            holder_id=holder.id,
            purpose=purpose,
            code_sha256=_digest(code),
            sent_to=holder.email,
            contact_as_of=holder.contact_changed_at,
            created_at=now,
            expires_at=expires_at,
            attempts=0,
        )
    )
    message_id = outbox.enqueue(
        session,
        recipient=holder.email,
        subject=f"Tamga: код активации сертификата {certificate.serial[:16]}",
        body=_mail_body(certificate.serial, code, purpose, expires_at),
        purpose="activation-code",
        now=now,
    )
    audit.append(
        session,
        actor=actor,
        action="csc.activation_code.sent",
        object=f"certificate:{certificate.serial}",
        details={"holder": holder.id, "purpose": purpose, "message": message_id},
        now=now,
    )
    return CodeSent(certificate.serial, purpose, mask_email(holder.email), expires_at, message_id)


def _refuse(
    session: Session,
    certificate: Certificate,
    reason: str,
    message: str,
    *,
    now: datetime,
    actor: str,
    field: str | None = "activation_code",
    refusal: Refusal = Refusal.INVALID_REQUEST,
) -> Activated:
    audit.append(
        session,
        actor=actor,
        action="csc.activation.refused",
        outcome="refused",
        object=f"certificate:{certificate.serial}",
        details={"reason": reason},
        now=now,
    )
    return Activated(None, SigningRefused(refusal, message, field=field))


def _check_code(
    row: ActivationCode | None,
    holder: Holder,
    given: str,
    now: datetime,
    policy: SigningPolicy,
) -> ActivationCode | tuple[str, str, str | None]:
    """The code ``given`` opens, or why it opens nothing: (reason, message, field).

    Counts a wrong attempt and closes a code that can no longer be used.
    """
    ask = "ask for a new code (POST …/activation-code)"
    if row is None:
        return "no_code", f"no activation code is open: {ask}", "activation_code"
    if row.expires_at <= now:
        row.closed_at = now
        return "expired", f"the activation code has expired: {ask}", "activation_code"
    changed = holder.contact_changed_at
    if row.sent_to != holder.email or row.contact_as_of != changed:
        # A code sent before the last contact change is void, even if the address came back.
        row.closed_at = now
        message = f"the holder's e-mail has changed since the code was sent: {ask}"
        return "contact_changed", message, "activation_code"
    if changed is not None and now < changed + policy.activation.contact_change_delay:
        opens = iso_utc(changed + policy.activation.contact_change_delay)
        return (
            "contact_change_delay",
            f"the holder's contact changed: activation opens at {opens}",
            None,
        )
    if not hmac.compare_digest(row.code_sha256, _digest(given)):
        row.attempts += 1
        left = policy.activation.max_attempts - row.attempts
        if left <= 0:
            row.closed_at = now
        words = f"{left} attempts left" if left > 0 else f"the code is now void: {ask}"
        return "wrong_code", f"the activation code is wrong ({words})", "activation_code"
    return row


def activate(
    session: Session,
    cloud_token: HSMToken,
    certificate: Certificate,
    *,
    code: object,
    pin: object,
    now: datetime,
    actor: str,
    policy: SigningPolicy = SIGNING_POLICY,
) -> Activated:
    """The holder presents its code and chooses its PIN: the otpauth URI, shown this once.

    A refusal is returned, not raised, so that the caller commits the attempt it counted.
    """
    text = check_pin(pin, policy)  # a malformed PIN costs no attempt
    given = _normalise(code, policy)
    if given is None:
        raise SigningRefused(
            Refusal.INVALID_REQUEST,
            f"an activation code is {policy.activation.code_chars} letters and digits"
            " (dashes and spaces are ignored)",
            field="activation_code",
        )
    holder = session.get_one(Holder, certificate.holder_id)
    open_codes = _open_codes(session, certificate.id)
    row = _check_code(open_codes[-1] if open_codes else None, holder, given, now, policy)
    if isinstance(row, tuple):
        reason, message, field = row
        return _refuse(session, certificate, reason, message, now=now, actor=actor, field=field)
    row.used_at = row.closed_at = now
    old = activation_of(session, certificate)
    if old is not None and row.purpose != "reset":
        return _refuse(
            session,
            certificate,
            "activated",
            "this credential is activated already",
            now=now,
            actor=actor,
            field=None,
        )
    uri = _enrol(  # an HSM failure raises: the transaction, and the code's use, roll back
        session,
        cloud_token,
        certificate,
        pin=text,
        now=now,
        actor=actor,
        policy=policy,
        replacing=old,
    )
    return Activated(uri, None)

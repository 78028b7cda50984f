"""Cloud signing rules as data: activation, SAD lifetime, lock-out, the maintenance window.

Holder-only activation (sole control, contract §6.6.4–6.6.8): every use of a cloud key needs the
holder's PIN *and* a one-time code (RFC 6238 TOTP) to obtain a Signature Activation Data (SAD)
bound to the credential, the exact hashes, their number and the calling client. The CSC API
names (``credentials/authorize``, ``signatures/signHash``) are those of CSC API v1.0.4.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["SIGNING_POLICY", "ActivationPolicy", "MaintenanceWindow", "SigningPolicy", "TotpPolicy"]


@dataclass(frozen=True)
class TotpPolicy:
    """RFC 6238 parameters every authenticator app understands (otpauth:// URI defaults)."""

    digits: int = 6
    period_seconds: int = 30
    algorithm: str = "SHA1"
    secret_bytes: int = 20  # RFC 4226 §4: at least 128 bits, 160 recommended
    skew_steps: int = 1  # accept the previous and the next code too (clock drift)
    issuer: str = "Tamga"


@dataclass(frozen=True)
class MaintenanceWindow:
    """Fridays 17:30–20:30 Asia/Bishkek by default: signing answers 503 with Retry-After."""

    enabled: bool = True
    weekday: int = 4  # Monday 0 … Friday 4
    start: time = time(17, 30)
    end: time = time(20, 30)
    zone: str = "Asia/Bishkek"

    def retry_after(self, now: datetime) -> int | None:
        """Seconds until the window ends when ``now`` is inside it, else None."""
        if not self.enabled:
            return None
        local = now.astimezone(ZoneInfo(self.zone))
        if local.weekday() != self.weekday or not self.start <= local.time() < self.end:
            return None
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return max(1, int((end - local).total_seconds()))


@dataclass(frozen=True)
class ActivationPolicy:
    """The one-time activation code sent to the holder's registered contact (issue #12).

    Only the holder receives it, so presenting it is what proves "I am the holder" when the
    PIN is chosen: neither an officer nor a portal ever sees it. 16 characters of Crockford's
    base32 are 80 random bits: stored as a SHA-256 (an unguessable random code needs no slow
    hash), compared in constant time.
    """

    code_chars: int = 16
    lifetime: timedelta = timedelta(hours=72)
    max_attempts: int = 5  # wrong codes; then the code is dead and a new one must be sent
    # A changed e-mail or phone opens activation only after this delay, so that the old contact
    # (notified of the change) can object before anyone activates through the new one.
    contact_change_delay: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class SigningPolicy:
    sad_lifetime: timedelta = timedelta(minutes=5)
    max_failed_attempts: int = 5  # wrong PIN or OTP, counted together
    lock_for: timedelta = timedelta(minutes=15)
    max_hashes_per_call: int = 100  # CSC "multisign": what one SAD may cover
    pin_min_length: int = 6
    pin_max_length: int = 64
    totp: TotpPolicy = TotpPolicy()
    activation: ActivationPolicy = ActivationPolicy()
    maintenance: MaintenanceWindow = MaintenanceWindow()


SIGNING_POLICY = SigningPolicy()

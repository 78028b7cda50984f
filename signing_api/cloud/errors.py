"""Why the cloud-signing domain refuses: a reason the edge maps to its wire form.

The CSC API answers a :class:`Refusal` as ``{"error": <CSC code>, "error_description"}`` with its
HTTP status, the JSON API as problem+json: both tables are in ``signing_api/web/problems.py``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Refusal", "SigningRefused"]


class Refusal(StrEnum):
    INVALID_REQUEST = "invalid_request"  # the request cannot be honoured as it stands
    INVALID_PIN = "invalid_pin"
    INVALID_OTP = "invalid_otp"
    ACCESS_DENIED = "access_denied"  # from abroad, not from a registered address (§3.6)
    UNAVAILABLE = "unavailable"  # the HSM failed


class SigningRefused(Exception):
    """A signing request refused: the ``reason``, a human ``message``, the ``field`` at fault."""

    def __init__(self, reason: Refusal, message: str, *, field: str | None = None) -> None:
        self.reason, self.message, self.field = reason, message, field
        super().__init__(message)

"""Errors of the CA domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ca.profiles import Finding

__all__ = [
    "CAError",
    "CertificateMismatch",
    "Conflict",
    "HierarchyNotReady",
    "IdentityNotVerified",
    "InvalidCertificate",
    "InvalidField",
    "InvalidFields",
    "KeyRefused",
    "LintFailed",
    "NotAllowed",
    "NotFound",
    "PaymentRequired",
    "UsageRefused",
]


class CAError(Exception):
    """Root of every error raised by ``ca``."""


class HierarchyNotReady(CAError):
    """The root or issuing CA certificate is not installed yet."""


class InvalidCertificate(CAError):
    """A certificate file could not be read or is not a CA certificate."""


class CertificateMismatch(CAError):
    """A certificate does not match the key it should certify or does not chain to the root."""


class LintFailed(CAError):
    """The pre-issuance lint found ERROR or FATAL findings: nothing was signed by the CA key."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings: tuple[Finding, ...] = tuple(findings)
        listed = "; ".join(str(finding) for finding in self.findings)
        super().__init__(f"pre-issuance lint refused the certificate: {listed}")


class InvalidField(CAError):
    """A request field is missing or malformed; ``field`` names it (API: 422 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class InvalidFields(InvalidField):
    """Several request fields are missing or malformed: ``errors`` maps each to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        first, message = next(iter(errors.items()))
        super().__init__(first, message)
        self.errors = dict(errors)
        self.args = ("; ".join(f"{field}: {text}" for field, text in errors.items()),)


class NotFound(CAError):
    """No such subscriber, holder, certificate, request... (or not one the caller may see)."""


class Conflict(CAError):
    """The request conflicts with the registry's current state (API: 409)."""


class IdentityNotVerified(Conflict):
    """The holder's identity was never verified by the registration authority (§3.3): no
    certificate for it until an officer approves its registration request or checks its
    documents at the office (API: 409 ``identity-not-verified``)."""

    def __init__(self, holder_id: int) -> None:
        self.holder_id = holder_id
        super().__init__(
            f"holder {holder_id}: identity not verified by the registration authority; an "
            "officer approves its registration request or verifies it at the office first"
        )


class NotAllowed(CAError):
    """The acting party may not do this to this object (API: 403)."""


class UsageRefused(CAError):
    """A certificate may not sign this: this company, this role, now (``ca.usage.may_sign``).

    ``field`` names the request field at fault, if one; ``from_abroad`` is set when only the
    §3.6 rule (access from abroad through a registered address) refused.
    """

    def __init__(self, message: str, *, field: str | None = None, from_abroad: bool = False):
        super().__init__(message)
        self.message, self.field, self.from_abroad = message, field, from_abroad


class KeyRefused(CAError):
    """A subscriber's key or CSR is refused: no proof of possession, weak, or already certified."""

    def __init__(self, message: str, field: str = "csr_pem") -> None:
        self.field = field
        super().__init__(message)


class PaymentRequired(CAError):
    """Issuance needs the price paid first: pay ``amount_due`` tyiyn to ``payment_account``."""

    def __init__(self, message: str, *, amount_due: int, payment_account: str | None) -> None:
        self.amount_due = amount_due
        self.payment_account = payment_account
        super().__init__(message)

"""Errors of the CA domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ca.profiles import Finding

__all__ = [
    "CAError",
    "CertificateMismatch",
    "HierarchyNotReady",
    "InvalidCertificate",
    "LintFailed",
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

"""Errors of the CA domain."""

from __future__ import annotations

__all__ = ["CAError", "CertificateMismatch", "HierarchyNotReady", "InvalidCertificate"]


class CAError(Exception):
    """Root of every error raised by ``ca``."""


class HierarchyNotReady(CAError):
    """The root or issuing CA certificate is not installed yet."""


class InvalidCertificate(CAError):
    """A certificate file could not be read or is not a CA certificate."""


class CertificateMismatch(CAError):
    """A certificate does not match the key it should certify or does not chain to the root."""

"""Errors of the CRL domain."""

from __future__ import annotations

__all__ = ["CRLError", "ForeignIssuer", "UnknownIssuer"]


class CRLError(Exception):
    """Root of every error raised by ``crl``."""


class UnknownIssuer(CRLError):
    """No CA of that name publishes a CRL (only "root" and "issuing" do)."""


class ForeignIssuer(CRLError):
    """The issuer's key is not in our HSM (an external national root): we cannot sign its CRL."""

"""Errors of the HSM layer: every foreign (PKCS#11) error is wrapped into one of these."""

from __future__ import annotations

__all__ = [
    "HSMError",
    "KeyExists",
    "KeyNotFound",
    "ModuleNotFound",
    "TokenNotFound",
    "UnsupportedAlgorithm",
    "WrongPIN",
]


class HSMError(Exception):
    """Root of every error raised by ``hsm``. Messages never contain a PIN."""


class ModuleNotFound(HSMError):
    """The PKCS#11 module (shared library) could not be loaded."""


class TokenNotFound(HSMError):
    """No token with the configured label is present."""


class WrongPIN(HSMError):
    """The token refused the PIN (incorrect, or locked after too many attempts)."""


class KeyNotFound(HSMError):
    """No private key with that label exists on the token."""


class KeyExists(HSMError):
    """A key with that label already exists on the token."""


class UnsupportedAlgorithm(HSMError):
    """The key type, curve or signature scheme is not one Tamga supports."""

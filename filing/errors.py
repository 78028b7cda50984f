"""Errors of the filing domain; each names the field at fault where there is one."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AgencyAnswerInvalid",
    "FilingConflict",
    "FilingError",
    "IdempotencyConflict",
    "InvalidReport",
    "NotFound",
    "SignatureRefused",
]


class FilingError(Exception):
    """Root of every error raised by ``filing``."""

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: dict[str, str] = dict(errors or {})


class NotFound(FilingError):
    """No such report, agency or office (or not in the caller's scope: the edge says 404)."""


class InvalidReport(FilingError):
    """Fields of a report or an agency are missing or malformed; ``errors`` names them all."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        listed = "; ".join(f"{field}: {message}" for field, message in errors.items())
        super().__init__(f"invalid fields: {listed}", errors)


class SignatureRefused(FilingError):
    """A signature does not verify over the report, or may not fill the slot it would fill.

    The report is unchanged; ``problems`` are the failed checks in the §8 order.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message, {"signature": message})
        self.problems = problems


class FilingConflict(FilingError):
    """The report's state does not allow it (a third signature, a stop after it left...)."""


class IdempotencyConflict(FilingError):
    """The Idempotency-Key was used for a different report."""


class AgencyAnswerInvalid(FilingError):
    """An agency's receipt or check result does not verify with its pinned certificate, or
    says something else than the report it answers."""

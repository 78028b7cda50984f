"""Refusals of the dispute cases (``cases.py``). One root, one subclass per refusal.

The engine itself never refuses a signature (a bad one is a verdict, not an error); it raises
:class:`~signing_api.verification.inputs.UnreadableInput` for material it cannot read, which
``cases.open_case`` turns into :class:`InvalidDispute` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DisputeError",
    "DisputeIdempotencyConflict",
    "DisputeNotFound",
    "DisputePaymentRequired",
    "InvalidDispute",
]


class DisputeError(Exception):
    """Root of every refusal of the dispute cases; ``errors`` names the fields at fault."""

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = dict(errors or {})


class InvalidDispute(DisputeError):
    """The request's fields are wrong: every bad one is named at once; nothing was written."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(f"invalid fields: {', '.join(sorted(errors))}", errors)


class DisputeNotFound(DisputeError):
    """No case with this id."""


class DisputeIdempotencyConflict(DisputeError):
    """The Idempotency-Key was used before for another case."""


class DisputePaymentRequired(DisputeError):
    """The subscriber's balance does not cover the fee (§8.5): top it up; nothing was written."""

    def __init__(self, message: str, *, amount_due: int, payment_account: str | None) -> None:
        super().__init__(message)
        self.amount_due = amount_due
        self.payment_account = payment_account

"""Errors of the billing domain. One root, one subclass per refusal, structured fields."""

from __future__ import annotations

from policies.money import som

__all__ = [
    "AccountExists",
    "AccountNotFound",
    "AccountTerminated",
    "AmountTooLarge",
    "AmountTooSmall",
    "BillingError",
    "HoldNotOpen",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidAmount",
    "InvalidName",
    "MalformedAccount",
    "NotFound",
    "NotReversible",
    "PaymentForbidden",
]


class BillingError(Exception):
    """Root of every refusal by ``billing``; the message is fit for the person who asked."""


class InvalidAmount(BillingError):
    """An amount that is not a positive whole number of tyiyn."""


class InvalidName(BillingError):
    """A subscriber name that is empty or too long."""


class MalformedAccount(BillingError):
    """Neither a 14-digit INN nor a 16-digit payment account with a valid check digit."""


class NotFound(BillingError):
    """The thing named does not exist."""


class AccountNotFound(NotFound):
    """No billing account for this INN or payment account."""


class AccountExists(BillingError):
    """An account for this INN exists already, under another name."""


class AccountTerminated(BillingError):
    """The subscriber's contract is terminated: no payments in, no charges."""


class PaymentForbidden(BillingError):
    """This payment may not be made (a paid payment account, a channel not allowed, ...)."""


class AmountTooSmall(BillingError):
    """The amount is below what this payment needs."""


class AmountTooLarge(BillingError):
    """The amount is above what this payment may be."""


class IdempotencyConflict(BillingError):
    """The idempotency key was used before for a different operation."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the idempotency key {key!r} was already used for a different request")
        self.key = key


class InsufficientFunds(BillingError):
    """The available balance does not cover the amount; nothing was written."""

    def __init__(self, inn: str, amount: int, available: int) -> None:
        super().__init__(
            f"the balance of {inn} does not cover {som(amount)} som: "
            f"{som(available)} som available, {som(amount - available)} som due"
        )
        self.inn = inn
        self.amount = amount
        self.available = available

    @property
    def due(self) -> int:
        return self.amount - self.available


class HoldNotOpen(BillingError):
    """The hold was already settled the other way (posted vs voided)."""


class NotReversible(BillingError):
    """This transaction cannot be reversed (a reversal, or one whose reversal would overdraw)."""

"""The cash desk: a receipt paid in at the operator's office, credited once per receipt number."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.bank.lines import MAX_REFERENCE
from billing.errors import IdempotencyConflict, MalformedAccount
from billing.models import Payment
from billing.payments import Receipt, record_payment
from policies.dates import local_minute
from policies.identifiers import is_inn
from policies.money import som

__all__ = ["ReceiptConflict", "record_cash"]


class ReceiptConflict(IdempotencyConflict):
    """A cash receipt number used before for another amount or subscriber."""

    def __init__(self, number: str, original: Payment) -> None:
        super().__init__(f"cash::{number}")
        self.original_id = original.id
        self.message = (
            f"cash receipt {number} was recorded on {local_minute(original.recorded_at, '?')} for "
            f"{som(original.amount)} som to {original.account}: "
            "a receipt number is used once"
        )

    def __str__(self) -> str:
        return self.message


def record_cash(
    session: Session,
    *,
    number: str,
    amount: int,
    inn: str,
    paid_at: datetime,
    now: datetime,
    actor: str,
) -> Receipt:
    """A cash-desk receipt: credited once per receipt number; a replay returns the original."""
    if not is_inn(inn):
        raise MalformedAccount(f"{inn!r} is not a 14-digit INN")
    if not number or len(number) > MAX_REFERENCE or any(c.isspace() for c in number):
        raise MalformedAccount(f"a receipt number is 1-{MAX_REFERENCE} characters without spaces")
    try:
        return record_payment(
            session,
            channel="cash",
            provider="",
            external_id=number,
            account=inn,
            amount=amount,
            paid_at=paid_at,
            now=now,
            actor=actor,
        )
    except IdempotencyConflict:
        original = session.scalars(
            select(Payment).where(
                Payment.channel == "cash", Payment.provider == "", Payment.external_id == number
            )
        ).one_or_none()
        if original is None:
            raise
        raise ReceiptConflict(number, original) from None

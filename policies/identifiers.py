"""Identifiers of the billing world: the 14-digit INN and the 16-digit payment account.

A payment account ("EDS payment" service, seed 002) is 15 digits plus a Luhn check digit, so a
mistyped digit or a swap of two neighbouring digits at a terminal is caught before any lookup.
"""

from __future__ import annotations

__all__ = [
    "INN_LENGTH",
    "PAYMENT_ACCOUNT_LENGTH",
    "is_inn",
    "is_payment_account",
    "luhn_check_digit",
    "payment_account_number",
]

INN_LENGTH = 14
PAYMENT_ACCOUNT_LENGTH = 16


def _digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def is_inn(value: str) -> bool:
    """A subscriber's INN: exactly 14 ASCII digits."""
    return _digits(value, INN_LENGTH)


def luhn_check_digit(body: str) -> str:
    """The Luhn (ISO/IEC 7812-1) check digit for a string of digits."""
    if not body.isascii() or not body.isdigit():
        raise ValueError("the Luhn body must be digits")
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # doubled: the digit right of it will be the check digit
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def is_payment_account(value: str) -> bool:
    """A 16-digit payment account whose last digit is the Luhn check digit of the rest."""
    return _digits(value, PAYMENT_ACCOUNT_LENGTH) and luhn_check_digit(value[:-1]) == value[-1]


def payment_account_number(body: str) -> str:
    """Complete a 15-digit body into a 16-digit payment account."""
    if not _digits(body, PAYMENT_ACCOUNT_LENGTH - 1):
        raise ValueError("a payment account body is 15 digits")
    return body + luhn_check_digit(body)

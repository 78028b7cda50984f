"""``tamga billing ...``: balances, statements, documents, payments and the ledger check."""

from __future__ import annotations

import click

__all__ = ["billing_group"]


@click.group("billing")
def billing_group() -> None:
    """Prepaid balances: accounts, payments in, statements, documents, the ledger check."""


# Commands that import payments (bank statements, cash desk, provider registries) live in their
# own module and register themselves on this group.
from signing_api import cli_payments  # noqa: E402, F401

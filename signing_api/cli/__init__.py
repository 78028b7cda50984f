"""The ``tamga`` command line: the root group (``root``) and one module per group of commands.

To add a command, decorate a group in the module of its area (``@ca.command(...)`` in
``certificates.py``); to add a group, create a module that adds it to ``cli`` and import it below.
"""

from __future__ import annotations

from signing_api.cli import (  # noqa: F401 - importing a module registers its commands
    billing,
    ca,
    certificates,
    crl,
    filing,
    mail,
    payments,
    registry,
    renewals,
    revocation,
    service,
    verify,
)
from signing_api.cli.root import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="tamga")

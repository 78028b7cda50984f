"""The root ``tamga`` group and what every command shares: configuration, runtime, operator.

The root knows no commands: each module of this package decorates a group (``cli`` here, or its
own group added to it), and ``signing_api.cli`` imports them all.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import click

from billing import BillingError
from ca import CAError
from db import DBError, check_connection
from hsm import HSMError
from signing_api.clients import ClientError
from signing_api.config import Config, ConfigError
from signing_api.runtime import Runtime

__all__ = ["cli", "load_config", "now", "open_runtime", "operator"]

_EXPECTED = (HSMError, DBError, CAError, BillingError, ConfigError, ClientError)


class _Group(click.Group):
    """Turns domain errors into one line on stderr and exit status 1 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _EXPECTED as ex:
            raise click.ClickException(str(ex)) from ex
        except OSError as ex:
            raise click.ClickException(
                f"{ex.strerror or ex}: {ex.filename or ''}".rstrip(": ")
            ) from ex


@click.group(cls=_Group)
def cli() -> None:
    """Tamga: certification authority and cloud-HSM signing service."""


def load_config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as ex:
        raise click.ClickException(str(ex)) from ex


def open_runtime() -> Runtime:
    """This process's runtime, its database checked reachable."""
    made = Runtime(load_config())
    check_connection(made.engine)
    return made


def operator() -> str:
    """Who runs the command, for the journal (``cli:<operator>``)."""
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "unknown"


def now() -> datetime:
    """The command's clock (UTC, timezone-aware)."""
    return datetime.now(UTC)

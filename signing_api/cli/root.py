"""The root ``tamga`` group and what every command shares: configuration, runtime, operator.

The root knows no commands: each module of this package decorates a group (``cli`` here, or its
own group added to it), and ``signing_api.cli`` imports them all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from billing import BillingError
from ca import CAError
from ca.errors import InvalidField, InvalidFields, PaymentRequired
from crl import CRLError
from db import DBError, check_connection
from filing import FilingError
from hsm import HSMError
from policies.money import som
from signing_api.clients import ClientError
from signing_api.cloud.errors import SigningRefused
from signing_api.config import Config, ConfigError
from signing_api.runtime import Runtime

__all__ = [
    "actor",
    "cli",
    "load_config",
    "now",
    "open_runtime",
    "operator",
    "option_of",
    "print_json",
    "transaction",
]

_EXPECTED = (
    HSMError, DBError, CAError, BillingError, CRLError, ConfigError, ClientError, SigningRefused,
    FilingError,
)  # fmt: skip


def option_of(field: str) -> str:
    """The command-line option that carries an API field (``holder.email`` → --holder-email)."""
    section, _, name = field.rpartition(".")
    if section == "holder" and name == "email":
        return "--holder-email"
    return "--" + name.replace("_", "-")


def _message(ex: Exception) -> str:
    """The one line a domain refusal prints: the CLI's whole error table."""
    if isinstance(ex, InvalidFields):
        return "; ".join(f"invalid {option_of(f)}: {text}" for f, text in ex.errors.items())
    if isinstance(ex, InvalidField):
        return f"invalid {option_of(ex.field)}: {ex.message}"
    if isinstance(ex, PaymentRequired):
        where = f" to payment account {ex.payment_account}" if ex.payment_account else ""
        return f"{ex} (pay {som(ex.amount_due)} som{where})"
    return str(ex)


class _Group(click.Group):
    """Turns domain errors into one line on stderr and exit status 1 (no traceback).

    Every command runs inside the root group's ``invoke``, so this is the one translator.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _EXPECTED as ex:
            raise click.ClickException(_message(ex)) from ex
        except OSError as ex:
            raise click.ClickException(
                f"{ex.strerror or ex}: {ex.filename or ''}".rstrip(": ")
            ) from ex


@click.group(cls=_Group)
def cli() -> None:
    """Tamga: certification authority and cloud-HSM signing service."""


_HOME_MARKERS = ("tamga.db", "softhsm2.conf", "secrets")  # what `tamga init` leaves in a home


def _is_home(directory: Path) -> bool:
    return directory.is_dir() and any((directory / m).exists() for m in _HOME_MARKERS)


def find_home(start: Path) -> Path | None:
    """The ``var/`` installation in ``start`` or the nearest directory above it that has one."""
    for directory in (start, *start.parents):
        if _is_home(directory / "var"):
            return directory / "var"
    return None


def load_config(*, creating: bool = False) -> Config:
    """The configuration; outside ``tamga init``, an existing installation or one line.

    Without ``TAMGA_HOME`` the home is the ``var/`` of the current directory or the nearest one
    above it that has one (run from the project's subdirectories, it finds the project's). A
    command never creates an empty database somewhere by accident.
    """
    env = dict(os.environ)
    if "TAMGA_HOME" not in env and not creating:
        found = find_home(Path.cwd())
        if found is None:
            raise click.ClickException(
                f"no Tamga installation in {Path.cwd()} or above it (no var/ made by `tamga"
                " init`): run the command in the project's directory, or set TAMGA_HOME"
            )
        env["TAMGA_HOME"] = str(found)
    try:
        config = Config.from_env(env)
    except ConfigError as ex:
        raise click.ClickException(str(ex)) from ex
    embedded = config.database_url == f"sqlite:///{config.home / 'tamga.db'}"
    if not creating and embedded and not (config.home / "tamga.db").exists():
        raise click.ClickException(
            f"TAMGA_HOME={config.home} has no database: run `tamga init` first"
        )
    return config


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


def actor() -> str:
    """The journal's name for the operator: ``cli:<user>``."""
    return f"cli:{operator()}"


@contextmanager
def transaction() -> Iterator[Session]:
    """A session in a transaction on a freshly opened runtime."""
    with open_runtime().transaction() as session:
        yield session


def print_json(data: Any) -> None:
    """The API's JSON, as ``--json`` prints it."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))

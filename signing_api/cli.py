"""The ``tamga`` command line: ``init``, ``serve`` and one group per domain."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import serialization

from billing import BillingError
from ca import CAError, active_certificate, import_issuer_certificate, issuer_csr
from db import DBError, check_connection, verify_chain
from hsm import HSMError
from signing_api.clients import ClientError, create_client
from signing_api.config import Config, ConfigError
from signing_api.runtime import Runtime

__all__ = ["main"]

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


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as ex:
        raise click.ClickException(str(ex)) from ex


def _runtime() -> Runtime:
    runtime = Runtime(_config())
    check_connection(runtime.engine)
    return runtime


def _now() -> datetime:
    return datetime.now(UTC)


@click.group(cls=_Group)
def cli() -> None:
    """Tamga: certification authority and cloud-HSM signing service."""


@cli.command()
def init() -> None:
    """Create (or complete) the installation in TAMGA_HOME. Safe to run again."""
    from signing_api.bootstrap import initialise

    config = _config()
    report = initialise(config)
    for item in report.created:
        click.echo(f"created {item}")
    if not report.created:
        click.echo("nothing to do: the installation is complete")
    if report.awaiting_issuer_import:
        click.echo(
            "the issuing CA awaits its certificate: "
            "`tamga ca issuer-csr`, then `tamga ca issuer-import`"
        )
    click.echo(f"TAMGA_HOME={config.home}")


@cli.command()
def serve() -> None:
    """Serve HTTP with gunicorn on TAMGA_BIND with TAMGA_WORKERS workers."""
    from signing_api.osmp import ALLOW_VARIABLE, parse_allow
    from signing_api.serve import serve as run

    config = _config()
    parse_allow(os.environ.get(ALLOW_VARIABLE, ""))  # a mistake stops here, not in each worker
    # Fail early and clearly on a bad database URL; tokens are checked per worker (/healthz).
    # The engine is disposed before gunicorn forks: no pooled connection may be inherited.
    engine = Runtime(config).engine
    try:
        check_connection(engine)
    finally:
        engine.dispose()
    run(config)


@cli.group()
def ca() -> None:
    """The CA hierarchy: export certificates; the production issuing-CA path."""


@ca.command("export")
@click.argument("name", type=click.Choice(["root", "issuing", "tsa"]))
@click.option("--der", "der", is_flag=True, help="DER instead of PEM (binary on stdout)")
def ca_export(name: str, der: bool) -> None:
    """Print the root or issuing CA certificate, or the time-stamping authority's."""
    runtime = _runtime()
    with runtime.transaction() as session:
        cert = active_certificate(session, name)
    if der:
        sys.stdout.buffer.write(cert.public_bytes(serialization.Encoding.DER))
    else:
        click.echo(cert.public_bytes(serialization.Encoding.PEM).decode(), nl=False)


@ca.command("issuer-csr")
def ca_issuer_csr() -> None:
    """Print a PEM CSR for the issuing CA key, for the national root to sign."""
    runtime = _runtime()
    csr = issuer_csr(runtime.ca_token)
    click.echo(csr.public_bytes(serialization.Encoding.PEM).decode(), nl=False)


@ca.command("issuer-import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ca_issuer_import(file: Path) -> None:
    """Install the issuing CA certificate signed by the root (PEM or DER)."""
    from ca.tsa import ensure_tsa
    from signing_api.bootstrap import publish_ca_files

    runtime = _runtime()
    with runtime.transaction() as session:
        cert = import_issuer_certificate(
            session, runtime.ca_token, file.read_bytes(), now=_now(), actor=f"cli:{_operator()}"
        )
        # The TSA's certificate comes from the issuing CA: make it now rather than at next init.
        ensure_tsa(
            session,
            runtime.ca_token,
            public_url=runtime.config.public_url,
            now=_now(),
            actor=f"cli:{_operator()}",
        )
        publish_ca_files(session, runtime.config.public_dir)
    click.echo(f"installed issuing CA certificate serial {cert.serial_number:x}")


@cli.group()
def audit() -> None:
    """The hash-chained audit journal."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the whole chain; exit 1 naming the first bad sequence number."""
    runtime = _runtime()
    with runtime.transaction() as session:
        count = verify_chain(session)
    click.echo(f"audit journal intact: {count} entries")


@cli.group()
def clients() -> None:
    """API clients and their bearer tokens."""


@clients.command("create")
@click.option("--name", required=True, help="who the client is, e.g. 'reporting portal'")
@click.option(
    "--role", required=True, type=click.Choice(["officer", "portal", "agency", "commission"])
)
def clients_create(name: str, role: str) -> None:
    """Create an API client; its bearer token is printed once, alone on the last line."""
    runtime = _runtime()
    with runtime.transaction() as session:
        created = create_client(
            session, name=name, role=role, now=_now(), actor=f"cli:{_operator()}"
        )
    click.echo(f"created {created.role.value} client {created.client_id} ({created.name})")
    click.echo("its bearer token, shown this once:")
    click.echo(created.token)


@clients.command("grant")
@click.argument("name")
@click.option("--inn", required=True, help="the subscriber to put in the client's scope")
def clients_grant(name: str, inn: str) -> None:
    """Let a non-officer client (the portal) see and act for subscriber --inn."""
    from sqlalchemy import select

    from ca.registry import get_subscriber
    from signing_api.ca_common import grant
    from signing_api.clients import ApiClient

    runtime = _runtime()
    with runtime.transaction() as session:
        client = session.scalar(select(ApiClient).where(ApiClient.name == name.strip()))
        if client is None:
            raise ClientError(f"no client named {name!r}")
        if client.role == "officer":
            raise ClientError(f"{name!r} is an officer client: it sees every subscriber already")
        subscriber = get_subscriber(session, inn)
        granted = grant(
            session, client_id=client.id, inn=subscriber.inn, now=_now(), actor=f"cli:{_operator()}"
        )
    verb = "granted" if granted else "already in scope:"
    click.echo(f"{verb} client {client.id} ({client.name}) subscriber {inn} ({subscriber.name})")


def _register_domain_groups() -> None:
    from signing_api.cli_billing import billing_group
    from signing_api.cli_crl import crl_group

    cli.add_command(billing_group)
    cli.add_command(crl_group)
    from signing_api import cli_certificates, cli_registry, cli_renewals, cli_revocation

    for module in (cli_registry, cli_certificates, cli_revocation, cli_renewals):
        module.register(ca)


_register_domain_groups()


def _operator() -> str:
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "unknown"


def main() -> None:
    cli(prog_name="tamga")

"""``tamga init``, ``tamga serve``, ``tamga audit verify``, ``tamga clients create|grant``."""

from __future__ import annotations

import os

import click

from db import check_connection, verify_chain
from signing_api.cli.root import cli, load_config, now, open_runtime, operator
from signing_api.clients import ClientError, create_client
from signing_api.runtime import Runtime

__all__: list[str] = []


@cli.command()
def init() -> None:
    """Create (or complete) the installation in TAMGA_HOME. Safe to run again."""
    from signing_api.bootstrap import initialise

    config = load_config(creating=True)
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
    from signing_api.serve import serve as run
    from signing_api.web.billing.osmp import ALLOW_VARIABLE, parse_allow

    config = load_config()
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
def audit() -> None:
    """The hash-chained audit journal."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the whole chain; exit 1 naming the first bad sequence number."""
    runtime = open_runtime()
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
    runtime = open_runtime()
    with runtime.transaction() as session:
        created = create_client(session, name=name, role=role, now=now(), actor=f"cli:{operator()}")
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
    from signing_api.clients import ApiClient
    from signing_api.web.common import grant

    runtime = open_runtime()
    with runtime.transaction() as session:
        client = session.scalar(select(ApiClient).where(ApiClient.name == name.strip()))
        if client is None:
            raise ClientError(f"no client named {name!r}")
        if client.role == "officer":
            raise ClientError(f"{name!r} is an officer client: it sees every subscriber already")
        subscriber = get_subscriber(session, inn)
        granted = grant(
            session,
            client_id=client.id,
            inn=subscriber.inn,
            now=now(),
            actor=f"cli:{operator()}",
        )
    verb = "granted" if granted else "already in scope:"
    click.echo(f"{verb} client {client.id} ({client.name}) subscriber {inn} ({subscriber.name})")

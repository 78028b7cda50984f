"""``tamga init``, ``tamga serve``, ``tamga audit verify``, ``tamga clients create|list|disable|
rotate|grant|revoke-grant``."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import click
from sqlalchemy.orm import Session

from db import AuditChainBroken, check_connection, verify_journal
from db.sequencer import backlog, run_pending
from policies.dates import iso_utc
from signing_api.cli.root import cli, load_config, now, open_runtime, operator
from signing_api.clients import (
    ApiClient,
    ClientError,
    create_client,
    find_client,
    grant,
    revoke_grant,
)
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
    """Check the chain, the Merkle tree and every signed checkpoint; exit 1 naming the first bad
    sequence number (0: the head, the tree or a checkpoint)."""
    from ca.audit_log import verify_checkpoint_signatures

    runtime = open_runtime()
    with runtime.transaction() as session:
        check = verify_journal(session)
        try:
            signed = verify_checkpoint_signatures(session)
        except ValueError as ex:
            raise AuditChainBroken(0, str(ex)) from None
        waiting = backlog(session)
    click.echo(f"audit journal intact: {check.entries} entries")
    click.echo(f"merkle tree: {check.tree_size} leaves, root {check.root_hash}")
    click.echo(f"checkpoints: {signed} signatures verified, {check.checkpoints} roots matched")
    delay = waiting.delay(now())
    click.echo(f"waiting to be sequenced: {waiting.pending} (oldest {delay:.1f} s)")


@audit.command("sequence")
def audit_sequence() -> None:
    """Number, chain and tree-integrate every entry waiting (what `tamga worker` does)."""
    runtime = open_runtime()
    done = run_pending(runtime.session_factory)
    click.echo(f"sequenced {done} entries")


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sequence what waits, then sign a checkpoint of the tree now (one is due or not)."""
    from ca.audit_log import ensure_audit_signer, sign_checkpoint

    runtime = open_runtime()
    run_pending(runtime.session_factory)
    url = runtime.config.public_url
    with runtime.transaction() as session:
        ensure_audit_signer(
            session, runtime.ca_token, public_url=url, now=now(), actor=f"cli:{operator()}"
        )
    with runtime.transaction() as session:
        row = sign_checkpoint(session, runtime.ca_token, public_url=url, now=now(), force=True)
        assert row is not None  # noqa: S101 - forced
        click.echo(row.body, nl=False)
        click.echo(f"signature (DER, base64): {base64.b64encode(row.signature).decode()}")


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


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def clients_list(as_json: bool) -> None:
    """Every API client: role, state, and the subscribers in its scope."""
    from signing_api.clients import list_clients, scope_of

    with open_runtime().transaction() as session:
        views: list[dict[str, Any]] = [
            {
                "id": row.id,
                "name": row.name,
                "role": row.role,
                "created_at": iso_utc(row.created_at),
                "disabled_at": iso_utc(row.disabled_at),
                "scope": scope_of(session, row.id) if row.role != "officer" else None,
            }
            for row, _ in list_clients(session)
        ]
    if as_json:
        click.echo(json.dumps({"clients": views}, ensure_ascii=False, indent=2))
        return
    for view in views:
        state = f"disabled {view['disabled_at']}" if view["disabled_at"] else "active"
        scope = "every subscriber" if view["scope"] is None else f"{len(view['scope'])} in scope"
        click.echo(f"client {view['id']} {view['role']} ({view['name']}): {state}; {scope}")
    click.echo(f"{len(views)} clients")


@clients.command("disable")
@click.argument("name")
def clients_disable(name: str) -> None:
    """Disable a client for good: its token is refused from the next request on."""
    from signing_api.clients import disable_client

    with open_runtime().transaction() as session:
        row = disable_client(session, name, now=now(), actor=f"cli:{operator()}")
        client_id, shown, when = row.id, row.name, iso_utc(row.disabled_at)
    click.echo(f"client {client_id} ({shown}) disabled since {when}")


@clients.command("rotate")
@click.argument("name")
def clients_rotate(name: str) -> None:
    """Give a client a new bearer token (printed once, alone on the last line); the old one is
    refused from the next request on."""
    from signing_api.clients import rotate_token

    with open_runtime().transaction() as session:
        made = rotate_token(session, name, now=now(), actor=f"cli:{operator()}")
    click.echo(
        f"rotated the token of client {made.client_id} ({made.name}); the old one is refused"
    )
    click.echo("its new bearer token, shown this once:")
    click.echo(made.token)


def _scoped_client(session: Session, name: str) -> ApiClient:
    client = find_client(session, name)
    if client.role == "officer":
        raise ClientError(f"{name!r} is an officer client: it sees every subscriber, no scope")
    return client


@clients.command("grant")
@click.argument("name")
@click.option("--inn", required=True, help="the subscriber to put in the client's scope")
def clients_grant(name: str, inn: str) -> None:
    """Let a non-officer client (the portal) see and act for subscriber --inn."""
    from ca.registry import get_subscriber

    with open_runtime().transaction() as session:
        client = _scoped_client(session, name)
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


@clients.command("revoke-grant")
@click.argument("name")
@click.option("--inn", required=True, help="the subscriber to take out of the client's scope")
def clients_revoke_grant(name: str, inn: str) -> None:
    """Take subscriber --inn out of a client's scope: it is 404 to that client at once."""
    with open_runtime().transaction() as session:
        client = _scoped_client(session, name)
        revoked = revoke_grant(
            session, client_id=client.id, inn=inn, now=now(), actor=f"cli:{operator()}"
        )
    if not revoked:
        raise ClientError(f"subscriber {inn} is not in the scope of client {name!r}")
    click.echo(f"revoked: client {client.id} ({client.name}) no longer sees subscriber {inn}")

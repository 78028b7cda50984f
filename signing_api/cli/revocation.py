"""``tamga ca revoke|suspend|resume``: an officer changes a certificate's status.

After the change the issuing CA's CRL is reissued and written to ``$TAMGA_HOME/publish/crl``
at once, and a revoked cloud key is destroyed in the HSM, as the API does.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from signing_api.cli import root
from signing_api.cli.ca import ca

__all__ = ["after_changes"]


def _after(row_id: int, now: datetime) -> str:
    return after_changes((row_id,), now)


def after_changes(row_ids: tuple[int, ...], now: datetime) -> str:
    """Publish the issuing CA's CRL and destroy revoked cloud keys (after the commit)."""
    from ca.models import Certificate
    from ca.revocation import destroy_revoked_key
    from crl import refresh_crl, write_crl_files
    from signing_api.cli.root import open_runtime as _runtime

    rt = _runtime()
    with rt.transaction() as session:
        issued, _ = refresh_crl(session, issuer="issuing", token=rt.ca_token, now=now,
                                actor=root.actor(), force=True)  # fmt: skip
    write_crl_files(issued.der, "issuing", rt.config.crl_publish_dir)
    destroyed = 0
    for row_id in row_ids:
        with rt.transaction() as session:
            row = session.get_one(Certificate, row_id)
            if destroy_revoked_key(session, row, rt.cloud_token, now=now) and row.key_label:
                destroyed += 1
    if not destroyed:
        return f"issuing CRL number {issued.number} published"
    keys = "its cloud key was" if len(row_ids) == 1 else f"{destroyed} cloud keys were"
    return f"issuing CRL number {issued.number} published; {keys} destroyed"


def _change(serial: str, action: str, **options: object) -> None:
    from ca.issuance import get_certificate
    from ca.revocation import Actor, resume, revoke, suspend
    from signing_api.cli.root import open_runtime as _runtime

    now = datetime.now(UTC)
    who = Actor(root.actor(), officer=True)
    with _runtime().transaction() as session:
        row = get_certificate(session, serial)
        if action == "revoke":
            row = revoke(session, row, now=now, who=who, **options)  # type: ignore[arg-type]
        elif action == "suspend":
            row = suspend(session, row, now=now, who=who, **options)
        else:
            row = resume(session, row, now=now, who=who, **options)
        row_id, status, serial = row.id, row.status, row.serial
    click.echo(f"{serial} {status}; {_after(row_id, now)}")


def _instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise click.BadParameter("an ISO 8601 time with its offset, e.g. 2026-11-23T08:00:00Z")
    return moment


@ca.command("revoke")
@click.argument("serial")
@click.option(
    "--reason",
    required=True,
    type=click.Choice(
        [
            "unspecified",
            "keyCompromise",
            "affiliationChanged",
            "superseded",
            "cessationOfOperation",
        ]
    ),
)
@click.option("--invalidity-date", callback=_instant, help="keyCompromise: since when")
@click.option("--note", help="why, for the journal")
def revoke_command(
    serial: str, reason: str, invalidity_date: datetime | None, note: str | None
) -> None:
    """Revoke a certificate for good."""
    _change(serial, "revoke", reason=reason, invalidity_date=invalidity_date, note=note)


@ca.command("suspend")
@click.argument("serial")
@click.option("--note", help="why, for the journal")
def suspend_command(serial: str, note: str | None) -> None:
    """Suspend a certificate (certificateHold)."""
    _change(serial, "suspend", note=note)


@ca.command("resume")
@click.argument("serial")
@click.option("--note", help="why, for the journal")
def resume_command(serial: str, note: str | None) -> None:
    """Lift a suspension."""
    _change(serial, "resume", note=note)

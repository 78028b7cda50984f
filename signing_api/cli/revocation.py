"""``tamga ca revoke|suspend|resume``: an officer changes a certificate's status.

Inside the change's transaction the issuing CA's delta CRL listing it is signed
(``crl.status_changed``, the hook); after the commit it is written to
``$TAMGA_HOME/publish/crl/issuing-delta.crl``, the full CRL is reissued too while it is small
(``full_after_change_up_to``), and a revoked cloud key is destroyed in the HSM, as the API does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from signing_api.cli import root
from signing_api.cli.ca import ca

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crl import StatusPublished
    from signing_api.runtime import Runtime

__all__ = ["after_changes", "status_changed_in"]


def status_changed_in(
    rt: Runtime, session: Session, row_ids: Iterable[int], now: datetime
) -> StatusPublished:
    """The status-change hook, in the change's transaction (``session`` of ``rt``: a second
    connection would wait for this one's lock on SQLite): sign the delta CRL listing the
    certificates ``row_ids``."""
    from sqlalchemy import select

    from ca.models import Certificate
    from crl import status_changed

    ids = tuple(row_ids)
    serials = session.scalars(select(Certificate.serial).where(Certificate.id.in_(ids)))
    return status_changed(session, token=rt.ca_token, now=now, actor=root.actor(),
                          serials=[int(s, 16) for s in serials],
                          public_url=rt.config.public_url)  # fmt: skip


def after_changes(row_ids: tuple[int, ...], now: datetime, published: StatusPublished) -> str:
    """After the commit: write the delta signed in the transaction, reissue the full CRL while
    it is small, destroy revoked cloud keys."""
    from ca.models import Certificate
    from ca.revocation import destroy_revoked_key
    from crl import newest_base, refresh_crl, refresh_delta, write_crl_files
    from policies.crl import CRL_POLICY
    from signing_api.cli.root import open_runtime as _runtime

    rt = _runtime()
    folder = rt.config.crl_publish_dir
    if published.full is not None:
        write_crl_files(published.full.der, "issuing", folder)
    write_crl_files(published.delta.der, "issuing", folder, delta=True)
    issued = published.delta
    with rt.transaction() as session:
        base = newest_base(session, "issuing")  # number and size only, not the DER
    if base is None or base.entries <= CRL_POLICY.full_after_change_up_to:
        with rt.transaction() as session:
            full, _ = refresh_crl(session, issuer="issuing", token=rt.ca_token, now=now,
                                  actor=root.actor(), force=True,
                                  public_url=rt.config.public_url)  # fmt: skip
            issued, _ = refresh_delta(session, token=rt.ca_token, now=now, actor=root.actor())
        write_crl_files(full.der, "issuing", folder)
        write_crl_files(issued.der, "issuing", folder, delta=True)
    done = f"issuing delta CRL number {issued.number} (base {issued.base_number}) published"
    destroyed = 0
    for row_id in row_ids:
        with rt.transaction() as session:
            row = session.get_one(Certificate, row_id)
            if destroy_revoked_key(session, row, rt.cloud_token, now=now) and row.key_label:
                destroyed += 1
    if not destroyed:
        return done
    keys = "its cloud key was" if len(row_ids) == 1 else f"{destroyed} cloud keys were"
    return f"{done}; {keys} destroyed"


def _change(serial: str, action: str, **options: object) -> None:
    from ca.issuance import get_certificate
    from ca.revocation import Actor, resume, revoke, suspend
    from signing_api.cli.root import open_runtime as _runtime

    now = datetime.now(UTC)
    who = Actor(root.actor(), officer=True)
    rt = _runtime()
    with rt.transaction() as session:
        row = get_certificate(session, serial)
        if action == "revoke":
            row = revoke(session, row, now=now, who=who, **options)  # type: ignore[arg-type]
        elif action == "suspend":
            row = suspend(session, row, now=now, who=who, **options)
        else:
            row = resume(session, row, now=now, who=who, **options)
        row_id, status, serial = row.id, row.status, row.serial
        published = status_changed_in(rt, session, (row_id,), now)  # the hook: same transaction
    click.echo(f"{serial} {status}; {after_changes((row_id,), now, published)}")


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

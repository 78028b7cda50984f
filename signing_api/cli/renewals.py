"""``tamga ca renew-due`` (the daily §18.2 job) and the officer's renewal queue.

``renew-due`` renews the cloud certificates whose auto-renewal can no longer be cancelled and
lists every certificate it could not renew with the reason (cancelled, requisites changed,
balance); it exits 0 even then, since those are the subscribers' matters, and 1 only when an
issuance failed. ``renewals`` lists requests; ``renewal approve|reject`` decides one in review.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from policies.money import som
from policies.statuses import RenewalOutcome, RenewalStatus
from signing_api.cli import root
from signing_api.cli.ca import ca

if TYPE_CHECKING:
    from ca.renewal import Issuers

__all__: list[str] = []


def _issuers() -> Issuers:
    from ca.renewal import Issuers
    from signing_api.cli.root import open_runtime as _runtime

    rt = _runtime()
    return Issuers(rt.ca_token, rt.cloud_token, rt.config.public_url)


@ca.command("renew-due")
@click.option("--json", "as_json", is_flag=True, help="the outcomes as JSON")
def renew_due_command(as_json: bool) -> None:
    """Renew the cloud certificates that are due (run daily)."""
    from dataclasses import asdict

    from ca.renewal import renew_due
    from signing_api.cli.root import open_runtime as _runtime

    rt = _runtime()
    outcomes = renew_due(rt.transaction, _issuers(), now=datetime.now(UTC), actor=root.actor())
    if as_json:
        root.print_json([asdict(o) for o in outcomes])
    else:
        for o in outcomes:
            detail = f"→ {o.new_serial}" if o.new_serial else o.reason
            click.echo(f"{o.serial}  {o.inn}  {o.outcome}: {detail}")
        renewed = sum(o.outcome == RenewalOutcome.RENEWED for o in outcomes)
        click.echo(f"{renewed} renewed, {len(outcomes) - renewed} not renewed")
    if any(o.outcome == RenewalOutcome.FAILED for o in outcomes):
        raise SystemExit(1)


@ca.command("renewals")
@click.option("--status", type=click.Choice([s.value for s in RenewalStatus]))
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON")
def renewals(status: str | None, as_json: bool) -> None:
    """Renewal requests (``--status review`` is the officer's queue)."""
    from sqlalchemy import select

    from ca.models import RenewalRequest
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.web.ca.renewals import renewal_json

    with _runtime().transaction() as session:
        query = select(RenewalRequest).order_by(RenewalRequest.id)
        if status:
            query = query.where(RenewalRequest.status == status)
        views = [renewal_json(session, r) for r in session.scalars(query)]
    if as_json:
        root.print_json({"renewals": views, "count": len(views)})
        return
    for v in views:
        changed = ", ".join(v["changed"]) or "-"
        late = " LATE" if v["late"] else ""
        click.echo(f"{v['id']:>6}  {v['serial']}  {v['status']}{late}  changed: {changed}"
                   f"  documents: {len(v['documents'])}")  # fmt: skip


@ca.group("renewal")
def renewal() -> None:
    """Decide a renewal request in review."""


@renewal.command("approve")
@click.argument("renewal_id", type=int)
@click.option("--note", help="what was checked")
def approve(renewal_id: int, note: str | None) -> None:
    """Approve: the price is charged and the new certificate issued."""
    from ca.models import Certificate
    from ca.renewal import approve_renewal
    from signing_api.cli.root import open_runtime as _runtime

    rt = _runtime()
    done = approve_renewal(rt.transaction, _issuers(), renewal_id, note=note,
                           now=datetime.now(UTC), actor=root.actor())  # fmt: skip
    with rt.transaction() as session:
        new = session.get_one(Certificate, done.new_certificate_id)
        click.echo(f"renewal {renewal_id} issued certificate {new.serial}")


@ca.command("renewal-request")
@click.argument("serial")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the text here (the exact bytes to sign); default: stdout",
)
def renewal_request(serial: str, out: Path | None) -> None:
    """The seed 003 renewal request of a certificate, for its holder to sign."""
    from ca.issuance import get_certificate
    from ca.renewal import renewal_terms
    from signing_api.cli.root import open_runtime as _runtime

    with _runtime().transaction() as session:
        terms = renewal_terms(session, get_certificate(session, serial), datetime.now(UTC))
    if out is None:
        click.echo(terms.text, nl=False)
    else:
        out.write_bytes(terms.text.encode("utf-8"))
    changed = ", ".join(terms.changed) or "none"
    click.echo(
        f"price {som(terms.price)} som; changed requisites: {changed}"
        f"{'; LATE' if terms.late else ''}",
        err=True,
    )


@renewal.command("submit")
@click.argument("serial")
@click.option(
    "--document",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="the request text as it was signed",
)
@click.option(
    "--signature",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="the detached CMS signature (DER or PEM)",
)
@click.option(
    "--csr",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="RuToken: the new CSR made on the token",
)
def submit(serial: str, document: Path, signature: Path, csr: Path | None) -> None:
    """Submit a signed renewal request at the office (RuToken: with the new CSR)."""
    from ca.issuance import get_certificate
    from ca.models import Certificate
    from ca.renewal import submit_renewal
    from signing_api.cli.root import open_runtime as _runtime

    rt = _runtime()
    with rt.transaction() as session:
        row_id = get_certificate(session, serial).id
    try:
        text = document.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{document} is not UTF-8 text") from None
    done = submit_renewal(
        rt.transaction,
        _issuers(),
        certificate_id=row_id,
        document=text,
        signature=signature.read_bytes(),
        csr=None if csr is None else csr.read_bytes(),
        now=datetime.now(UTC),
        actor=root.actor(),
        officer=True,
    )
    if done.new_certificate_id is None:
        click.echo(f"renewal {done.id} is in review: changed {', '.join(done.changed)}")
        return
    with rt.transaction() as session:
        new = session.get_one(Certificate, done.new_certificate_id)
        click.echo(
            f"renewal {done.id} issued certificate {new.serial} "
            f"from {new.not_before:%Y-%m-%d %H:%M} UTC{' (late)' if done.late else ''}"
        )


@renewal.command("document")
@click.argument("renewal_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def document(renewal_id: int, file: Path) -> None:
    """Attach a supporting document to a renewal in review."""
    import mimetypes

    from ca.renewal import add_document
    from signing_api.cli.root import open_runtime as _runtime

    with _runtime().transaction() as session:
        row = add_document(
            session,
            renewal_id,
            filename=file.name,
            content_type=mimetypes.guess_type(file.name)[0] or "application/octet-stream",
            data=file.read_bytes(),
            now=datetime.now(UTC),
            actor=root.actor(),
        )
        click.echo(f"document {row.id} ({row.filename}, sha256 {row.sha256[:16]}…) attached")


@ca.command("auto-renewal")
@click.argument("serial")
@click.option("--on/--off", "enabled", required=True, help="restore or cancel")
def auto_renewal(serial: str, enabled: bool) -> None:
    """Cancel (or restore) a cloud certificate's automatic renewal (§18.2)."""
    from ca.issuance import get_certificate
    from ca.renewal import set_auto_renew
    from signing_api.cli.root import open_runtime as _runtime

    with _runtime().transaction() as session:
        row = set_auto_renew(
            session,
            get_certificate(session, serial),
            enabled=enabled,
            now=datetime.now(UTC),
            actor=root.actor(),
        )
        click.echo(f"{row.serial}: auto-renewal {'on' if row.auto_renew else 'off'}")


@renewal.command("reject")
@click.argument("renewal_id", type=int)
@click.option("--note", required=True, help="why (the subscriber is told)")
def reject(renewal_id: int, note: str) -> None:
    """Reject a renewal in review."""
    from ca.renewal import reject_renewal
    from signing_api.cli.root import open_runtime as _runtime

    with _runtime().transaction() as session:
        reject_renewal(session, renewal_id, note=note, now=datetime.now(UTC),
                       actor=root.actor())  # fmt: skip
    click.echo(f"renewal {renewal_id} rejected")

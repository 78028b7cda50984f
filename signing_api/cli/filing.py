"""``tamga worker`` and ``tamga filing ...``: delivery, and the officers' view of reports.

``tamga filing agency add`` registers an agency with its gateway URL and the certificate its
receipts are signed with; ``office add`` its offices. ``list``, ``show`` (the API's JSON),
``stop``, ``release`` (charge and queue what top-ups now cover), ``retry`` (deliver now) and
``package`` (the evidence ZIP) mirror the API for officers.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy.orm import Session

from policies.filing import FILING_POLICY
from signing_api.cli import root

if TYPE_CHECKING:
    from filing import Report

__all__: list[str] = []


@root.cli.command("worker")
@click.option("--once", is_flag=True, help="one pass (release, deliver, mail), then exit")
@click.option("--batch", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--idle", default=1.0, show_default=True, type=click.FloatRange(0.05, 60))
@click.option("--no-mail", is_flag=True, help="leave the mail outbox to `tamga mail send`")
@click.option(
    "--lease",
    default=FILING_POLICY.delivery_lease.total_seconds(),
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="seconds a report stays this worker's; after that another worker takes it over",
)
def worker(once: bool, batch: int, idle: float, no_mail: bool, lease: float) -> None:
    """Release paid reports, deliver queued ones to agencies, send mail, keep OCSP fresh
    (until SIGTERM)."""
    from signing_api.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    policy = replace(FILING_POLICY, delivery_lease=timedelta(seconds=lease))
    runner = Worker(root.open_runtime(), batch=batch, mail=not no_mail, policy=policy)
    if once:
        tally = runner.run_once()
        click.echo(
            f"released {tally.released}, delivered {tally.delivered}, failed {tally.failed},"
            f" mailed {tally.mailed}, OCSP answers re-signed {tally.ocsp_signed}"
            + (", OCSP responder certificate renewed" if tally.ocsp_renewed else "")
            + (f", CRLs signed: {' '.join(tally.crls)}" if tally.crls else "")
        )
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"worker {runner.owner} running", err=True)
    runner.run(stop, idle=idle)


@root.cli.group("filing")
def filing_group() -> None:
    """Reports: agencies and offices, list, show, stop, release, retry, package."""


@filing_group.group("agency")
def agency() -> None:
    """Agencies reports go to."""


@agency.command("add")
@click.option("--code", required=True, type=click.Choice(["tax", "social-fund", "statistics"]))
@click.option("--name", required=True)
@click.option("--endpoint", required=True, help="base URL of the agency's gateway")
@click.option(
    "--certificate",
    "certificate",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the agency's receipt-signing certificate (PEM or DER)",
)
def agency_add(code: str, name: str, endpoint: str, certificate: Path) -> None:
    """Register an agency (or change its endpoint or certificate)."""
    import filing

    with root.transaction() as session:
        info = filing.register_agency(
            session,
            code=code,
            name=name,
            endpoint=endpoint,
            receipt_certificate=certificate.read_bytes(),
            now=root.now(),
            actor=root.actor(),
        )
    click.echo(f"agency {info.code}: {info.endpoint}, receipts by {info.certificate_subject}")


@agency.command("list")
def agency_list() -> None:
    """The agencies and their offices (JSON)."""
    from dataclasses import asdict

    import filing

    with root.transaction() as session:
        root.print_json([asdict(a) for a in filing.list_agencies(session)])


@filing_group.group("office")
def office() -> None:
    """Offices of agencies."""


@office.command("add")
@click.option("--agency", required=True)
@click.option("--code", required=True)
@click.option("--name", required=True)
def office_add(agency: str, code: str, name: str) -> None:
    """Add (or rename) an office of an agency."""
    import filing

    with root.transaction() as session:
        filing.add_office(
            session, agency=agency, code=code, name=name, now=root.now(), actor=root.actor()
        )
    click.echo(f"office {code} of {agency}: {name}")


@filing_group.command("list")
@click.option("--inn", default=None)
@click.option("--status", "status", default=None, help="a delivery status")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
def list_reports(inn: str | None, status: str | None, limit: int) -> None:
    """Reports, newest first: id, INN, form, period, agency/office, statuses."""
    from sqlalchemy import select

    from filing import Report

    with root.transaction() as session:
        query = select(Report).order_by(Report.filed_at.desc(), Report.id).limit(limit)
        if inn is not None:
            query = query.where(Report.inn == inn)
        if status is not None:
            query = query.where(Report.delivery_status == status)
        for r in session.scalars(query):
            click.echo(
                f"{r.id}  {r.inn}  {r.kind:8} {r.period:8} {r.agency_code}/{r.office_code}"
                f"  {r.delivery_status}  {r.check_status}"
            )


def _report(session: Session, report_id: str) -> Report:
    from filing import Report

    row = session.get(Report, report_id)
    if row is None:
        raise click.ClickException(f"no report {report_id}")
    return row


@filing_group.command("show")
@click.argument("report_id")
def show(report_id: str) -> None:
    """One report as the API shows it (JSON, with its history)."""
    import filing

    with root.transaction() as session:
        root.print_json(filing.report_json(session, _report(session, report_id)))


@filing_group.command("stop")
@click.argument("report_id")
@click.option("--reason", required=True)
def stop(report_id: str, reason: str) -> None:
    """Stop a report before it leaves; its charge is reversed."""
    import filing

    with root.transaction() as session:
        _report(session, report_id)
        row = filing.stop_report(
            session, report_id, reason=reason, now=root.now(), actor=root.actor()
        )
        reversal = row.reversal_txn
    tail = f"; charge reversed by transaction {reversal}" if reversal else ""
    click.echo(f"report {report_id} stopped{tail}")


@filing_group.command("release")
@click.option("--inn", default=None, help="only this subscriber's waiting reports")
def release(inn: str | None) -> None:
    """Charge and queue the waiting reports the balances now cover (oldest first)."""
    import filing

    with root.transaction() as session:
        released = filing.release_waiting(
            session, now=root.now(), actor=root.actor(), inns=None if inn is None else [inn]
        )
    click.echo(f"released {len(released)}")
    for report_id in released:
        click.echo(report_id)


@filing_group.command("retry")
@click.argument("report_id")
def retry(report_id: str) -> None:
    """Make a report in delivery due now (a worker sends it on its next pass)."""
    import filing

    with root.transaction() as session:
        _report(session, report_id)
        filing.retry_now(session, report_id, now=root.now(), actor=root.actor())
    click.echo(f"report {report_id} is due for delivery")


@filing_group.command("package")
@click.argument("report_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def package(report_id: str, output: Path) -> None:
    """Write the report's evidence package (ZIP)."""
    import filing
    from ca.hierarchy import active_certificate

    with root.transaction() as session:
        row = _report(session, report_id)
        chain = [active_certificate(session, n) for n in ("root", "issuing")]
        data = filing.package(session, row, chain)
    output.write_bytes(data)
    click.echo(f"{output}: {len(data)} bytes")

"""``tamga billing import-statement | suspense | assign | cash | reconcile``.

Money the operator receives itself (bank statements, the cash desk), the suspense list officers
resolve, and the comparison of a provider's daily registry with what was recorded. Formats and
rules: ``docs/bank-statements.md``.

Exit status: 0 done (an imported statement with rejected lines too: they are listed); 1 refused
(a file that is not a statement or registry, a bad value, a billing refusal), one line on
stderr, nothing written; 3 ``reconcile`` found mismatches.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from policies.billing import BUSINESS_TIME_ZONE
from policies.money import som
from policies.statuses import LineOutcome
from signing_api.cli import root
from signing_api.cli.billing import billing_group

if TYPE_CHECKING:
    from billing.bank import ImportSummary, LineInfo

__all__ = ["LIST_AT_MOST", "MISMATCHES_FOUND", "PROGRESS_FROM", "billing_group"]

PROGRESS_FROM = 200  # statements with more lines than this show their progress on stderr
LIST_AT_MOST = 50  # suspense lines listed after an import (all: `tamga billing suspense`)
MISMATCHES_FOUND = 3  # exit status of `reconcile` when the registry and our receipts differ
_ZONE = ZoneInfo(BUSINESS_TIME_ZONE)

Progress = Callable[[int, int], None]


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as ex:
        raise click.ClickException(f"cannot read {file}: {ex.strerror or ex}") from ex


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.ClickException(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


# --- bank statements ---------------------------------------------------------------------------


@billing_group.command("import-statement")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_statement_command(file: Path) -> None:
    """Import a bank statement (CSV): credit matched lines, put the rest in suspense.

    Safe to run again on the same or an overlapping statement: a line (by bank reference) is
    imported once. Malformed lines are listed and not imported.
    """
    from billing import bank
    from signing_api.cli.root import open_runtime as _runtime

    parsed = bank.parse_statement(_read(file))
    runtime = _runtime()
    with _progress(len(parsed.entries)) as on_progress:
        summary = bank.import_statement(
            runtime.transaction, parsed, now=root.now(), actor=root.actor(), on_progress=on_progress
        )
    _print_summary(file, summary)


@contextmanager
def _progress(total: int) -> Iterator[Progress | None]:
    """A progress bar on a terminal, a line per tenth otherwise (logs, CI); none if small."""
    if total <= PROGRESS_FROM:
        yield None
        return
    if sys.stderr.isatty():
        with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
            shown = 0

            def advance(done: int, _total: int) -> None:
                nonlocal shown
                bar.update(done - shown)
                shown = done

            yield advance
        return
    tenth = max(total // 10, 1)

    def report(done: int, total: int) -> None:
        if done % tenth == 0 or done == total:
            click.echo(f"importing: {done}/{total} lines", err=True)

    yield report


def _print_summary(file: Path, summary: ImportSummary) -> None:
    lines = len(summary.results)
    plural = "line" if lines == 1 else "lines"
    click.echo(f"statement {file.name} (sha256 {summary.sha256[:16]}…): {lines} {plural}")
    labels = {LineOutcome.ALREADY: "already imported"}
    for outcome in LineOutcome:
        count = summary.count(outcome)
        label = labels.get(outcome, outcome)
        total = f"{som(summary.total(outcome)):>14} som" if outcome != LineOutcome.REJECTED else ""
        click.echo(f"  {label:<17}{count:>7} {'line ' if count == 1 else 'lines'}{total}")
    if suspense := summary.lines(LineOutcome.SUSPENSE):
        click.echo("in suspense (resolve with `tamga billing assign LINE --inn INN`):")
        for result in suspense[:LIST_AT_MOST]:
            click.echo(
                f"  #{result.line_id} line {result.line_no}, ref {result.reference}, "
                f"{som(result.amount)} som: {result.detail}"
            )
        if len(suspense) > LIST_AT_MOST:
            more = len(suspense) - LIST_AT_MOST
            click.echo(f"  ... and {more} more: `tamga billing suspense` lists them all")
    if rejected := summary.lines(LineOutcome.REJECTED):
        click.echo("rejected, not imported (correct them and import again):")
        for result in rejected:
            ref = f", ref {result.reference}" if result.reference else ""
            click.echo(f"  line {result.line_no}{ref}: {result.detail}")


@billing_group.command("suspense")
def suspense_command() -> None:
    """List the open suspense lines: bank money nobody could match to a subscriber yet."""
    from billing import bank
    from signing_api.cli.root import open_runtime as _runtime

    with _runtime().transaction() as session:
        open_lines = bank.suspense_lines(session)
    if not open_lines:
        click.echo("no open suspense lines")
        return
    for line in open_lines:
        _print_line(line)
    total = sum(line.amount for line in open_lines)
    click.echo(f"{len(open_lines)} open lines, {som(total)} som in suspense")


def _print_line(line: LineInfo) -> None:
    payer = line.payer_name or "unknown payer"
    if line.payer_inn:
        payer += f", INN {line.payer_inn}"
    click.echo(
        f"#{line.id}  {line.value_date:%d.%m.%Y}  ref {line.reference}  {som(line.amount)} som"
        f"  code {line.payment_code or '-'}  {payer}"
    )
    click.echo(f"    purpose: {line.purpose}")
    click.echo(f"    reason:  {line.reason}")


@billing_group.command("assign")
@click.argument("line_id", metavar="LINE", type=int)
@click.option("--inn", help="the subscriber's 14-digit INN (credits the balance)")
@click.option("--account", help="a 16-digit payment account (pays its purpose)")
def assign_command(line_id: int, inn: str | None, account: str | None) -> None:
    """Assign suspense LINE to a subscriber: the money moves from suspense to it. Once."""
    from billing import balance, bank
    from signing_api.cli.root import open_runtime as _runtime

    if (inn is None) == (account is None):
        raise click.ClickException("give exactly one of --inn INN or --account NUMBER")
    with _runtime().transaction() as session:
        line, receipt = bank.assign(
            session, line_id, inn=inn, account=account, now=root.now(), actor=root.actor()
        )
        owner = balance(session, receipt.inn)
    click.echo(
        f"line #{line.id} (ref {line.reference}) assigned to {owner.inn} ({owner.name}): "
        f"{som(line.amount)} som, receipt {receipt.id}; "
        f"balance {som(owner.posted)} som, available {som(owner.available)} som"
    )


# --- the cash desk -----------------------------------------------------------------------------


@billing_group.command("cash")
@click.option("--number", required=True, help="the cash receipt number (unique)")
@click.option("--amount", required=True, help="som, e.g. 1510.00")
@click.option("--inn", required=True, help="the subscriber's 14-digit INN")
@click.option("--date", "day", help="the day the cash was paid in (YYYY-MM-DD; default now)")
def cash_command(number: str, amount: str, inn: str, day: str | None) -> None:
    """Record a cash-desk receipt. The same number again prints the original receipt."""
    from billing import bank
    from signing_api.cli.root import open_runtime as _runtime

    tyiyn = bank.parse_amount(amount)
    now = root.now()
    paid_on = _day(day, "--date")
    if paid_on is not None and paid_on > now.astimezone(_ZONE).date():
        raise click.ClickException(f"--date {paid_on} is in the future")
    paid_at = bank.business_midnight(paid_on) if paid_on is not None else now
    with _runtime().transaction() as session:
        receipt = bank.record_cash(
            session,
            number=number.strip(),
            amount=tyiyn,
            inn=inn,
            paid_at=paid_at,
            now=now,
            actor=root.actor(),
        )
    recorded = receipt.recorded_at.astimezone(_ZONE).strftime("%Y-%m-%d %H:%M")
    what = f"{som(receipt.amount)} som to {receipt.inn}, receipt {receipt.id}"
    if receipt.replayed:
        click.echo(f"cash receipt {receipt.external_id} was already recorded on {recorded}: {what}")
    else:
        click.echo(f"cash receipt {receipt.external_id} recorded on {recorded}: {what}")


# --- provider registries -----------------------------------------------------------------------


@billing_group.command("reconcile")
@click.argument("provider")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--date", "day", help="the registry's day (YYYY-MM-DD; default: its payments' day)")
def reconcile_command(provider: str, file: Path, day: str | None) -> None:
    """Compare PROVIDER's daily registry FILE with the payments recorded; change nothing.

    Exit status 0 when they agree, 3 when mismatches were found, 1 when the file is not a
    registry or the provider is unknown.
    """
    from billing.reconcile import parse_registry, reconcile, registry_day
    from policies.providers import PROVIDERS
    from signing_api.cli.root import open_runtime as _runtime

    if provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise click.ClickException(f"unknown provider {provider!r} (known: {known})")
    rows = parse_registry(_read(file))
    registry_date = _day(day, "--date") or registry_day(rows)
    with _runtime().transaction() as session:
        mismatches = reconcile(session, provider, rows, day=registry_date)
    total = som(sum(row.amount for row in rows))
    click.echo(f"registry of {provider} for {registry_date}: {len(rows)} payments, {total} som")
    for mismatch in mismatches:
        click.echo(mismatch.describe())
    if not mismatches:
        click.echo("no mismatches")
        return
    click.echo(f"{len(mismatches)} mismatches")
    click.get_current_context().exit(MISMATCHES_FOUND)

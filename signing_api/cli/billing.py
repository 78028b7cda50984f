"""``tamga billing ...``: balances, statements, documents, payments and the ledger check.

The commands mirror ``/api/v1/accounts``: ``--json`` prints exactly the API's JSON, the plain
output shows amounts in som with two decimals. Dates are Asia/Bishkek calendar days. A billing
refusal is one line on stderr and exit status 1; nothing is written then.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from policies.dates import local_minute
from policies.money import som
from policies.statuses import CustomerAccountStatus
from signing_api.cli import root
from signing_api.cli.root import cli

if TYPE_CHECKING:
    from billing.document_data import DocumentRequest

__all__ = ["billing_group"]


@cli.group("billing")
def billing_group() -> None:
    """Prepaid balances: accounts, payments in, statements, documents, the ledger check."""


# --- helpers -----------------------------------------------------------------------------------


def _bad(param: click.Parameter | str, message: str) -> click.ClickException:
    """Bad input: one line and exit status 1, like every other refusal."""
    name = param if isinstance(param, str) else (param.opts[0] if param.opts else param.name)
    return click.ClickException(f"invalid {name}: {message}")


def _inn(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from policies.identifiers import is_inn

    if value is not None and not is_inn(value):
        raise _bad(param, f"{value!r} is not a 14-digit INN")
    return value


def _day(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    from policies.dates import parse_day

    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as ex:
        raise _bad(param, str(ex)) from None


def _money(_ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from policies.money import parse_som

    if value is None:
        return None
    try:
        return parse_som(value)
    except ValueError as ex:
        raise _bad(param, str(ex)) from None


def _period(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise _bad("--to", "the period ends before it starts")


def _write_file(path: Path, data: bytes, *, force: bool) -> None:
    """Write all of ``data`` or nothing: a temporary file renamed over ``path``."""
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    path = path.resolve()
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_INN_ARG = click.argument("inn", callback=_inn)
_JSON = click.option("--json", "as_json", is_flag=True, help="print the API's JSON")
_FROM = click.option("--from", "start", callback=_day, metavar="YYYY-MM-DD", help="first day")
_TO = click.option("--to", "end", callback=_day, metavar="YYYY-MM-DD", help="last day (included)")


# --- accounts and views ------------------------------------------------------------------------


@billing_group.command("open")
@click.option("--inn", required=True, callback=_inn, help="the subscriber's 14-digit INN")
@click.option("--name", required=True, help="the subscriber's name as on its documents")
def open_account(inn: str, name: str) -> None:
    """Open a subscriber's prepaid account (the same INN and name again changes nothing)."""
    import billing
    from signing_api.cli.root import open_runtime as _runtime

    name = " ".join(name.split())
    if not name or len(name) > 300:
        raise _bad("--name", "a name is 1-300 characters")
    with _runtime().transaction() as session:
        balance, created = billing.open_account(
            session, inn=inn, name=name, now=root.now(), actor=root.actor()
        )
    verb = "opened account" if created else "account exists already:"
    click.echo(f"{verb} {balance.inn} ({balance.name})")


@billing_group.command("show")
@_INN_ARG
@_JSON
def show(inn: str, as_json: bool) -> None:
    """Balance and service state of a subscriber."""
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.web.billing.accounts import account_json

    with _runtime().transaction() as session:
        view = account_json(session, inn, now=root.now())
    if as_json:
        root.print_json(view)
        return
    click.echo(f"{view['inn']}  {view['name']}")
    click.echo(
        f"posted {som(view['posted'])} som, held {som(view['held'])}, "
        f"available {som(view['available'])}"
    )
    click.echo(f"status: {view['status']} ({view['status_reason']})")
    click.echo(
        f"last payment: {local_minute(view['last_payment_at'], 'never')}; "
        f"may suspend (§5.3): {'yes' if view['may_suspend'] else 'no'}"
    )
    if (ended := view["termination"]) is not None:
        click.echo(
            f"terminated {local_minute(ended['terminated_at'], 'never')}: "
            f"refund {som(ended['refund'])} som, "
            f"debt {som(ended['debt'])} som due {ended['debt_due_on']}, "
            f"owed now {som(ended['owed'])} som"
        )


@billing_group.command("receipts")
@_INN_ARG
@_FROM
@_TO
@_JSON
def receipts(inn: str, start: date | None, end: date | None, as_json: bool) -> None:
    """Receipts ("Поступления"): every payment that reached the subscriber."""
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.web.billing.accounts import receipts_json

    _period(start, end)
    with _runtime().transaction() as session:
        view = receipts_json(session, inn, start, end)
    if as_json:
        root.print_json(view)
        return
    for item in view["receipts"]:
        source = item["channel"] + (f"/{item['provider']}" if item["provider"] else "")
        click.echo(
            f"{item['id']:>8}  {local_minute(item['recorded_at'], 'never')}  {source:<16} "
            f"{item['external_id']:<20} {som(item['amount']):>14}"
        )
    click.echo(f"{len(view['receipts'])} receipts, total {som(view['total'])} som")


@billing_group.command("statement")
@_INN_ARG
@click.option("--from", "start", required=True, callback=_day, metavar="YYYY-MM-DD")
@click.option("--to", "end", required=True, callback=_day, metavar="YYYY-MM-DD")
@_JSON
def statement(inn: str, start: date, end: date, as_json: bool) -> None:
    """Every movement of the balance from --from to --to (Bishkek days, both included)."""
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.web.billing.accounts import statement_json

    _period(start, end)
    with _runtime().transaction() as session:
        view = statement_json(session, inn, start, end)
    if as_json:
        root.print_json(view)
        return
    click.echo(f"{view['inn']}  {view['name']}  {view['from']} .. {view['to']}")
    click.echo(f"opening balance {som(view['opening']):>14}")
    for line in view["lines"]:
        click.echo(
            f"{local_minute(line['occurred_at'], 'never')}  {line['transaction_id']:>8}  "
            f"{som(line['amount']):>14} {som(line['balance_after']):>14}  {line['description']}"
        )
    click.echo(f"paid in         {som(view['total_in']):>14}")
    click.echo(f"charged/paid out {som(view['total_out']):>13}")
    click.echo(f"closing balance {som(view['closing']):>14}")


# --- documents ---------------------------------------------------------------------------------


@billing_group.command("document")
@click.argument("kind", type=click.Choice(["act", "invoice", "payment-invoice"]))
@_INN_ARG
@_FROM
@_TO
@click.option("--transaction", type=click.IntRange(min=1), help="invoice: a certificate charge")
@click.option("--month", metavar="YYYY-MM", help="invoice: a month of reporting services")
@click.option("--service", type=click.Choice(["sochi", "eds"]), help="payment-invoice")
@click.option("--amount", callback=_money, metavar="SOM", help="payment-invoice: e.g. 1510.00")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="overwrite --output if it exists")
def document(
    kind: str,
    inn: str,
    start: date | None,
    end: date | None,
    transaction: int | None,
    month: str | None,
    service: str | None,
    amount: int | None,
    output: Path,
    force: bool,
) -> None:
    """Write a billing document as PDF: act (--from --to), invoice (--transaction | --month),
    payment-invoice (--service --amount)."""
    from billing.document_data import document_for, local_date, render
    from signing_api.cli.root import open_runtime as _runtime

    _period(start, end)
    wanted = _document_request(kind, start, end, transaction, month, service, amount)
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; pass --force to overwrite it")
    with _runtime().transaction() as session:
        data = document_for(session, inn, wanted, today=local_date(root.now()))
    pdf = render(data)
    _write_file(output, pdf, force=force)
    click.echo(f"wrote {output} ({len(pdf)} bytes): {kind} № {data.number}")


def _document_request(
    kind: str,
    start: date | None,
    end: date | None,
    transaction: int | None,
    month: str | None,
    service: str | None,
    amount: int | None,
) -> DocumentRequest:
    from billing.document_data import DocumentRequest
    from policies.dates import parse_month

    year_month = None
    if month is not None:
        try:
            year_month = parse_month(month)
        except ValueError as ex:
            raise _bad("--month", str(ex)) from None
    try:
        return DocumentRequest(
            kind,
            start_day=start,
            end_day=end,
            transaction_id=transaction,
            month=year_month,
            service=service,
            amount=amount,
        )
    except ValueError as ex:
        raise click.ClickException(str(ex)) from None


# --- payment accounts, termination, penalties --------------------------------------------------


@billing_group.command("payment-account")
@_INN_ARG
@click.option("--tariff", required=True, help="a certificate tariff, e.g. cert:head")
@click.option("--purpose", help="default cert:first:<inn>")
def payment_account(inn: str, tariff: str, purpose: str | None) -> None:
    """Issue a 16-digit payment account ("EDS payment") for a certificate."""
    import billing
    from billing.document_data import local_date
    from policies.tariffs import TARIFFS, UnknownTariff
    from signing_api.cli.root import open_runtime as _runtime

    now = root.now()
    if not tariff.startswith("cert:"):
        raise _bad("--tariff", "a certificate tariff (cert:...)")
    try:
        price = TARIFFS.price(tariff, local_date(now)).price
    except UnknownTariff as ex:
        raise _bad("--tariff", str(ex.args[0])) from None
    with _runtime().transaction() as session:
        if billing.balance(session, inn).status == CustomerAccountStatus.TERMINATED:
            raise billing.AccountTerminated(f"the contract of {inn} is terminated")
        info = billing.issue_payment_account(
            session, inn=inn, purpose=purpose or f"cert:first:{inn}", tariff=tariff,
            amount_due=price, now=now, actor=root.actor(),
        )  # fmt: skip
    click.echo(
        f"payment account {info.number} for {info.purpose} ({info.tariff}): "
        f"{som(info.amount_due)} som, {info.status}"
    )


@billing_group.command("terminate")
@_INN_ARG
@click.option("--reason", required=True, help="the reason from the termination letter")
@click.option("--debt", callback=_money, metavar="SOM", help="debt found by the final act")
@click.option(
    "--act",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write the final reconciliation act (PDF) here",
)
@click.option("--force", is_flag=True, help="overwrite --act if it exists")
def terminate(inn: str, reason: str, debt: int | None, act: Path | None, force: bool) -> None:
    """Terminate a contract: the balance moves to refunds payable; no more payments or charges."""
    from billing.document_data import account_period, reconciliation_act, render
    from ca.termination import terminate_subscriber
    from signing_api.cli.revocation import after_changes, status_changed_in
    from signing_api.cli.root import open_runtime as _runtime

    reason = " ".join(reason.split())
    if not reason:
        raise _bad("--reason", "a reason is needed")
    if act is not None and act.exists() and not force:
        raise click.ClickException(f"{act} exists; pass --force to overwrite it")
    now = root.now()
    rt = _runtime()
    with rt.transaction() as session:
        done = terminate_subscriber(
            session, inn=inn, reason=reason, debt=debt or 0, now=now, actor=root.actor()
        )
        info = done.info
        opened, ended = account_period(session, inn)
        final = reconciliation_act(session, inn, opened, ended or opened)
        # the certificates revoked with the contract: their delta CRL, in this transaction
        hooked = status_changed_in(rt, session, done.revoked_ids, now) if done.revoked_ids else None
    state = "already terminated" if info.replayed else "terminated"
    click.echo(
        f"{inn} {state}: refund {som(info.refund)} som, debt {som(info.debt)} som "
        f"due {info.debt_due_on}"
    )
    if hooked is not None:
        published = after_changes(done.revoked_ids, now, hooked)
        serials = ", ".join(done.revoked_serials)
        click.echo(f"revoked (cessationOfOperation): {serials}; {published}")
    if act is not None:
        _write_file(act, render(final), force=force)
        click.echo(f"wrote the final reconciliation act {final.number} to {act}")


@billing_group.command("accrue-penalties")
@click.option("--date", "on", callback=_day, metavar="YYYY-MM-DD", help="default: today")
def accrue_penalties(on: date | None) -> None:
    """Charge the §18.6 penalty (1 %/day) on overdue debts; run daily, safe to run twice."""
    import billing
    from billing.document_data import local_date
    from signing_api.cli.root import open_runtime as _runtime

    now = root.now()
    day = on or local_date(now)
    with _runtime().transaction() as session:
        postings = billing.accrue_penalties(session, on=day, now=now, actor=root.actor())
    for posting in postings:
        click.echo(f"penalty {posting.key}: {som(posting.amount)} som")
    total = sum(p.amount for p in postings)
    click.echo(f"{len(postings)} penalties charged up to {day}, {som(total)} som")


@billing_group.command("check")
def check() -> None:
    """Recompute every balance from the journal; exit 1 and name each drift if any."""
    import billing
    from signing_api.cli.root import open_runtime as _runtime

    with _runtime().transaction() as session:
        count, drifts = billing.check_balances(session)
    for drift in drifts:
        click.echo(f"drift: {drift}")
    if drifts:
        raise click.ClickException(f"ledger drift: {len(drifts)} found, {count} accounts checked")
    click.echo(f"ledger consistent: {count} accounts checked")

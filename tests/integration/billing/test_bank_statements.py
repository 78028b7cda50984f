"""Bank statements, the suspense list, the cash desk and provider registries, through the real
``tamga billing`` command line on SQLite and PostgreSQL.

Statements and registries are written by the tests themselves (to ``tmp_path``), in the format
documented in ``docs/bank-statements.md``; each line says in a comment what it is there for.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

import billing
from billing import bank, ledger
from billing.bank import BankStatementLine
from billing.models import LedgerEntry, LedgerTransaction, Payment
from db import AuditEntry, verify_chain
from tests.tamga_fixtures import RunTamga

pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ACTOR = "test"
ALA = "01234567890123"  # ОсОО "Ала-Тоо"
ASANOV = "02234567890123"  # ИП Асанов
CLOSED = "03234567890123"  # terminated, owes nothing
UNKNOWN = "09999999999999"
HEADER = "date;reference;amount;payer_name;payer_inn;payer_account;payment_code;purpose"


def csv_text(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Three subscribers (one terminated) and a payment account for each active one."""
    with session_factory.begin() as s:
        billing.open_account(s, inn=ALA, name='ОсОО "Ала-Тоо"', now=NOW, actor=ACTOR)
        billing.open_account(s, inn=ASANOV, name="ИП Асанов", now=NOW, actor=ACTOR)
        billing.open_account(s, inn=CLOSED, name="ОсОО Закрыто", now=NOW, actor=ACTOR)
        billing.terminate(s, inn=CLOSED, reason="договор расторгнут", now=NOW, actor=ACTOR)
    return session_factory


def _payment_account(db: sessionmaker[Session], inn: str, amount_due: int) -> str:
    with db.begin() as s:
        return billing.issue_payment_account(
            s, inn=inn, purpose=f"cert:first:{inn}", tariff="cloud-head", amount_due=amount_due,
            now=NOW, actor=ACTOR,
        ).number  # fmt: skip


@pytest.fixture
def tamga(
    run_tamga: RunTamga, tmp_path: Path, database_url: str
) -> Callable[..., tuple[int, str, str]]:
    """``tamga("billing", "suspense")`` → (exit status, stdout, stderr)."""

    def run(*args: str, timeout: float = 120) -> tuple[int, str, str]:
        result = run_tamga(
            tmp_path / "home", *args, database_url=database_url, check=False, timeout=timeout
        )
        return result.returncode, result.stdout, result.stderr

    return run


def _write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return str(path)


def _counts(db: sessionmaker[Session]) -> dict[str, int]:
    with db() as s:
        return {
            model.__tablename__: s.scalar(select(func.count()).select_from(model)) or 0
            for model in (LedgerTransaction, LedgerEntry, Payment, BankStatementLine, AuditEntry)
        }


def _balance(db: sessionmaker[Session], inn: str) -> tuple[int, int]:
    with db() as s:
        bal = billing.balance(s, inn)
        return bal.posted, bal.held


def _account(db: sessionmaker[Session], code: str) -> int:
    with db() as s:
        return ledger.account_balance(s, code)


def _no_drift(db: sessionmaker[Session]) -> None:
    with db() as s:
        _, drifts = billing.check_balances(s)
        assert drifts == []
        verify_chain(s)


def _summary(out: str) -> dict[str, tuple[int, str | None]]:
    """The counts (and sums in som) of an import's summary."""
    found = re.findall(
        r"^  (credited|suspense|already imported|rejected) +(\d+) lines? *(?:([\d.]+) som)?$",
        out,
        re.MULTILINE,
    )
    return {label: (int(count), total or None) for label, count, total in found}


def _line(db: sessionmaker[Session], reference: str) -> BankStatementLine:
    with db() as s:
        return s.scalars(
            select(BankStatementLine).where(BankStatementLine.bank_reference == reference)
        ).one()


def _first_statement(pa_ala: str, pa_asanov: str) -> str:
    return csv_text(
        # credited: the INN in the purpose, code for services
        "02.11.2026;PP-1001;1000,00;ОсОО Ала-Тоо;01234567890123;;42151410;"
        "Пополнение баланса СОЧИ, ИНН 01234567890123",
        # credited: a payment account ("EDS payment"), the exact amount due, the other code
        f"2026-11-02;PP-1002;1510.00;ОсОО Ала-Тоо;;;42122900;Оплата ЭЦП по счету {pa_ala}",
        # suspense: not one of the operator's payment codes
        "02.11.2026;PP-1003;300.00;ИП Асанов;;;11111111;ИНН 02234567890123",
        # suspense: an INN nobody has
        "02.11.2026;PP-1004;250.00;Кто-то;;;42151410;ИНН 09999999999999",
        # suspense: two subscribers named, whose money is it?
        "02.11.2026;PP-1005;400.00;Бухгалтер;;;42151410;"
        '"за ИНН 01234567890123, ИНН 02234567890123"',
        # rejected: three decimals
        "02.11.2026;PP-1006;12,345;Кто-то;;;42151410;ИНН 01234567890123",
        # suspense: a terminated subscriber with no debt to pay
        "02.11.2026;PP-1007;200.00;ОсОО Закрыто;;;42151410;ИНН 03234567890123",
        # suspense: the payment account expects 1420.00
        f"02.11.2026;PP-1008;100.00;ИП Асанов;;;42151410;Оплата ЭЦП {pa_asanov}",
        # rejected: no reference
        "02.11.2026;;100.00;Кто-то;;;42151410;ИНН 01234567890123",
        # rejected: no such day
        "31.02.2026;PP-1010;100.00;Кто-то;;;42151410;ИНН 01234567890123",
        # credited: "ИНН:" glued to the number, other numbers around it
        "02.11.2026;PP-1011;700.00;ИП Асанов;;;42151410;"
        "ИНН:02234567890123, договор 15 от 01.01.2026",
    )


@pytest.fixture
def imported(
    db: sessionmaker[Session], tamga: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> tuple[str, str]:
    """The first statement, imported once; returns (its path, its stdout)."""
    pa_ala = _payment_account(db, ALA, 1510_00)
    pa_asanov = _payment_account(db, ASANOV, 1420_00)
    path = _write(tmp_path, "statement-1.csv", _first_statement(pa_ala, pa_asanov))
    status, out, err = tamga("billing", "import-statement", path)
    assert status == 0, err
    return path, out


def test_a_statement_credits_matched_lines_and_parks_the_rest(
    db: sessionmaker[Session], imported: tuple[str, str]
) -> None:
    _, out = imported
    assert _summary(out) == {
        "credited": (3, "3210.00"), "suspense": (5, "1250.00"), "already imported": (0, "0.00"),
        "rejected": (3, None),
    }  # fmt: skip
    for reason in (
        "payment code 11111111 is not one of the operator's",
        f"names no known INN or payment account (unknown: {UNKNOWN})",
        f"names several accounts: {ALA}, {ASANOV}",
        f"the contract of {CLOSED} is terminated",
        "expects 1420.00",
        "line 7, ref PP-1006: '12,345' is not an amount",
        "line 10: no reference",
        "line 11, ref PP-1010: '31.02.2026' is not a date",
    ):
        assert reason in out, reason
    assert _balance(db, ALA) == (1000_00 + 1510_00, 1510_00)  # the EDS payment is held for it
    assert _balance(db, ASANOV) == (700_00, 0)
    assert _account(db, ledger.SUSPENSE) == -1250_00
    assert _account(db, ledger.BANK) == 3210_00 + 1250_00
    with db() as s:
        paid = s.scalars(select(Payment).where(Payment.channel == "bank")).all()
        assert {(p.external_id, p.inn, p.service) for p in paid} == {
            ("PP-1001", ALA, "sochi"),
            ("PP-1002", ALA, "eds"),
            ("PP-1011", ASANOV, "sochi"),
        }
        assert all(p.paid_at == datetime(2026, 11, 1, 18, 0, tzinfo=UTC) for p in paid)
    assert _line(db, "PP-1001").status == "credited"
    assert _line(db, "PP-1004").status == "suspense"
    _no_drift(db)


def test_importing_again_or_an_overlapping_statement_credits_nothing_twice(
    db: sessionmaker[Session],
    imported: tuple[str, str],
    tamga: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
) -> None:
    path, _ = imported
    before = _counts(db)
    balances = _balance(db, ALA), _balance(db, ASANOV), _account(db, ledger.SUSPENSE)

    status, out, _ = tamga("billing", "import-statement", path)
    assert status == 0
    assert _summary(out)["already imported"] == (8, "4460.00")
    assert _summary(out)["credited"] == (0, "0.00")
    after = _counts(db)
    assert after.pop("audit_journal") == before.pop("audit_journal") + 1  # the import itself
    assert after == before
    assert (_balance(db, ALA), _balance(db, ASANOV), _account(db, ledger.SUSPENSE)) == balances

    overlapping = csv_text(
        "02.11.2026;PP-1001;1000.00;ОсОО Ала-Тоо;;;42151410;ИНН 01234567890123",  # seen
        "02.11.2026;PP-1011;700.00;ИП Асанов;;;42151410;ИНН 02234567890123",  # seen
        "03.11.2026;PP-2001;55.50;ИП Асанов;;;42151410;ИНН 02234567890123",  # new
        "03.11.2026;PP-1003;999.00;Кто-то;;;42151410;ИНН 02234567890123",  # seen, other amount
    )
    status, out, _ = tamga(
        "billing", "import-statement", _write(tmp_path, "statement-2.csv", overlapping)
    )
    assert status == 0
    summary = _summary(out)
    assert summary["credited"] == (1, "55.50")
    assert summary["already imported"] == (2, "1700.00")
    assert summary["rejected"] == (1, None)
    assert "reference PP-1003 was imported before with 300.00 som on 02.11.2026" in out
    assert _balance(db, ASANOV) == (700_00 + 55_50, 0)
    assert _balance(db, ALA) == balances[0]
    _no_drift(db)


def test_an_officer_assigns_suspense_lines_once(
    db: sessionmaker[Session],
    imported: tuple[str, str],
    tamga: Callable[..., tuple[int, str, str]],
) -> None:
    status, out, _ = tamga("billing", "suspense")
    assert status == 0
    assert "5 open lines, 1250.00 som in suspense" in out
    assert "ref PP-1004  250.00 som" in out and "purpose: ИНН 09999999999999" in out

    wrong_code = _line(db, "PP-1003").id
    status, out, _ = tamga("billing", "assign", str(wrong_code), "--inn", ASANOV)
    assert status == 0, out
    assert f"assigned to {ASANOV} (ИП Асанов): 300.00 som" in out
    assert _balance(db, ASANOV) == (700_00 + 300_00, 0)
    assert _account(db, ledger.SUSPENSE) == -950_00

    before = _counts(db)
    status, _, err = tamga("billing", "assign", str(wrong_code), "--inn", ALA)
    assert status == 1
    assert f"line #{wrong_code} (PP-1003) was already assigned to {ASANOV} by cli:" in err
    assert _counts(db) == before

    # Refusals write nothing and leave the line in suspense.
    closed_line, small_line = _line(db, "PP-1007").id, _line(db, "PP-1008").id
    pa_asanov = _line(db, "PP-1008").purpose.split()[-1]
    for args, message in (
        ([str(closed_line), "--inn", CLOSED], f"{CLOSED} is terminated"),
        ([str(small_line), "--account", pa_asanov], "expects 1420.00"),
        ([str(small_line), "--inn", "123"], "'123' is not a 14-digit INN"),
        ([str(small_line)], "give exactly one of --inn INN or --account NUMBER"),
        ([str(_line(db, "PP-1001").id), "--inn", ALA], "is not in suspense: it was credited"),
        (["999999", "--inn", ALA], "no bank statement line #999999"),
    ):
        status, _, err = tamga("billing", "assign", *args)
        assert status == 1 and message in err, (args, err)
        assert err.count("\n") == 1, err  # one line, no traceback
    assert _counts(db) == before

    for reference, inn in (("PP-1004", ALA), ("PP-1005", ASANOV), ("PP-1007", ALA)):
        assert tamga("billing", "assign", str(_line(db, reference).id), "--inn", inn)[0] == 0
    assert tamga("billing", "assign", str(small_line), "--inn", ASANOV)[0] == 0
    assert _account(db, ledger.SUSPENSE) == 0
    assert _balance(db, ALA) == (1000_00 + 1510_00 + 250_00 + 200_00, 1510_00)
    assert _balance(db, ASANOV) == (700_00 + 300_00 + 400_00 + 100_00, 0)
    assert tamga("billing", "suspense")[1] == "no open suspense lines\n"
    with db() as s:
        assigned = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "billing.bank_line.assigned")
        ).all()
        assert len(assigned) == 5
        assert {e.details_dict()["reference"] for e in assigned} == {
            "PP-1003", "PP-1004", "PP-1005", "PP-1007", "PP-1008",
        }  # fmt: skip
        line = s.get_one(BankStatementLine, wrong_code)
        assert (line.status, line.inn) == ("assigned", ASANOV)
        assert line.resolved_by is not None and line.resolved_by.startswith("cli:")
    _no_drift(db)


def test_the_database_refuses_to_rewrite_or_delete_statement_lines(
    db: sessionmaker[Session], imported: tuple[str, str]
) -> None:
    credited, parked = _line(db, "PP-1001").id, _line(db, "PP-1004").id
    for statement, line_id in (
        ("UPDATE bank_statement_lines SET status = 'suspense' WHERE id = :id", credited),
        ("UPDATE bank_statement_lines SET amount = 1 WHERE id = :id", parked),
        ("UPDATE bank_statement_lines SET status = 'credited' WHERE id = :id", parked),
        ("UPDATE bank_statement_lines SET bank_reference = 'X' WHERE id = :id", credited),
        ("DELETE FROM bank_statement_lines WHERE id = :id", parked),
    ):
        with db() as s, pytest.raises(DBAPIError, match="bank_statement_lines"):
            s.execute(text(statement), {"id": line_id})
            s.commit()
    assert _line(db, "PP-1004").status == "suspense"


def test_an_import_stopped_half_way_keeps_what_it_did_and_a_rerun_continues(
    db: sessionmaker[Session],
) -> None:
    rows = [f"02.11.2026;R-{n};{n}.00;Payer;;;42151410;ИНН {ALA}" for n in range(1, 11)]
    parsed = bank.parse_statement(csv_text(*rows).encode())
    calls = 0

    def failing_at_line_7() -> AbstractContextManager[Session]:
        nonlocal calls
        calls += 1
        if calls == 1 + 7:  # the first transaction looks up references imported before
            raise ConnectionError("the database went away")
        return db.begin()

    with pytest.raises(bank.ImportInterrupted) as stopped:
        bank.import_statement(failing_at_line_7, parsed, now=NOW, actor=ACTOR)
    assert (stopped.value.line_no, stopped.value.done) == (8, 6)  # line 8 is the 7th entry
    assert "the 6 lines before it are imported" in str(stopped.value)
    assert _balance(db, ALA) == (sum(range(1, 7)) * 100, 0)

    progress: list[tuple[int, int]] = []
    summary = bank.import_statement(
        db.begin, parsed, now=NOW, actor=ACTOR, on_progress=lambda d, t: progress.append((d, t))
    )
    assert (summary.count("already"), summary.count("credited")) == (6, 4)
    assert progress == [(n, 10) for n in range(1, 11)]
    assert _balance(db, ALA) == (sum(range(1, 11)) * 100, 0)
    _no_drift(db)


# PostgreSQL only: the production database. The per-line logic is the same on SQLite (every
# other test here runs on both); a thousand committed transactions twice would only add time.
LARGE = 1000  # lines; over the 200-line threshold of the progress bar


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_large_statement_imports_with_progress(
    db: sessionmaker[Session], tamga: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    rows = [
        # every tenth line has a foreign payment code and waits in suspense
        f"03.11.2026;BIG-{n:05d};{n % 900 + 1}.{n % 100:02d};Payer {n};;;"
        f"{'11111111' if n % 10 == 0 else '42151410'};Оплата услуг ИНН {(ALA, ASANOV)[n % 2]}"
        for n in range(LARGE)
    ]
    amounts = [(n % 900 + 1) * 100 + n % 100 for n in range(LARGE)]
    path = _write(tmp_path, "big.csv", csv_text(*rows))
    started = time.perf_counter()
    status, out, err = tamga("billing", "import-statement", path, timeout=900)
    elapsed = time.perf_counter() - started
    print(f"{LARGE}-line statement imported in {elapsed:.1f} s")
    assert status == 0, err
    assert [line for line in err.splitlines() if line.startswith("importing:")] == [
        f"importing: {n}/{LARGE} lines" for n in range(LARGE // 10, LARGE + 1, LARGE // 10)
    ]
    assert _summary(out)["credited"][0] == LARGE * 9 // 10
    assert _summary(out)["suspense"][0] == LARGE // 10
    assert f"... and {LARGE // 10 - 50} more: `tamga billing suspense` lists them all" in out
    credited = sum(a for n, a in enumerate(amounts) if n % 10)
    assert _balance(db, ALA)[0] + _balance(db, ASANOV)[0] == credited
    assert _account(db, ledger.SUSPENSE) == -sum(a for n, a in enumerate(amounts) if n % 10 == 0)

    started = time.perf_counter()
    status, out, _ = tamga("billing", "import-statement", path)
    print(f"the same statement again in {time.perf_counter() - started:.1f} s")
    assert status == 0 and _summary(out)["already imported"][0] == LARGE
    _no_drift(db)


def test_the_cash_desk_records_a_receipt_once(
    db: sessionmaker[Session], tamga: Callable[..., tuple[int, str, str]]
) -> None:
    status, out, err = tamga(
        "billing", "cash", "--number", "KO-17", "--amount", "1510.00", "--inn", ALA,
        "--date", "2026-11-02",
    )  # fmt: skip
    assert status == 0, err
    assert "cash receipt KO-17 recorded on" in out and f"1510.00 som to {ALA}" in out
    assert _balance(db, ALA) == (1510_00, 0)
    assert _account(db, ledger.CASH) == 1510_00
    with db() as s:
        receipt = s.scalars(select(Payment).where(Payment.channel == "cash")).one()
        assert receipt.paid_at == datetime(2026, 11, 1, 18, 0, tzinfo=UTC)  # 00:00 in Bishkek
    before = _counts(db)

    status, out, _ = tamga("billing", "cash", "--number", "KO-17", "--amount", "1510", "--inn", ALA)
    assert status == 0 and "cash receipt KO-17 was already recorded on" in out
    assert f"receipt {receipt.id}" in out
    assert _counts(db) == before

    for args, message in (
        (["KO-17", "1510.01", ALA], "cash receipt KO-17 was recorded on"),
        (["KO-17", "1510.00", ASANOV], f"for 1510.00 som to {ALA}"),
        (["KO-18", "1.234", ALA], "'1.234' is not an amount"),
        (["KO-18", "-5", ALA], "'-5' is not an amount"),
        (["KO-18", "0", ALA], "an amount must be positive"),
        (["KO-18", "1e3", ALA], "'1e3' is not an amount"),
        (["KO-18", "NaN", ALA], "'NaN' is not an amount"),
        (["KO-18", "10", "0123"], "'0123' is not a 14-digit INN"),
        (["KO-18", "10", UNKNOWN], f"no subscriber with INN {UNKNOWN}"),
        (["KO-18", "10", CLOSED], f"{CLOSED} is terminated"),
    ):
        number, amount, inn = args
        status, _, err = tamga(
            "billing", "cash", "--number", number, "--amount", amount, "--inn", inn
        )
        assert status == 1 and message in err, (args, err)
    status, _, err = tamga(
        "billing", "cash", "--number", "KO-18", "--amount", "10", "--inn", ALA,
        "--date", "2999-01-01",
    )  # fmt: skip
    assert status == 1 and "in the future" in err
    assert _counts(db) == before
    _no_drift(db)


def _osmp(db: sessionmaker[Session], txn_id: str, account: str, amount: int, when: str) -> None:
    """A terminal payment as signing_api.web.billing.osmp records it (txn_date is Bishkek time)."""
    local = datetime.strptime(when, "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo("Asia/Bishkek"))
    paid_at = local.astimezone(UTC)
    with db.begin() as s:
        billing.record_payment(
            s, channel="osmp", provider="megapay", external_id=txn_id, account=account,
            amount=amount, paid_at=paid_at, now=paid_at, actor="osmp:megapay",
        )  # fmt: skip


def test_reconcile_reports_each_kind_of_mismatch_and_changes_nothing(
    db: sessionmaker[Session], tamga: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    _osmp(db, "7001", ALA, 100_00, "20261102093000")  # agrees with the registry
    _osmp(db, "7002", ALA, 250_00, "20261102101500")  # the registry says 205.00
    _osmp(db, "7003", ASANOV, 50_00, "20261102120000")  # the registry names another account
    _osmp(db, "7004", ASANOV, 75_00, "20261102235959")  # not in the registry
    _osmp(db, "7005", ALA, 10_00, "20261103000001")  # the next day: not this registry's
    registry = (
        "txn_id;account;sum;txn_date\n"
        f"7001;{ALA};100.00;20261102093000\n"
        f"7002;{ALA};205.00;20261102101500\n"
        f"7003;{ALA};50.00;20261102120000\n"
        f"7009;{ASANOV};30.00;20261102130000\n"  # never reached us
    )
    path = _write(tmp_path, "megapay-2026-11-02.csv", registry)
    before = _counts(db)
    balances = _balance(db, ALA), _balance(db, ASANOV)

    status, out, err = tamga("billing", "reconcile", "megapay", path)
    assert status == 3, err
    assert "registry of megapay for 2026-11-02: 4 payments, 385.00 som" in out
    assert "amount_differs txn_id 7002 (line 3, receipt" in out
    assert "amount differs: registry 205.00, here 250.00" in out
    assert f"account differs: registry {ALA}, here {ASANOV}" in out
    assert "missing_here txn_id 7009 (line 5, no receipt)" in out
    assert "missing_there txn_id 7004 (not in the registry" in out
    assert "7001" not in out and "7005" not in out
    assert "4 mismatches" in out
    assert _counts(db) == before
    assert (_balance(db, ALA), _balance(db, ASANOV)) == balances

    agreeing = "txn_id;account;sum;txn_date\n" + f"7005;{ALA};10.00;20261103000001\n"
    status, out, _ = tamga(
        "billing", "reconcile", "megapay", _write(tmp_path, "megapay-2026-11-03.csv", agreeing)
    )
    assert status == 0 and out.endswith("no mismatches\n")
    empty = _write(tmp_path, "empty.csv", "txn_id;account;sum;txn_date\n")
    status, out, _ = tamga("billing", "reconcile", "megapay", empty, "--date", "2026-11-02")
    assert status == 3 and "missing_there" in out and out.count("missing_there") == 4

    for args, message in (
        (["nosuchpay", path], "unknown provider 'nosuchpay'"),
        (["megapay", _write(tmp_path, "bad.csv", "txn_id;account;sum\n1;2;3\n")], "no column"),
        (
            ["megapay", _write(tmp_path, "bad2.csv", registry + "7010;x;1e3;20261102130000\n")],
            "line 6: '1e3' is not an amount",
        ),
        (["megapay", _write(tmp_path, "two-days.csv", registry + agreeing.split("\n")[1])],
         "cannot tell the registry's day"),
        (["megapay", str(tmp_path / "missing.csv")], "cannot read"),
        (["megapay", path, "--date", "02.11.2026"], "is not a date (YYYY-MM-DD)"),
    ):  # fmt: skip
        status, _, err = tamga("billing", "reconcile", *args)
        assert status == 1 and message in err, (args, err)
    assert _counts(db) == before


def test_a_file_that_is_not_a_statement_is_refused_whole(
    db: sessionmaker[Session], tamga: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    before = _counts(db)
    cp1251 = csv_text("02.11.2026;X-1;10.00;Кто-то;;;42151410;ИНН 01234567890123")
    for name, content, message in (
        ("missing.csv", None, "cannot read"),
        ("cp1251.csv", cp1251.encode("cp1251"), "not UTF-8"),
        ("binary.csv", b"\x00\x01\x02PK", "binary file"),
        ("empty.csv", b"", "empty"),
        ("wrong.csv", "a;b;c\n1;2;3\n", "lacks the column(s) date, reference, amount"),
    ):
        path = str(tmp_path / name) if content is None else _write(tmp_path, name, content)
        status, out, err = tamga("billing", "import-statement", path)
        assert (status, out) == (1, ""), (name, out, err)
        assert message in err and err.count("\n") == 1, (name, err)
    assert _counts(db) == before


def test_a_comma_separated_statement_with_a_bom(
    db: sessionmaker[Session], tamga: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    content = (
        "\ufeffReference,Date,Amount,Payment_Code,Purpose\n"
        '77-1,2026-11-02,"1 234,50",42151410,"Оплата, ИНН 01234567890123"\n'
    )
    status, out, err = tamga("billing", "import-statement", _write(tmp_path, "comma.csv", content))
    assert status == 0, err
    assert _summary(out)["credited"] == (1, "1234.50")
    assert _balance(db, ALA) == (1234_50, 0)

"""``tamga billing ...`` as an officer runs it (real subprocesses, SQLite and PostgreSQL): the
views mirror the API byte for byte, documents are written whole or not at all, termination and
the daily penalty job, the ledger check catching a tampered balance, and bad input refused with
one line and exit status 1."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

import billing
from billing.document_data import local_date
from db import AuditEntry
from policies.calendar import CALENDAR
from signing_api.app import create_app
from signing_api.clients import create_client
from signing_api.runtime import Runtime
from tests.tamga_fixtures import RunTamga

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

INN = "01234567890123"
OTHER = "02234567890123"
NAME = 'ОсОО "Ала-Тоо Консалтинг"'


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def tamga(run_tamga: RunTamga, home: Path, database_url: str) -> Any:
    """``tamga("billing", "show", INN, check=False)`` on this test's database."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(home, *args, database_url=database_url, check=check)

    return run


@pytest.fixture
def api(runtime: Runtime) -> Any:
    """GET/POST on the real app over the same database, as an officer."""
    app: Flask = create_app(runtime.config)
    app.extensions["tamga"] = runtime
    with runtime.transaction() as session:
        token = create_client(
            session, name="officer", role="officer", now=datetime.now(UTC), actor="test"
        ).token
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    class Api:
        @staticmethod
        def get(path: str, **query: str) -> Any:
            return client.get(path, headers=headers, query_string=query)

        @staticmethod
        def post(path: str, body: dict[str, Any]) -> Any:
            return client.post(path, json=body, headers=headers)

    return Api


def _refused(result: subprocess.CompletedProcess[str], words: str) -> None:
    """Exit status 1 and one line on stderr saying what was wrong."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], lines
    assert "Traceback" not in result.stderr


def _pdf_text(path: Path) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext is missing: install poppler-utils (make system-packages)")
    done = subprocess.run(
        [tool, "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
    )
    return " ".join(done.stdout.decode("utf-8").split())


def _audit(runtime: Runtime, action: str) -> int:
    with runtime.transaction() as session:
        return (
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            )
            or 0
        )


def test_cli_views_and_documents_mirror_the_api(tamga: Any, api: Any, tmp_path: Path) -> None:
    opened = tamga("billing", "open", "--inn", INN, "--name", f" {NAME}  ")
    assert opened.stdout.strip() == f"opened account {INN} ({NAME})"
    again = tamga("billing", "open", "--inn", INN, "--name", NAME)
    assert "exists already" in again.stdout
    assert (
        api.post(
            f"/api/v1/accounts/{INN}/cash-receipts", {"number": "КО-1", "amount": 500_00}
        ).status_code
        == 201
    )
    assert (
        api.post(
            f"/api/v1/accounts/{INN}/cash-receipts", {"number": "КО-2", "amount": 25_50}
        ).status_code
        == 201
    )

    shown = json.loads(tamga("billing", "show", INN, "--json").stdout)
    assert shown == api.get(f"/api/v1/accounts/{INN}").json
    assert shown["available"] == 525_50 and shown["status"] == "active"
    plain = tamga("billing", "show", INN).stdout
    assert NAME in plain and "available 525.50" in plain and "status: active" in plain

    listed = json.loads(tamga("billing", "receipts", INN, "--json").stdout)
    assert listed == api.get(f"/api/v1/accounts/{INN}/receipts").json
    assert [r["external_id"] for r in listed["receipts"]] == ["КО-1", "КО-2"]
    assert "2 receipts, total 525.50 som" in tamga("billing", "receipts", INN).stdout

    today = local_date(datetime.now(UTC))
    period = {"from": str(today - timedelta(days=30)), "to": str(today)}
    flags = ["--from", period["from"], "--to", period["to"]]
    statement = json.loads(tamga("billing", "statement", INN, *flags, "--json").stdout)
    assert statement == api.get(f"/api/v1/accounts/{INN}/statement", **period).json
    assert statement["closing"] == 525_50
    assert "closing balance         525.50" in tamga("billing", "statement", INN, *flags).stdout

    act = tmp_path / "act.pdf"
    wrote = tamga("billing", "document", "act", INN, *flags, "--output", str(act))
    assert "АС-01234567890123" in wrote.stdout
    from_api = api.get(f"/api/v1/accounts/{INN}/documents/act", **period)
    assert from_api.status_code == 200 and act.read_bytes() == from_api.data
    words = _pdf_text(act)
    assert NAME in words and "525,50" in words

    _refused(
        tamga("billing", "document", "act", INN, *flags, "-o", str(act), check=False), "--force"
    )
    assert act.read_bytes() == from_api.data
    invoice = tmp_path / "pay.pdf"
    tamga("billing", "document", "payment-invoice", INN, "--service", "sochi", "--amount",
          "1000.05", "-o", str(invoice))  # fmt: skip
    assert (
        invoice.read_bytes()
        == api.get(
            f"/api/v1/accounts/{INN}/documents/payment-invoice", service="sochi", amount="1000.05"
        ).data
    )
    assert "1 000,05" in _pdf_text(invoice)
    tamga("billing", "document", "act", INN, "--from", period["to"], "--to", period["to"],
          "-o", str(act), "--force")  # fmt: skip
    assert act.read_bytes() != from_api.data and "АС-" in _pdf_text(act)


def test_termination_and_the_daily_penalty_job(
    tamga: Any, api: Any, runtime: Runtime, tmp_path: Path
) -> None:
    tamga("billing", "open", "--inn", INN, "--name", NAME)
    issued = tamga("billing", "payment-account", INN, "--tariff", "cert:head").stdout
    assert re.search(r"payment account \d{16} for cert:first:01234567890123 \(cert:head\): "
                     r"1510\.00 som, open", issued), issued  # fmt: skip
    assert (
        api.post(
            f"/api/v1/accounts/{INN}/cash-receipts", {"number": "R", "amount": 80_00}
        ).status_code
        == 201
    )

    final = tmp_path / "final.pdf"
    done = tamga("billing", "terminate", INN, "--reason", "Письмо №7", "--debt", "100.00",
                 "--act", str(final))  # fmt: skip
    due = CALENDAR.add_working_days(local_date(datetime.now(UTC)), 5)
    assert f"terminated: refund 80.00 som, debt 100.00 som due {due}" in done.stdout
    words = _pdf_text(final)
    # The refund stays the subscriber's (a move between its own accounts); the debt is new.
    assert NAME in words and "Расторжение договора: Письмо №7" in words
    assert "100,00" in words and "задолженность" in words and "20,00" in words
    again = tamga("billing", "terminate", INN, "--reason", "Письмо №7", "--debt", "100.00")
    assert "already terminated" in again.stdout
    _refused(tamga("billing", "terminate", INN, "--reason", "другое", check=False), "terminated")

    shown = json.loads(tamga("billing", "show", INN, "--json").stdout)
    assert shown["status"] == "terminated" and shown["termination"]["owed"] == 100_00
    _refused(tamga("billing", "payment-account", INN, "--tariff", "cert:head", check=False),
             "terminated")  # fmt: skip
    with runtime.transaction() as session, pytest.raises(billing.AccountTerminated):
        billing.credit(
            session, inn=INN, amount=1, key="late", source="asset:cash", description="late",
            now=datetime.now(UTC), actor="test",
        )  # fmt: skip

    on = str(due + timedelta(days=2))
    first = tamga("billing", "accrue-penalties", "--date", on).stdout
    assert f"2 penalties charged up to {on}, 2.00 som" in first
    assert (
        f"0 penalties charged up to {on}, 0.00 som"
        in tamga("billing", "accrue-penalties", "--date", on).stdout
    )
    assert "owed now 102.00 som" in tamga("billing", "show", INN).stdout
    assert _audit(runtime, "billing.penalty.posted") == 2
    assert _audit(runtime, "billing.account.terminated") == 1
    assert tamga("billing", "check").stdout.strip() == "ledger consistent: 1 accounts checked"


def test_check_finds_a_tampered_balance(tamga: Any, runtime: Runtime) -> None:
    tamga("billing", "open", "--inn", INN, "--name", NAME)
    tamga("billing", "open", "--inn", OTHER, "--name", "ИП Асанов")
    now = datetime.now(UTC)
    with runtime.transaction() as session:
        billing.credit(
            session, inn=INN, amount=300_00, key="c1", source="asset:bank", description="top-up",
            now=now, actor="test",
        )  # fmt: skip
    clean = tamga("billing", "check")
    assert clean.returncode == 0
    assert clean.stdout.strip() == "ledger consistent: 2 accounts checked"

    with runtime.engine.begin() as connection:
        connection.execute(text("UPDATE customer_accounts SET posted = posted + 1"))
    tampered = tamga("billing", "check", check=False)
    assert tampered.returncode == 1
    assert f"drift: account {INN}: posted is 30001, the journal says 30000" in tampered.stdout
    assert f"drift: account {OTHER}: posted is 1, the journal says 0" in tampered.stdout
    assert "ledger drift: 2 found, 2 accounts checked" in tampered.stderr


def test_bad_input_is_one_line_and_writes_nothing(tamga: Any, tmp_path: Path) -> None:
    tamga("billing", "open", "--inn", INN, "--name", NAME)
    output = tmp_path / "doc.pdf"
    refusals = [
        (("billing", "open", "--inn", "123", "--name", "x"), "14-digit INN"),
        (("billing", "open", "--inn", INN, "--name", "Другое имя"), "already has an account"),
        (("billing", "show", OTHER), "no billing account"),
        (("billing", "statement", INN, "--from", "2026-11-31", "--to", "2026-12-01"), "--from"),
        (("billing", "statement", INN, "--from", "2026-12-01", "--to", "2026-11-01"), "--to"),
        (("billing", "document", "invoice", INN, "-o", str(output)), "exactly one"),
        (("billing", "document", "invoice", INN, "--month", "2026-13", "-o", str(output)), "month"),
        (("billing", "document", "invoice", INN, "--month", "2026-11", "-o", str(output)),
         "no reporting services"),
        (("billing", "document", "invoice", INN, "--transaction", "77", "-o", str(output)),
         "nothing to invoice"),
        (("billing", "document", "payment-invoice", INN, "--service", "sochi", "--amount", "1.234",
          "-o", str(output)), "--amount"),
        (("billing", "document", "payment-invoice", INN, "--service", "eds", "--amount", "-1",
          "-o", str(output)), "--amount"),
        (("billing", "payment-account", INN, "--tariff", "report:tax:monthly"), "--tariff"),
        (("billing", "terminate", INN, "--reason", "x", "--debt", "0"), "--debt"),
        (("billing", "terminate", INN, "--reason", "   "), "--reason"),
        (("billing", "accrue-penalties", "--date", "tomorrow"), "--date"),
    ]  # fmt: skip
    for args, words in refusals:
        _refused(tamga(*args, check=False), words)
    assert not output.exists() and list(tmp_path.glob(".doc.pdf.*")) == []
    shown = json.loads(tamga("billing", "show", INN, "--json").stdout)
    assert (shown["status"], shown["posted"], shown["name"]) == ("stopped", 0, NAME)

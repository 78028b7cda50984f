"""``/api/v1/accounts``: the subscriber-facing billing API through the Flask test client, on
SQLite and PostgreSQL — views, money-moving POSTs and their replays, termination, the PDF
documents read back with poppler's pdftotext, authorisation, and the audit rows."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

import billing
from ca.models import Subscriber
from db import AuditEntry
from policies.identifiers import is_payment_account
from policies.tariffs import Revenue
from signing_api.app import create_app
from signing_api.clients import ApiClient, ClientSubscriber, create_client
from signing_api.runtime import Runtime
from tests.ca_fixtures import Clock

pytestmark = [pytest.mark.hsm, pytest.mark.db]

NOW = datetime(2026, 11, 10, 6, 0, tzinfo=UTC)  # 12:00 in Bishkek
INN = "01234567890123"
OTHER = "02234567890123"
NAME = 'ОсОО "Ала-Тоо Консалтинг"'
ROLES = ("officer", "portal", "agency", "commission")


@dataclass
class Api:
    client: FlaskClient
    runtime: Runtime
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return {**found, **(extra or {})}

    def get(self, path: str, role: str | None = "officer", **query: str) -> Any:
        return self.client.get(path, headers=self.headers(role), query_string=query)

    def post(
        self,
        path: str,
        body: Any,
        role: str | None = "officer",
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.client.post(path, json=body, headers=self.headers(role, headers))


@pytest.fixture
def api(runtime: Runtime) -> Api:
    app: Flask = create_app(runtime.config)
    app.extensions["tamga"] = runtime
    clock = Clock(NOW)
    app.extensions["tamga"].clock = clock
    found = Api(app.test_client(), runtime, clock)
    with runtime.transaction() as session:
        for role in ROLES:
            made = create_client(session, name=f"{role} 1", role=role, now=NOW, actor="test")
            found.tokens[role] = made.token
    return found


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = json.loads(response.data)
    assert body["type"] == f"urn:tamga:problem:{slug}", body
    assert body["status"] == status and body["detail"]
    return body


def _fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


def _audit(api: Api, action: str) -> int:
    with api.runtime.transaction() as session:
        return (
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            )
            or 0
        )


def _open(api: Api, inn: str = INN, name: str = NAME) -> dict[str, Any]:
    """Open the account, register the subscriber and put it in portal 1's scope."""
    response = api.post("/api/v1/accounts", {"inn": inn, "name": name})
    assert response.status_code == 201, response.json
    body: dict[str, Any] = response.json
    with api.runtime.transaction() as session:
        session.add(Subscriber(inn=inn, name=name[:64], legal_form="ОсОО", locality="Бишкек",
                               email="office@test.kg", status="active", created_at=NOW,
                               updated_at=NOW))  # fmt: skip
        portal = session.scalars(select(ApiClient).where(ApiClient.name == "portal 1")).one()
        session.add(ClientSubscriber(client_id=portal.id, inn=inn, granted_at=NOW,
                                     granted_by="test"))  # fmt: skip
    return body


def _cash(api: Api, number: str, amount: int, inn: str = INN) -> Any:
    return api.post(f"/api/v1/accounts/{inn}/cash-receipts", {"number": number, "amount": amount})


def _charge(api: Api, amount: int, key: str, kind: Revenue, when: datetime, what: str) -> int:
    with api.runtime.transaction() as session:
        posting = billing.charge(
            session, inn=INN, amount=amount, key=key, revenue_kind=kind, description=what,
            now=when, actor="filing",
        )  # fmt: skip
    return posting.transaction_id


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext is missing: install poppler-utils (make system-packages)")
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        [tool, "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.decode("utf-8").split())


def _pdf(response: Any) -> bytes:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    data: bytes = response.data
    assert data.startswith(b"%PDF-")
    return data


# --- accounts ----------------------------------------------------------------------------------


def test_open_account_is_idempotent_and_checks_its_input(api: Api) -> None:
    created = api.post(
        "/api/v1/accounts", {"inn": INN, "name": f"  {NAME} "}, headers={"Idempotency-Key": "k-1"}
    )
    assert created.status_code == 201 and created.headers["Location"] == f"/api/v1/accounts/{INN}"
    assert created.headers["Idempotency-Key"] == "k-1"
    body = created.json
    assert {k: body[k] for k in ("inn", "name", "posted", "held", "available", "status")} == {
        "inn": INN, "name": NAME, "posted": 0, "held": 0, "available": 0, "status": "stopped",
    }  # fmt: skip
    again = api.post("/api/v1/accounts", {"inn": INN, "name": NAME})
    assert again.status_code == 200 and again.json == body
    _problem(api.post("/api/v1/accounts", {"inn": INN, "name": "ИП Другой"}), 409, "conflict")

    bad = _problem(
        api.post("/api/v1/accounts", {"inn": "1234", "name": ""}), 422, "validation-failed"
    )
    assert _fields(bad) == {"inn", "name"}
    for body_ in ({"inn": 1234567890123, "name": "x"}, {"inn": "0123456789012٣", "name": "x"},
                  {"inn": INN, "name": "x" * 301}, {"inn": INN}, {"name": "x"}):  # fmt: skip
        _problem(api.post("/api/v1/accounts", body_), 422, "validation-failed")
    for raw in (b"not json", b"[1, 2]", b""):
        response = api.client.post(
            "/api/v1/accounts", data=raw, headers=api.headers("officer"),
            content_type="application/json",
        )  # fmt: skip
        _problem(response, 400, "bad-request")
    _problem(
        api.post("/api/v1/accounts", {"inn": OTHER, "name": "x"}, headers={"Idempotency-Key": ""}),
        400,
        "bad-request",
    )
    for role in ("portal", "agency", "commission"):
        _problem(
            api.post("/api/v1/accounts", {"inn": OTHER, "name": "x"}, role=role), 403, "forbidden"
        )
    _problem(
        api.post("/api/v1/accounts", {"inn": OTHER, "name": "x"}, role=None), 401, "unauthorized"
    )
    assert _audit(api, "billing.account.opened") == 1
    _problem(api.get(f"/api/v1/accounts/{OTHER}"), 404, "not-found")  # nothing half-written


def test_account_view_and_who_may_read_it(api: Api) -> None:
    _open(api)
    path = f"/api/v1/accounts/{INN}"
    for role in ("officer", "portal"):
        response = api.get(path, role=role)
        assert response.status_code == 200 and response.json["inn"] == INN
    for role in ("agency", "commission"):
        _problem(api.get(path, role=role), 403, "forbidden")
    _problem(api.get(path, role=None), 401, "unauthorized")
    # Another portal, whose scope does not hold this subscriber, cannot even see that it exists.
    with api.runtime.transaction() as session:
        other = create_client(session, name="portal 2", role="portal", now=NOW, actor="test")
    for suffix in ("", "/receipts", "/documents/act?from=2026-11-01&to=2026-11-30"):
        hidden = api.client.get(path + suffix, headers={"Authorization": f"Bearer {other.token}"})
        _problem(hidden, 404, "not-found")
    _problem(api.get(f"/api/v1/accounts/{OTHER}"), 404, "not-found")
    _problem(api.get("/api/v1/accounts/12345"), 404, "not-found")
    _problem(api.get("/api/v1/accounts/0123456789012x"), 404, "not-found")

    assert _cash(api, "R-1", 500_00).status_code == 201
    view = api.get(path).json
    assert (view["posted"], view["held"], view["available"]) == (500_00, 0, 500_00)
    assert view["status"] == "active" and view["may_suspend"] is False
    assert view["last_payment_at"] == "2026-11-10T06:00:00Z" and view["termination"] is None
    api.clock.now = NOW + timedelta(days=31)  # §5.3: more than 30 days without a payment
    assert api.get(path).json["may_suspend"] is True


# --- cash receipts and the receipts list -------------------------------------------------------


def test_cash_receipts_are_recorded_once(api: Api) -> None:
    _open(api)
    first = _cash(api, "КО-17", 1234_56)
    assert first.status_code == 201, first.json
    receipt = first.json
    assert (receipt["amount"], receipt["channel"], receipt["provider"], receipt["service"]) == (
        1234_56, "cash", "", "sochi",
    )  # fmt: skip
    replay = _cash(api, "КО-17", 1234_56)
    assert replay.status_code == 200 and replay.json == receipt
    _problem(_cash(api, "КО-17", 1000_00), 422, "idempotency-conflict")
    for amount in (0, -100, 1.5, "100", True, None, 10**14):
        body = _problem(_cash(api, "КО-18", amount), 422, "validation-failed")  # type: ignore[arg-type]
        assert _fields(body) == {"amount"}
    _problem(_cash(api, "", 100), 422, "validation-failed")
    _problem(_cash(api, "x" * 101, 100), 422, "validation-failed")
    _problem(_cash(api, "R", 100, inn=OTHER), 404, "not-found")
    _problem(
        api.post(f"/api/v1/accounts/{INN}/cash-receipts", {"number": "R9", "amount": 1}, "portal"),
        403,
        "forbidden",
    )
    assert api.get(f"/api/v1/accounts/{INN}").json["posted"] == 1234_56
    assert _audit(api, "billing.credit.posted") == 1


def test_receipts_list_by_bishkek_days(api: Api) -> None:
    _open(api)
    api.clock.now = datetime(2026, 11, 1, 17, 59, tzinfo=UTC)  # 23:59 on 1 November in Bishkek
    _cash(api, "A", 100_00)
    api.clock.now = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)  # 00:00 on 2 November in Bishkek
    _cash(api, "B", 200_00)
    path = f"/api/v1/accounts/{INN}/receipts"
    everything = api.get(path, role="portal").json
    assert [r["external_id"] for r in everything["receipts"]] == ["A", "B"]
    assert everything["total"] == 300_00
    first = everything["receipts"][0]
    assert set(first) >= {"id", "amount", "paid_at", "recorded_at", "channel", "provider"}
    assert [r["external_id"] for r in api.get(path, to="2026-11-01").json["receipts"]] == ["A"]
    assert [r["external_id"] for r in api.get(path, **{"from": "2026-11-02"}).json["receipts"]] == [
        "B"
    ]
    for query in (
        {"from": "2026-13-01"},
        {"to": "01.11.2026"},
        {"from": "2026-11-02", "to": "2026-11-01"},
    ):
        _problem(api.get(path, **query), 422, "validation-failed")
    _problem(api.get(path, role="agency"), 403, "forbidden")
    _problem(api.get(f"/api/v1/accounts/{OTHER}/receipts"), 404, "not-found")


# --- statement ---------------------------------------------------------------------------------


def test_statement_for_a_period(api: Api) -> None:
    _open(api)
    api.clock.now = datetime(2026, 10, 20, 6, 0, tzinfo=UTC)
    _cash(api, "R-1", 1000_00)
    api.clock.now = datetime(2026, 11, 1, 18, 30, tzinfo=UTC)  # 2 November, Bishkek
    _cash(api, "R-2", 500_00)
    _charge(api, 150_00, "report:1", Revenue.REPORTS, datetime(2026, 11, 5, tzinfo=UTC), "Отчет №1")
    _charge(
        api, 100_00, "storage:x", Revenue.STORAGE, datetime(2026, 12, 2, tzinfo=UTC), "Хранение"
    )
    path = f"/api/v1/accounts/{INN}/statement"
    november = api.get(path, role="portal", **{"from": "2026-11-01", "to": "2026-11-30"}).json
    assert (november["opening"], november["closing"]) == (1000_00, 1350_00)
    assert (november["total_in"], november["total_out"]) == (500_00, 150_00)
    assert [(line["amount"], line["balance_after"]) for line in november["lines"]] == [
        (500_00, 1500_00),
        (-150_00, 1350_00),
    ]
    assert november["start"] == "2026-10-31T18:00:00Z" and november["end"] == "2026-11-30T18:00:00Z"
    first_day = api.get(path, **{"from": "2026-11-01", "to": "2026-11-01"}).json
    assert first_day["lines"] == [] and first_day["closing"] == 1000_00
    bad_periods: list[dict[str, str]] = [
        {},
        {"from": "2026-11-01"},
        {"from": "2026-11-31", "to": "2026-12-01"},
        {"from": "2026-11-02", "to": "2026-11-01"},
        {"from": "20261101", "to": "x"},
    ]
    for query in bad_periods:
        _problem(api.get(path, **query), 422, "validation-failed")
    _problem(
        api.get(path, role="commission", **{"from": "2026-11-01", "to": "2026-11-30"}),
        403,
        "forbidden",
    )


# --- payment accounts --------------------------------------------------------------------------


def test_payment_accounts_for_the_first_certificate(api: Api) -> None:
    _open(api)
    path = f"/api/v1/accounts/{INN}/payment-accounts"
    created = api.post(path, {"tariff": "cert:head"})
    assert created.status_code == 201, created.json
    issued = created.json
    assert is_payment_account(issued["number"])
    assert (issued["amount_due"], issued["purpose"], issued["status"]) == (
        1510_00, f"cert:first:{INN}", "open",
    )  # fmt: skip
    again = api.post(path, {"tariff": "cert:head"})
    assert again.status_code == 200 and again.json == issued
    _problem(api.post(path, {"tariff": "cert:accountant"}), 422, "idempotency-conflict")
    other = api.post(path, {"tariff": "cert:rutoken", "purpose": "cert:second"}).json
    assert other["amount_due"] == 1200_00 and other["number"] != issued["number"]
    for body in ({}, {"tariff": "report:tax:monthly"}, {"tariff": "cert:nope"}, {"tariff": 5}):
        body_ = _problem(api.post(path, body), 422, "validation-failed")
        assert "tariff" in _fields(body_)
    _problem(api.post(path, {"tariff": "cert:head"}, role="portal"), 403, "forbidden")
    assert _audit(api, "billing.payment_account.issued") == 2


# --- termination -------------------------------------------------------------------------------


def test_termination_refunds_the_balance_and_blocks_money(api: Api, tmp_path: Path) -> None:
    _open(api)
    _cash(api, "R-1", 500_00)
    path = f"/api/v1/accounts/{INN}/termination"
    _problem(api.post(path, {"reason": "  "}), 422, "validation-failed")
    _problem(api.post(path, {"reason": "x", "debt": -1}), 422, "validation-failed")
    _problem(api.post(path, {"reason": "x"}, role="portal"), 403, "forbidden")
    api.clock.now = NOW + timedelta(days=3)
    done = api.post(path, {"reason": "Письмо о расторжении №12"})
    assert done.status_code == 201, done.json
    ended = done.json
    # The debt falls due 5 Kyrgyz working days after Friday 13th.
    assert (ended["refund"], ended["debt"], ended["debt_due_on"]) == (500_00, 0, "2026-11-20")
    assert (
        ended["final_act"] == f"/api/v1/accounts/{INN}/documents/act?from=2026-11-10&to=2026-11-13"
    )
    assert done.headers["Location"] == ended["final_act"]
    replay = api.post(path, {"reason": "Письмо о расторжении №12"})
    assert replay.status_code == 200 and replay.json == ended
    _problem(api.post(path, {"reason": "другая причина"}), 409, "account-terminated")

    view = api.get(f"/api/v1/accounts/{INN}").json
    assert (view["status"], view["posted"], view["termination"]["refund"]) == (
        "terminated",
        0,
        500_00,
    )
    _problem(_cash(api, "R-2", 100_00), 409, "account-terminated")
    assert _cash(api, "R-1", 500_00).status_code == 200  # a replay of an earlier receipt is fine
    _problem(api.post(f"/api/v1/accounts/{INN}/payment-accounts", {"tariff": "cert:head"}), 409,
             "account-terminated")  # fmt: skip
    with api.runtime.transaction() as session, pytest.raises(billing.AccountTerminated):
        billing.charge(
            session, inn=INN, amount=1, key="report:late", revenue_kind=Revenue.REPORTS,
            description="late", now=api.clock.now, actor="filing",
        )  # fmt: skip

    # The final act: the refund owed is still the subscriber's money, in its favour.
    act = _pdf(api.client.get(ended["final_act"], headers=api.headers("portal")))
    words = _pdf_text(act, tmp_path)
    assert NAME in words and "500,00" in words and "аванс" in words
    assert _audit(api, "billing.account.terminated") == 1


def test_a_debt_after_termination_can_be_paid_in_cash(api: Api) -> None:
    _open(api)
    ended = api.post(f"/api/v1/accounts/{INN}/termination", {"reason": "долг", "debt": 300_00})
    assert ended.status_code == 201 and ended.json["debt"] == 300_00
    assert api.get(f"/api/v1/accounts/{INN}").json["termination"]["owed"] == 300_00
    paid = _cash(api, "D-1", 100_00)
    assert paid.status_code == 201 and paid.json["service"] == "debt"
    _problem(_cash(api, "D-2", 300_00), 409, "account-terminated")  # more than is owed
    assert api.get(f"/api/v1/accounts/{INN}").json["termination"]["owed"] == 200_00
    statement = api.get(
        f"/api/v1/accounts/{INN}/statement", **{"from": "2026-11-10", "to": "2026-11-10"}
    ).json
    assert statement["closing"] == -200_00 and statement["total_out"] == 300_00


# --- documents ---------------------------------------------------------------------------------


def _doc(api: Api, kind: str, role: str = "officer", **query: str) -> Any:
    return api.get(f"/api/v1/accounts/{INN}/documents/{kind}", role=role, **query)


def test_reconciliation_act_matches_the_statement(api: Api, tmp_path: Path) -> None:
    _open(api)
    api.clock.now = datetime(2026, 10, 20, 6, 0, tzinfo=UTC)
    _cash(api, "R-1", 2000_00)
    _charge(api, 150_00, "report:1", Revenue.REPORTS, datetime(2026, 11, 3, tzinfo=UTC), "Отчет 1")
    _charge(api, 325_50, "report:2", Revenue.REPORTS, datetime(2026, 11, 4, tzinfo=UTC), "Отчет 2")
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    statement = api.get(f"/api/v1/accounts/{INN}/statement", **period).json
    assert statement["closing"] == 1524_50
    pdf = _pdf(_doc(api, "act", role="portal", **period))
    words = _pdf_text(pdf, tmp_path)
    assert NAME in words and 'ОсОО "DOS TEK GROUP"' in words
    assert "АС-01234567890123-20261101-20261130" in words
    assert "2 000,00" in words  # opening
    assert "475,50" in words  # charged in the period
    assert "1 524,50" in words  # closing, as in the statement
    assert _pdf(_doc(api, "act", **period)) == pdf  # same request, same bytes
    api.clock.now = NOW + timedelta(days=40)
    assert _pdf(_doc(api, "act", **period)) == pdf  # and on another day too
    for query in ({}, {"from": "2026-11-01"}, {"from": "2026-11-30", "to": "2026-11-01"}):
        _problem(_doc(api, "act", **query), 422, "validation-failed")
    _problem(_doc(api, "act", role="agency", **period), 403, "forbidden")
    _problem(_doc(api, "receipt", **period), 404, "not-found")
    _problem(api.get(f"/api/v1/accounts/{OTHER}/documents/act", **period), 404, "not-found")


def test_certificate_invoice_for_a_paid_payment_account(api: Api, tmp_path: Path) -> None:
    _open(api)
    number = api.post(f"/api/v1/accounts/{INN}/payment-accounts", {"tariff": "cert:head"}).json[
        "number"
    ]
    with api.runtime.transaction() as session:
        billing.record_payment(
            session, channel="cash", provider="", external_id="K-1", account=number,
            amount=1510_00, paid_at=NOW, now=NOW, actor="test",
        )  # fmt: skip
        charged = billing.post_hold(session, key=f"pa:{number}", now=NOW, actor="ca")
    _cash(api, "R-1", 100_00)
    report = _charge(api, 50_00, "report:9", Revenue.REPORTS, NOW, "Отчет")
    pdf = _pdf(_doc(api, "invoice", transaction=str(charged.transaction_id)))
    words = _pdf_text(pdf, tmp_path)
    assert f"СФ-{charged.transaction_id}" in words and "10.11.2026" in words
    assert NAME in words and "Сертификат ЭЦП руководителя" in words and "1 510,00" in words
    assert _pdf(_doc(api, "invoice", transaction=str(charged.transaction_id))) == pdf
    _problem(_doc(api, "invoice", transaction=str(report)), 404, "not-found")
    _problem(_doc(api, "invoice", transaction="999999"), 404, "not-found")
    for query in ({}, {"transaction": "abc"}, {"transaction": "0"},
                  {"transaction": "1", "month": "2026-11"}):  # fmt: skip
        _problem(_doc(api, "invoice", **query), 422, "validation-failed")
    with api.runtime.transaction() as session:
        billing.reverse(
            session, transaction_id=charged.transaction_id, reason="ошибка", now=NOW, actor="t"
        )
    _problem(_doc(api, "invoice", transaction=str(charged.transaction_id)), 404, "not-found")


def test_monthly_invoice_for_reporting_services(api: Api, tmp_path: Path) -> None:
    _open(api)
    _cash(api, "R-1", 5000_00)
    nov = datetime(2026, 11, 12, tzinfo=UTC)
    _charge(api, 50_00, "report:1", Revenue.REPORTS, nov, "Отчет в налоговую службу (месячный)")
    _charge(api, 50_00, "report:2", Revenue.REPORTS, nov, "Отчет в налоговую службу (месячный)")
    wrong = _charge(api, 70_00, "report:3", Revenue.REPORTS, nov, "Ошибочный отчет")
    _charge(api, 100_00, "storage:1", Revenue.STORAGE, nov, "Хранение ЭЦП в облаке (месяц)")
    _charge(api, 99_00, "dispute:1", Revenue.DISPUTES, nov, "Разбор")  # not a reporting service
    _charge(api, 50_00, "report:4", Revenue.REPORTS, datetime(2026, 11, 30, 18, 0, tzinfo=UTC),
            "Декабрьский отчет")  # 1 December in Bishkek  # fmt: skip
    with api.runtime.transaction() as session:
        billing.reverse(session, transaction_id=wrong, reason="ошибка", now=nov, actor="t")
    pdf = _pdf(_doc(api, "invoice", role="portal", month="2026-11"))
    words = _pdf_text(pdf, tmp_path)
    assert f"СФ-{INN}-2026-11" in words and "30.11.2026" in words and NAME in words
    assert "Отчет в налоговую службу (месячный) 2 50,00 100,00" in words
    assert "Хранение ЭЦП в облаке (месяц) 1 100,00 100,00" in words
    assert "Итого 200,00" in words
    assert "Ошибочный" not in words and "Разбор" not in words and "Декабрьский" not in words
    assert _pdf(_doc(api, "invoice", month="2026-11")) == pdf
    assert "Декабрьский" in _pdf_text(_pdf(_doc(api, "invoice", month="2026-12")), tmp_path)
    _problem(_doc(api, "invoice", month="2026-10"), 404, "not-found")
    for month in ("2026-13", "2026-1", "26-11", "2026-11-01", "9999-12", "0000-01"):
        _problem(_doc(api, "invoice", month=month), 422, "validation-failed")


def test_payment_invoice(api: Api, tmp_path: Path) -> None:
    _open(api)
    pdf = _pdf(_doc(api, "payment-invoice", service="sochi", amount="123.45"))
    words = _pdf_text(pdf, tmp_path)
    assert NAME in words and "123,45" in words and "Сто двадцать три сом 45 тыйын" in words
    assert f"ИНН {INN}" in words and "42151410" in words and "1280010015061112" in words
    assert _pdf(_doc(api, "payment-invoice", service="sochi", amount="123.45")) == pdf
    assert "100,50" in _pdf_text(
        _pdf(_doc(api, "payment-invoice", service="eds", amount="100.5")), tmp_path
    )
    number = api.post(f"/api/v1/accounts/{INN}/payment-accounts", {"tariff": "cert:head"}).json[
        "number"
    ]
    eds = _pdf_text(_pdf(_doc(api, "payment-invoice", service="eds", amount="1510")), tmp_path)
    assert number in eds and "1 510,00" in eds
    _problem(_doc(api, "payment-invoice", service="eds", amount="1500"), 422, "validation-failed")
    for query in ({"service": "sochi"}, {"amount": "10"}, {"service": "x", "amount": "10"},
                  {"service": "sochi", "amount": "1.234"}, {"service": "sochi", "amount": "0"},
                  {"service": "sochi", "amount": "-5"}, {"service": "sochi", "amount": "1e3"},
                  {"service": "sochi", "amount": "NaN"}, {"service": "sochi", "amount": "1,50"},
                  {"service": "sochi", "amount": "123456789012"}):  # fmt: skip
        _problem(_doc(api, "payment-invoice", **query), 422, "validation-failed")


# --- the whole story: audit rows and the OpenAPI document --------------------------------------


def test_every_money_event_has_its_audit_row(api: Api) -> None:
    _open(api)
    _open(api, OTHER, "ИП Асанов")
    _cash(api, "R-1", 300_00)
    _cash(api, "R-1", 300_00)  # replay: no second row
    _cash(api, "R-2", 100_00, inn=OTHER)
    number = api.post(f"/api/v1/accounts/{INN}/payment-accounts", {"tariff": "cert:rutoken"}).json[
        "number"
    ]
    with api.runtime.transaction() as session:
        billing.record_payment(
            session, channel="cash", provider="", external_id="K-2", account=number,
            amount=1200_00, paid_at=NOW, now=NOW, actor="test",
        )  # fmt: skip
    _charge(api, 50_00, "report:1", Revenue.REPORTS, NOW, "Отчет")
    _problem(_cash(api, "R-1", 1), 422, "idempotency-conflict")  # refused: no row
    api.post(f"/api/v1/accounts/{INN}/termination", {"reason": "конец", "debt": 10_00})
    expected = {
        "billing.account.opened": 2,
        "billing.credit.posted": 3,
        "billing.payment_account.issued": 1,
        "billing.hold.placed": 1,
        "billing.hold.voided": 1,  # the unused certificate payment, released by termination
        "billing.charge.posted": 1,
        "billing.account.terminated": 1,
    }
    assert {action: _audit(api, action) for action in expected} == expected
    with api.runtime.transaction() as session:
        assert billing.check_balances(session) == (2, [])
        rows = session.execute(
            text("SELECT count(*) FROM payments WHERE inn = :inn"), {"inn": INN}
        ).scalar_one()
    assert rows == 2


def test_openapi_describes_every_billing_route(api: Api) -> None:
    app = create_app(api.runtime.config)
    doc: dict[str, Any] = api.client.get("/openapi.json").get_json()
    routes = {
        rule.rule.replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/accounts")
    }
    assert routes and routes <= set(doc["paths"])
    for path in routes:
        for method, operation in doc["paths"][path].items():
            assert operation["security"] == [{"bearer": []}], (path, method)
            assert "401" in operation["responses"] and "403" in operation["responses"]

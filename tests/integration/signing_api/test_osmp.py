"""The OSMP/QIWI provider protocol through the Flask test client, on SQLite and PostgreSQL.

Every result code, replays, EDS payments through a 16-digit payment account, the allow-lists
(policy and ``TAMGA_OSMP_ALLOW``), crashes between the journal write and the answer, and a real
gunicorn receiving the same ``pay`` many times at once.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

import billing
from billing.models import LedgerTransaction, Payment
from db import AuditEntry, make_engine, make_session_factory
from policies.providers import (
    PROVIDERS,
    TXN_DATE_FUTURE,
    TXN_DATE_PAST,
    Provider,
    provider_allows,
)
from signing_api.app import create_app
from signing_api.config import Config, ConfigError
from signing_api.runtime import Runtime
from signing_api.web.billing import osmp
from tests.e2e.test_serve import server  # noqa: F401 - the real-gunicorn fixture

pytestmark = [pytest.mark.hsm, pytest.mark.db]

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
INN = "01234567890123"
NAME = 'ОсОО "Ала-Тоо & <Сыновья>"'
GONE = "02234567890123"  # terminated
UNKNOWN = "09999999999999"
DATE = "20261102150000"  # 15:00 in Bishkek = 09:00 UTC


@dataclass(frozen=True)
class Answer:
    """A parsed ``<response>``."""

    result: int
    txn_id: str | None
    prv_txn: int | None
    sum: str | None
    name: str | None
    comment: str
    raw: bytes


def _parse(response: TestResponse | bytes) -> Answer:
    if isinstance(response, TestResponse):
        assert response.status_code == 200, response.data
        assert response.content_type == "text/xml; charset=utf-8"
        raw = response.data
    else:
        raw = response
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(raw)  # noqa: S314 - our own server's answer
    assert root.tag == "response"
    field = root.find("fields/field1")
    if field is not None:
        assert field.get("name") == "name"
    prv_txn = root.findtext("prv_txn")
    return Answer(
        result=int(root.findtext("result") or "-1"),
        txn_id=root.findtext("osmp_txn_id"),
        prv_txn=int(prv_txn) if prv_txn else None,
        sum=root.findtext("sum"),
        name=field.text if field is not None else None,
        comment=root.findtext("comment") or "",
        raw=raw,
    )


def _app(runtime: Runtime) -> Flask:
    app = create_app(runtime.config)
    app.extensions["tamga"] = runtime
    return app


@pytest.fixture
def app(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.delenv("TAMGA_OSMP_ALLOW", raising=False)
    runtime.clock = lambda: NOW  # txn_date must be near now (policies.providers)
    with runtime.transaction() as s:
        billing.open_account(s, inn=INN, name=NAME, now=NOW, actor="test")
        billing.open_account(s, inn=GONE, name="ИП Закрыт", now=NOW, actor="test")
        billing.terminate(s, inn=GONE, reason="test", now=NOW, actor="test")
    return _app(runtime)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _call(
    client: FlaskClient,
    provider: str = "quickpay",
    *,
    post: bool = False,
    remote: str = "127.0.0.1",
    params: dict[str, str] | None = None,
    **fields: str,
) -> TestResponse:
    path = f"/payments/osmp/{provider}"
    params = {**(params or {}), **fields}
    environ = {"REMOTE_ADDR": remote}
    if post:
        return client.post(path, data=params, environ_base=environ)
    return client.get(path, query_string=params, environ_base=environ)


def _pay(client: FlaskClient, txn_id: str, account: str, amount: str, **kw: Any) -> Answer:
    return _parse(
        _call(
            client, command="pay", txn_id=txn_id, account=account, sum=amount, txn_date=DATE, **kw
        )
    )


def _check(client: FlaskClient, account: str, **kw: Any) -> Answer:
    return _parse(_call(client, command="check", txn_id="1", account=account, **kw))


def _written(runtime: Runtime) -> tuple[int, int, int]:
    """Rows in the journal, the receipts and the audit trail."""
    with runtime.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
            s.scalar(select(func.count()).select_from(Payment)) or 0,
            s.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        )


def _posted(runtime: Runtime, inn: str = INN) -> tuple[int, int]:
    with runtime.transaction() as s:
        bal = billing.balance(s, inn)
        return bal.posted, bal.held


def _problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = json.loads(response.data)
    assert body["status"] == status and body["type"].startswith("urn:tamga:problem:")
    return body


# --- check -------------------------------------------------------------------------------------


@pytest.mark.parametrize("post", [False, True], ids=["GET", "POST"])
def test_check_names_the_subscriber_and_writes_nothing(
    client: FlaskClient, runtime: Runtime, post: bool
) -> None:
    before = _written(runtime)
    answer = _parse(
        _call(client, post=post, command="check", txn_id="1001", account=INN, sum="150.00")
    )
    assert (answer.result, answer.txn_id, answer.name) == (0, "1001", NAME)
    assert answer.prv_txn is None and answer.sum is None
    assert b"&amp;" in answer.raw and b"&lt;" in answer.raw  # escaped, not concatenated
    assert _written(runtime) == before
    assert _posted(runtime) == (0, 0)


def test_check_refusals(client: FlaskClient, runtime: Runtime) -> None:
    before = _written(runtime)
    assert _check(client, "123").result == 4
    assert _check(client, UNKNOWN).result == 5
    assert _check(client, GONE).result == 79
    assert _check(client, INN, sum="0.99").result == 241
    assert _check(client, INN, sum="100000.01").result == 242
    assert _check(client, INN, sum="1e3").result == 300
    assert _written(runtime) == before


# --- pay ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("post", [False, True], ids=["GET", "POST"])
def test_pay_credits_once_and_a_replay_answers_the_first_receipt(
    client: FlaskClient, runtime: Runtime, post: bool
) -> None:
    first = _pay(client, "20261102000001", INN, "150.5", post=post)
    assert (first.result, first.txn_id, first.sum) == (0, "20261102000001", "150.50")
    assert first.prv_txn is not None
    assert _posted(runtime) == (150_50, 0)
    written = _written(runtime)

    again = _pay(client, "20261102000001", INN, "150.50", post=post)
    assert (again.result, again.prv_txn, again.sum) == (0, first.prv_txn, "150.50")
    assert _written(runtime) == written

    # The same txn_id with another sum or another account: refused, nothing written.
    assert _pay(client, "20261102000001", INN, "150.51", post=post).result == 300
    with runtime.transaction() as s:
        billing.open_account(s, inn="03234567890123", name="ИП Третий", now=NOW, actor="test")
    written = _written(runtime)
    assert _pay(client, "20261102000001", "03234567890123", "150.50", post=post).result == 300
    assert _written(runtime) == written
    assert _posted(runtime) == (150_50, 0)

    # Idempotency is per (provider, txn_id): another provider's 20261102000001 is another payment.
    other = _pay(client, "20261102000001", INN, "10", provider="pay24", post=post)
    assert other.result == 0 and other.prv_txn != first.prv_txn
    assert _posted(runtime) == (160_50, 0)


def test_pay_records_receipt_and_audit(client: FlaskClient, runtime: Runtime) -> None:
    answer = _pay(client, "77", INN, "1000", provider="odengi")
    assert answer.result == 0
    with runtime.transaction() as s:
        row = s.get_one(Payment, answer.prv_txn)
        assert (row.channel, row.provider, row.external_id, row.account) == (
            "osmp",
            "odengi",
            "77",
            INN,
        )
        assert (row.amount, row.service, row.inn) == (1000_00, "sochi", INN)
        assert row.paid_at == NOW  # txn_date is Bishkek time (UTC+6)
        credited = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "billing.credit.posted")
        ).one()
        assert credited.actor == "osmp:odengi"
        assert credited.details_dict()["amount"] == 1000_00


def test_a_replay_after_termination_still_answers_the_first_receipt(
    client: FlaskClient, runtime: Runtime
) -> None:
    first = _pay(client, "88", INN, "40.00")
    with runtime.transaction() as s:
        billing.terminate(s, inn=INN, reason="test", now=NOW, actor="test")
    written = _written(runtime)
    replay = _pay(client, "88", INN, "40.00")
    assert (replay.result, replay.prv_txn, replay.sum) == (0, first.prv_txn, "40.00")
    assert _pay(client, "89", INN, "40.00").result == 79
    assert _check(client, INN).result == 79
    assert _written(runtime) == written


BAD_PAYS: list[tuple[str, dict[str, str], int]] = [
    ("no command", {"command": ""}, 300),
    ("unknown command", {"command": "refund"}, 300),
    ("txn_id letters", {"txn_id": "12a"}, 300),
    ("txn_id empty", {"txn_id": ""}, 300),
    ("txn_id negative", {"txn_id": "-5"}, 300),
    ("txn_id 21 digits", {"txn_id": "1" * 21}, 300),
    ("txn_id Unicode digits", {"txn_id": "١٢٣"}, 300),
    ("sum missing", {"sum": ""}, 300),
    ("sum negative", {"sum": "-5.00"}, 300),
    ("sum exponent", {"sum": "1e3"}, 300),
    ("sum three decimals", {"sum": "10.001"}, 300),
    ("sum comma", {"sum": "10,50"}, 300),
    ("sum spaces", {"sum": " 10"}, 300),
    ("sum NaN", {"sum": "NaN"}, 300),
    ("sum zero", {"sum": "0.00"}, 241),
    ("sum below the minimum", {"sum": "0.99"}, 241),
    ("sum above the maximum", {"sum": "100000.01"}, 242),
    ("sum far too large", {"sum": "999999999.99"}, 242),
    ("date missing", {"txn_date": ""}, 300),
    ("date with dashes", {"txn_date": "2026-11-02 15:00"}, 300),
    ("date month 13", {"txn_date": "20261302150000"}, 300),
    ("date in 2999", {"txn_date": "29991231000000"}, 300),
    ("date in 1900", {"txn_date": "19000101000000"}, 300),
    ("date 31 days back", {"txn_date": "20261002150000"}, 300),
    ("date 2 days ahead", {"txn_date": "20261104150000"}, 300),
    ("account short", {"account": "0123456789012"}, 4),
    ("account letters", {"account": "0123456789012a"}, 4),
    ("payment account bad check digit", {"account": "1234567890123450"}, 4),
    ("account unknown", {"account": UNKNOWN}, 5),
    ("payment account unknown", {"account": "1234567890123452"}, 5),
    ("account terminated", {"account": GONE}, 79),
]


def test_bad_pays_get_their_code_and_write_nothing(client: FlaskClient, runtime: Runtime) -> None:
    before = _written(runtime)
    for label, change, code in BAD_PAYS:
        params = {"command": "pay", "txn_id": "500", "account": INN, "sum": "100.00"}
        params["txn_date"] = DATE
        params.update(change)
        answer = _parse(_call(client, "megapay", params=params))  # MegaPay may pay both services
        assert answer.result == code, (label, answer)
        assert answer.prv_txn is None, label
        valid_txn_id = re.fullmatch("[0-9]{1,20}", params["txn_id"]) is not None
        assert answer.txn_id == (params["txn_id"] if valid_txn_id else ""), label
    # A missing parameter is a malformed one too.
    assert _parse(_call(client, command="pay", txn_id="501", account=INN)).result == 300
    assert _written(runtime) == before
    assert _posted(runtime) == (0, 0)
    # The refused txn_id stays free: the corrected request is accepted.
    assert _pay(client, "500", INN, "100.00").result == 0


# --- EDS payment: a 16-digit payment account ----------------------------------------------------


def _payment_account(runtime: Runtime, amount_due: int = 1510_00) -> str:
    with runtime.transaction() as s:
        return billing.issue_payment_account(
            s, inn=INN, purpose=f"cert:first:{INN}", tariff="cert:head", amount_due=amount_due,
            now=NOW, actor="test",
        ).number  # fmt: skip


def test_txn_date_window_is_policy_around_the_runtime_clock(
    client: FlaskClient, runtime: Runtime
) -> None:
    """30 days back and one day ahead of now (policies.providers) are the edges; beyond, 300."""
    for txn_id, moment, paid in (
        ("601", NOW - TXN_DATE_PAST, True),
        ("602", NOW + TXN_DATE_FUTURE, True),
        ("603", NOW - TXN_DATE_PAST - timedelta(seconds=1), False),
        ("604", NOW + TXN_DATE_FUTURE + timedelta(seconds=1), False),
    ):
        local = moment.astimezone(ZoneInfo("Asia/Bishkek")).strftime("%Y%m%d%H%M%S")
        answer = _parse(
            _call(client, command="pay", txn_id=txn_id, account=INN, sum="10.00", txn_date=local)
        )
        assert (answer.result == 0) is paid, (txn_id, answer)
        if not paid:
            assert answer.result == 300 and "txn_date" in answer.comment
    assert _posted(runtime)[0] == 2000


def test_parameters_in_both_the_query_and_the_body_are_refused(
    client: FlaskClient, runtime: Runtime
) -> None:
    """The attack: POST ?sum=5 with sum=5000 in the form credited 5 (the query string won).
    One source per request: both at once is refused with result 300, nothing credited."""
    before = _written(runtime)
    form = {"command": "pay", "txn_id": "700", "account": INN, "sum": "5000.00", "txn_date": DATE}
    answer = client.post(
        "/payments/osmp/quickpay?sum=5.00",
        data=form,
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    parsed = _parse(answer)
    assert parsed.result == 300 and "query string or the body" in parsed.comment
    assert _written(runtime) == before
    # Either source alone works: the form, or a POST carrying the query string only.
    assert _parse(_call(client, post=True, **{**form, "sum": "50.00"})).result == 0
    query = {**form, "txn_id": "701", "sum": "60.00"}
    alone = client.post(
        "/payments/osmp/quickpay", query_string=query, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert _parse(alone).result == 0
    assert _posted(runtime)[0] == 11000


def test_eds_payment_through_a_payment_account(client: FlaskClient, runtime: Runtime) -> None:
    number = _payment_account(runtime)
    before = _written(runtime)
    # QuickPay may not pay the "EDS payment" service (policy); MegaPay may.
    assert _check(client, number, provider="quickpay").result == 7
    assert _pay(client, "900", number, "1510.00", provider="quickpay").result == 7
    check = _check(client, number, provider="megapay", sum="1510.00")
    assert (check.result, check.name) == (0, NAME)
    assert _check(client, number, provider="megapay", sum="1500.00").result == 241
    assert _check(client, number, provider="megapay", sum="1520.00").result == 242
    assert _pay(client, "900", number, "1000.00", provider="megapay").result == 241
    assert _pay(client, "900", number, "1600.00", provider="megapay").result == 242
    assert _written(runtime) == before

    paid = _pay(client, "900", number, "1510.00", provider="megapay")
    assert (paid.result, paid.sum) == (0, "1510.00")
    assert _posted(runtime) == (1510_00, 1510_00)  # held for the certificate at once
    replay = _pay(client, "900", number, "1510.00", provider="megapay")
    assert (replay.result, replay.prv_txn) == (0, paid.prv_txn)
    assert _posted(runtime) == (1510_00, 1510_00)
    # The account is paid: no second payment, and check says so.
    assert _check(client, number, provider="megapay").result == 7
    assert _pay(client, "901", number, "1510.00", provider="megapay").result == 7
    with runtime.transaction() as s:
        assert s.get_one(Payment, paid.prv_txn).service == "eds"


# --- HTTP-level refusals ------------------------------------------------------------------------


def test_unknown_provider_is_404(client: FlaskClient, runtime: Runtime) -> None:
    before = _written(runtime)
    body = _problem(_call(client, "qiwi", command="check", txn_id="1", account=INN), 404)
    assert body["type"] == "urn:tamga:problem:not-found"
    _problem(client.post("/payments/osmp/", data={"command": "check"}), 404)
    assert _written(runtime) == before


def _refusals(runtime: Runtime) -> list[AuditEntry]:
    with runtime.transaction() as s:
        return list(
            s.scalars(select(AuditEntry).where(AuditEntry.action == "billing.osmp.refused"))
        )


def test_address_outside_the_allow_list_is_refused_and_audited(
    client: FlaskClient, runtime: Runtime
) -> None:
    response = _call(
        client, "megapay", remote="10.9.9.9", command="pay", txn_id="5", account=INN,
        sum="100.00", txn_date=DATE,
    )  # fmt: skip
    body = _problem(response, 403)
    assert body["type"] == "urn:tamga:problem:forbidden"
    assert _posted(runtime) == (0, 0)
    [entry] = _refusals(runtime)
    assert (entry.actor, entry.outcome, entry.object) == ("ip:10.9.9.9", "refused", "osmp:megapay")
    details = entry.details_dict()  # counted per address like failed logins (web/failures.py)
    assert details["address"] == "10.9.9.9" and details["count"] == 1
    assert details["reasons"] == [{"reason": "outside the allow-list", "count": 1}]
    # Loopback (the default allow-list), over IPv6 and as an IPv4-mapped address, is admitted.
    assert _check(client, INN, remote="::1").result == 0
    assert _check(client, INN, remote="::ffff:127.0.0.1").result == 0


def test_allow_lists_from_the_environment(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with runtime.transaction() as s:
        billing.open_account(s, inn=INN, name=NAME, now=NOW, actor="test")
    monkeypatch.setenv("TAMGA_OSMP_ALLOW", " megapay = 10.9.9.0/24 , 192.0.2.7 ; elsom= ")
    client = _app(runtime).test_client()
    assert _check(client, INN, provider="megapay", remote="10.9.9.9").result == 0
    assert _check(client, INN, provider="megapay", remote="192.0.2.7").result == 0
    _problem(_call(client, "megapay", command="check", txn_id="1", account=INN), 403)
    _problem(_call(client, "elsom", command="check", txn_id="1", account=INN), 403)
    assert _check(client, INN, provider="pay24").result == 0  # not overridden: loopback
    _problem(_call(client, "pay24", remote="10.9.9.9", command="check", txn_id="1"), 403)
    assert len(_refusals(runtime)) == 3

    for wrong in (
        "qiwi=10.0.0.1",
        "megapay",
        "megapay=10.0.0.300",
        "megapay=10.0.0.1;megapay=10.0.0.2",
    ):
        monkeypatch.setenv("TAMGA_OSMP_ALLOW", wrong)
        with pytest.raises(ConfigError, match="TAMGA_OSMP_ALLOW"):
            create_app(runtime.config)


# --- temporary errors and crashes ---------------------------------------------------------------


def test_database_unavailable_is_a_temporary_error(runtime: Runtime) -> None:
    config = Config(
        **{**runtime.config.__dict__, "database_url": "postgresql+psycopg://x:pw@127.0.0.1:1/none"}
    )
    client = _app(Runtime(config, clock=lambda: NOW)).test_client()
    check = _check(client, INN)
    assert (check.result, check.txn_id) == (1, "1")
    pay = _pay(client, "42", INN, "100.00")
    assert (pay.result, pay.txn_id, pay.prv_txn) == (1, "42", None)
    assert "pw" not in pay.comment and "127.0.0.1" not in pay.comment


def test_a_crash_after_the_commit_loses_nothing_and_credits_once(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_render = osmp._render
    calls = {"n": 0}

    def render_fails_once(reply: osmp.Reply) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the worker died before answering")
        return real_render(reply)

    monkeypatch.setattr(osmp, "_render", render_fails_once)
    response = _call(
        client, command="pay", txn_id="31337", account=INN, sum="250.00", txn_date=DATE
    )
    assert response.status_code == 500  # the provider got no answer and will retry
    assert _posted(runtime) == (250_00, 0)  # the payment was committed before the crash
    written = _written(runtime)

    retry = _pay(client, "31337", INN, "250.00")
    with runtime.transaction() as s:
        receipt = s.scalars(select(Payment).where(Payment.external_id == "31337")).one()
    assert (retry.result, retry.prv_txn, retry.sum) == (0, receipt.id, "250.00")
    assert _posted(runtime) == (250_00, 0)
    assert _written(runtime) == written


def test_a_crash_before_the_commit_rolls_everything_back(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _written(runtime)

    def crash(receipt: billing.Receipt) -> None:
        raise RuntimeError("the worker died inside the transaction")

    monkeypatch.setattr(osmp, "_after_record", crash)
    crashed = _pay(client, "4242", INN, "300.00")
    assert (crashed.result, crashed.prv_txn) == (1, None)  # temporary: the provider retries
    assert _written(runtime) == before
    assert _posted(runtime) == (0, 0)

    monkeypatch.undo()
    retry = _pay(client, "4242", INN, "300.00")
    assert (retry.result, retry.sum) == (0, "300.00")
    assert _pay(client, "4242", INN, "300.00").prv_txn == retry.prv_txn
    assert _posted(runtime) == (300_00, 0)
    with runtime.transaction() as s:
        assert billing.check_balances(s)[1] == []


# --- a real gunicorn ----------------------------------------------------------------------------


# A real server reads the real clock: txn_date must be near it (one value for the whole run, so
# that a repeated pay is the same request).
LIVE_DATE = datetime.now(ZoneInfo("Asia/Bishkek")).strftime("%Y%m%d%H%M%S")


def _http_pay(base: str, txn_id: str, amount: str) -> Answer:
    """Pay as a provider does: retry while the answer is 1 (temporary error)."""
    query = urllib.parse.urlencode(
        {"command": "pay", "txn_id": txn_id, "account": INN, "sum": amount, "txn_date": LIVE_DATE}
    )
    for _ in range(20):
        with urllib.request.urlopen(  # noqa: S310 - our own test server
            f"{base}/payments/osmp/pay24?{query}", timeout=60
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
            answer = _parse(response.read())
        if answer.result != 1:
            return answer
        time.sleep(0.2)
    return answer


@pytest.fixture
def served_account(server: tuple[str, Path, str]) -> Iterator[tuple[str, Session]]:  # noqa: F811
    base, _home, database_url = server
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        with factory.begin() as s:
            billing.open_account(s, inn=INN, name=NAME, now=NOW, actor="test")
        with factory() as session:
            yield base, session
    finally:
        engine.dispose()


@pytest.mark.slow
def test_gunicorn_credits_a_repeated_pay_once(served_account: tuple[str, Session]) -> None:
    base, session = served_account
    jobs = [("777", "10.00")] * 20 + [(str(1000 + i), f"{i + 1}.25") for i in range(20)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        answers = list(pool.map(lambda job: _http_pay(base, *job), jobs))
    assert all(a.result == 0 for a in answers), [a for a in answers if a.result != 0]
    repeated = {a.prv_txn for a in answers[:20]}
    assert len(repeated) == 1 and all(a.sum == "10.00" for a in answers[:20])
    distinct = {a.prv_txn for a in answers[20:]}
    assert len(distinct) == 20 and not distinct & repeated
    expected = 10_00 + sum((i + 1) * 100 + 25 for i in range(20))
    with session.begin():
        assert billing.balance(session, INN).posted == expected
        assert session.scalar(select(func.count()).select_from(Payment)) == 21
        assert billing.check_balances(session)[1] == []


# --- the policy data ----------------------------------------------------------------------------


def test_providers_policy() -> None:
    assert set(PROVIDERS) == {
        "quickpay", "pay24", "onoi", "umai", "mobilnye-seti", "odengi", "megapay", "balance",
        "elsom",
    }  # fmt: skip
    assert {c for c, p in PROVIDERS.items() if p.may_pay("eds")} == {"megapay"}
    assert all(p.may_pay("sochi") for p in PROVIDERS.values())
    megapay = PROVIDERS["megapay"]
    assert provider_allows(megapay, "127.0.0.1") and provider_allows(megapay, "::1")
    assert not provider_allows(megapay, "10.0.0.1") and not provider_allows(megapay, "bogus")
    wide = Provider("x", "X", allowed_ips=("10.1.2.0/24", "2001:db8::/32"))
    assert provider_allows(wide, "10.1.2.200") and provider_allows(wide, "::ffff:10.1.2.9")
    assert provider_allows(wide, "2001:db8::5") and not provider_allows(wide, "10.1.3.1")
    bads: list[dict[str, Any]] = [
        {"code": "bad code"},
        {"services": frozenset({"loans"})},
        {"services": frozenset()},
        {"min_sum": 0},
        {"min_sum": 10, "max_sum": 5},
        {"allowed_ips": ("10.1.2.1/24",)},  # host bits set
    ]
    for bad in bads:
        with pytest.raises(ValueError):
            Provider(**{"code": "x", "name": "X", **bad})

"""Twenty reports completed at once on one subscriber with money for ten (PostgreSQL).

Each request is the real HTTP route (a Flask test client per thread, one shared runtime: a
gunicorn worker's threads would share it the same way), each thread posts the accountant's
RuToken CMS that completes its report. Exactly ten are charged and queued, ten wait for
payment with no money moved, the month's storage fee is charged once, the balance never goes
below zero while they run and the ledger adds up afterwards.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import billing
import filing
from billing.models import LedgerTransaction
from tests.ca_fixtures import CaApi
from tests.filing_fixtures import INN, Company, balance, file
from tests.integration.filing.test_reports import REPORT, _drain

pytestmark = [pytest.mark.hsm, pytest.mark.db]

N = 20


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_twenty_completions_with_money_for_ten(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    _drain(ca_api)  # leaves half a report; the storage fee is then paid by the first charge
    reports: list[dict[str, Any]] = []
    cms: list[bytes] = []
    for i in range(N):
        document = f"<report n='{i}'/>".encode()
        filed = file(ca_api, document)
        assert filed.status_code == 201, filed.json
        head = company.sign_cloud(filed.json, document)
        assert head.status_code == 201, head.json
        reports.append(filed.json)
        cms.append(company.accountant_signer.cms(document, tmp_path))
    from datetime import date

    from policies.tariffs import TARIFFS

    storage = TARIFFS.price("storage:monthly", date(2026, 11, 23)).price
    ca_api.pay(INN, 10 * REPORT + storage - REPORT // 2)
    assert balance(ca_api) == 10 * REPORT + storage

    app = ca_api.client.application
    start, lowest, errors = threading.Barrier(N + 1), [balance(ca_api)], []
    done = threading.Event()

    def complete(i: int) -> None:
        client = app.test_client()
        headers = ca_api.headers("portal")
        start.wait()
        try:
            import base64

            answer = client.post(
                f"/api/v1/reports/{reports[i]['id']}/signatures",
                json={"cms": base64.b64encode(cms[i]).decode()},
                headers=headers,
            )
            if answer.status_code != 201:
                errors.append(answer.json)
        except Exception as ex:  # a thread's failure must fail the test
            errors.append(repr(ex))

    def sample() -> None:
        while not done.is_set():
            lowest.append(balance(ca_api))

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(N)]
    watcher = threading.Thread(target=sample)
    for t in threads:
        t.start()
    watcher.start()
    start.wait()
    for t in threads:
        t.join(120)
    done.set()
    watcher.join()
    assert not errors, errors
    assert min(lowest) >= 0

    with ca_api.runtime.transaction() as session:
        statuses = [session.get_one(filing.Report, r["id"]).delivery_status for r in reports]
        assert statuses.count("queued") == 10 and statuses.count("awaiting_payment") == 10
        charged = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.idempotency_key.like("report:%"))
        )
        month_fees = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.idempotency_key.like(f"storage:{INN}:%"))
        )
        assert (charged, month_fees) == (10, 1)
        assert billing.balance(session, INN).available == 0
        assert billing.check_balances(session)[1] == []
        # The waiting ones are the later completions' peers: none was charged.
        for report in reports:
            row = session.get_one(filing.Report, report["id"])
            assert (row.charge_txn is None) == (row.delivery_status == "awaiting_payment")

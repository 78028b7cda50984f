"""A burst of bad-token requests against real gunicorn (issue #12, finding 5).

Before: 400 requests with a forged token in 1.5 s appended 400 hash-chained journal rows, and
each one a database write serialised on the journal's head row. Now the address is answered 429
after ``TAMGA_LIMIT_AUTH_FAILURES`` failures (per worker) and the failures are journalled as
counts: a row when an address first fails in an interval, one more when the interval closes
(``web/failures.py``). A good client at another address is not affected.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serving import free_port, tamga_serve
from tests.tamga_fixtures import TAMGA, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

BURST = 400
WORKERS = 2
FAILURES_PER_WORKER = 10  # TAMGA_LIMIT_AUTH_FAILURES' default, 10/minute
THREADS = 4  # per worker: requests already past the check when the limit fills still count
PATH = "/api/v1/subscribers"


@dataclass
class Served:
    port: int
    home: Path
    token: str
    proc: subprocess.Popen[bytes]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    home = tmp_path / "home"
    database_url = f"sqlite:///{home / 'tamga.db'}"
    env = tamga_env(home, database_url)
    subprocess.run([TAMGA, "init"], env=env, check=True, capture_output=True, timeout=120)
    created = subprocess.run(
        [TAMGA, "clients", "create", "--name", "officer", "--role", "officer"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    token = created.stdout.strip().splitlines()[-1]
    port = free_port()
    env = tamga_env(home, database_url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS=str(WORKERS))
    with tamga_serve(env, port, tmp_path / "serve.log") as proc:
        yield Served(port, home, token, proc)


def _request(port: int, token: str, source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request("GET", PATH, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def _burst(port: int, count: int, threads: int = 8) -> Counter[int]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def run(n: int) -> None:
        for i in range(n):
            status, _, _ = _request(port, f"tmg_forged_{threading.get_ident()}_{i}")
            with lock:
                statuses[status] += 1

    workers = [threading.Thread(target=run, args=(count // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


def _failure_rows(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "tamga.db") as db:
        rows = db.execute(
            "SELECT details FROM audit_journal WHERE action = 'login.failed' ORDER BY sequence"
        ).fetchall()
    return [json.loads(details) for (details,) in rows]


def test_a_bad_token_burst_is_limited_and_journalled_as_counts(served: Served) -> None:
    started = time.monotonic()
    statuses = _burst(served.port, BURST)
    took = time.monotonic() - started
    during = _failure_rows(served.home)
    print(f"{BURST} bad-token requests in {took:.2f} s: {dict(statuses)}; rows: {len(during)}")
    assert sum(statuses.values()) == BURST
    assert set(statuses) == {401, 429}, statuses
    assert statuses[401] <= WORKERS * (FAILURES_PER_WORKER + THREADS - 1)
    assert len(during) <= WORKERS  # each worker journalled its first failure, and no more yet

    # a good client at another address is not held back, during the attack's window or after
    status, _, body = _request(served.port, served.token, source="127.0.0.2")
    assert status == 200, body
    status, headers, body = _request(served.port, "tmg_forged_again")
    assert status == 429 and headers["Content-Type"] == "application/problem+json"
    assert int(headers["Retry-After"]) >= 1
    assert json.loads(body)["type"] == "urn:tamga:problem:too-many-requests"
    statuses[429] += 1

    # the workers journal what they counted when they stop
    served.proc.terminate()
    served.proc.wait(timeout=30)
    rows = _failure_rows(served.home)
    print(f"rows after the workers stopped: {len(rows)}: {rows}")
    assert len(rows) <= 2 * WORKERS
    assert sum(r["count"] for r in rows) == statuses[401]
    assert sum(r["throttled"] for r in rows) == statuses[429]
    assert all(r["address"] == "127.0.0.1" for r in rows)
    journal = (served.home / "tamga.db").read_bytes()
    assert b"tmg_forged" not in journal  # no presented token is kept
    verify = subprocess.run(
        [TAMGA, "audit", "verify"],
        env=tamga_env(served.home, f"sqlite:///{served.home / 'tamga.db'}"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr

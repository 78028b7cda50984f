"""``tamga serve`` as the e2e tests start it: a free port, the process, ready when /healthz answers.

One copy of the start-up and shutdown every live-server test needs (gunicorn under
``tamga serve``, the log kept in a file that the failure message shows).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.ca_fixtures import free_port
from tests.tamga_fixtures import TAMGA

__all__ = ["REPO", "call", "free_port", "osmp_pay", "run_dev", "tamga_serve"]

REPO = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):  # noqa: S310 - our own test server
            return True
    except urllib.error.HTTPError as ex:
        return ex.code == 503  # up, a token or the database not ready: still serving
    except OSError:
        return False


@contextmanager
def tamga_serve(
    env: dict[str, str], port: int, log_path: Path, *, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``tamga serve`` with ``env`` (which binds ``port``) until /healthz answers; stop it
    (TERM, then KILL after 20 s) when the block ends."""
    with log_path.open("w") as log:
        proc = subprocess.Popen([TAMGA, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not _answers(f"http://127.0.0.1:{port}/healthz"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("tamga serve did not start:\n" + log_path.read_text())
                time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def run_dev(
    env: dict[str, str], port: int, log_path: Path, *, timeout: float = 90
) -> Iterator[subprocess.Popen[bytes]]:
    """What ``make run`` starts after ``tamga init`` (``scripts/run-dev.sh``: the agency stub,
    the worker, gunicorn) until /healthz answers; the whole process group is stopped after."""
    import os
    import signal

    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(REPO / "scripts" / "run-dev.sh")], env=env, cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while not _answers(f"http://127.0.0.1:{port}/healthz"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("run-dev.sh did not start:\n" + log_path.read_text())
                time.sleep(0.3)
            yield proc
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def call(
    base: str, path: str, token: str, body: Any = None, method: str = "POST"
) -> tuple[int, Any]:
    """A JSON API call with a bearer token: (status, parsed JSON answer)."""
    request = urllib.request.Request(  # noqa: S310 - our own test server
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


def osmp_pay(base: str, txn_id: str, account: str, amount: str) -> None:
    """A terminal's OSMP pay, dated now in Bishkek (UTC+6), that must be accepted."""
    query = urllib.parse.urlencode(
        {
            "command": "pay",
            "txn_id": txn_id,
            "account": account,
            "sum": amount,
            "txn_date": time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 6 * 3600)),
        }
    )
    with urllib.request.urlopen(f"{base}/payments/osmp/megapay?{query}", timeout=60) as paid:  # noqa: S310
        answer = paid.read()
    assert b"<result>0</result>" in answer, answer

"""Start the stub as a real process from a test: ``running_stub(...)``.

    from agency_stub.testing import running_stub
    with running_stub(tmp_path / "agency", port, "http://127.0.0.1:8000", tmp_path / "agency.log",
                      check_delay=0) as agency:
        agency.url            # "http://127.0.0.1:<port>"
        agency.control(check="reject", reject_message="...")
        agency.receipt_certificate_pem()

It runs ``tamga-agency serve`` (the console script beside the running interpreter, else
``python -m agency_stub``), waits until ``/healthz`` answers and stops it (TERM, then KILL)
when the block ends. Tests only: no product package imports agency_stub (import-linter).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunningStub", "command", "running_stub"]


def command() -> list[str]:
    """How to run ``tamga-agency`` from this interpreter."""
    script = Path(sys.executable).parent / "tamga-agency"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agency_stub"]


@dataclass(frozen=True)
class RunningStub:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def _json(self, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - our own local stub
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return json.loads(answer.read())

    def control(self, **settings: Any) -> dict[str, Any]:
        """``POST /control`` with ``settings``; the controls now in force."""
        answer: dict[str, Any] = self._json("/control", settings)
        return answer

    def reports(self) -> list[dict[str, Any]]:
        """``GET /reports``."""
        answer: list[dict[str, Any]] = self._json("/reports")
        return answer

    def receipt_certificate_pem(self) -> bytes:
        with urllib.request.urlopen(self.url + "/receipt-certificate", timeout=30) as answer:  # noqa: S310
            pem: bytes = answer.read()
            return pem

    @property
    def root_pem_path(self) -> Path:
        """The agency's root CA certificate (PEM file in its home), for ``openssl -CAfile``."""
        return self.home / "root-ca.pem"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - our own local stub
            return True
    except OSError:
        return False


@contextmanager
def running_stub(
    home: Path,
    port: int,
    callback: str,
    log_path: Path,
    *,
    agency: str = "tax",
    check_delay: float = 0.0,
    retry_base: float = 0.2,
    max_refusals: int = 3,
    extra: Sequence[str] = (),
    timeout: float = 30,
) -> Iterator[RunningStub]:
    """``tamga-agency serve`` on 127.0.0.1:``port`` until ``/healthz`` answers."""
    argv = [
        *command(),
        "serve",
        "--home",
        str(home),
        "--port",
        str(port),
        "--agency",
        agency,
        "--callback",
        callback,
        "--check-delay",
        str(check_delay),
        "--retry-base",
        str(retry_base),
        "--max-refusals",
        str(max_refusals),
        *extra,
    ]
    url = f"http://127.0.0.1:{port}"
    with log_path.open("a") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not _answers(url + "/healthz"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("tamga-agency did not start:\n" + log_path.read_text())
                time.sleep(0.1)
            yield RunningStub(url, home, process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

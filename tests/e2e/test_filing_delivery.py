"""Delivery through real processes on PostgreSQL: gunicorn, ``tamga worker`` and the agency
gateway stub (``tamga-agency``), each its own process.

* the agency down for a while: the report waits ``sent`` with its failed attempts in its history,
  and is delivered once the agency is back;
* a worker killed (SIGKILL) in the middle of a delivery: after its lease runs out another worker
  resends; the agency has one report, Tamga one charge;
* the agency posts its verdict twice: one verdict recorded;
* two workers on twelve reports: each delivered once, none sent twice.

Afterwards ``tamga audit verify`` and ``tamga billing check`` pass.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing_api.mail import MailSink
from tests.e2e.serving import call, free_port, osmp_pay, tamga_serve
from tests.tamga_fixtures import TAMGA, RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

INN = "01234567890123"
AGENCY = str(Path(TAMGA).parent / "tamga-agency")


@dataclass
class Stack:
    base: str
    agency: str
    home: Path
    env: dict[str, str]
    officer: str
    portal: str
    tmp: Path
    signers: dict[str, tuple[Path, Path]]  # role -> (certificate, key)

    def api(self, path: str, body: Any = None, method: str = "POST", who: str = "portal") -> Any:
        status, answer = call(
            self.base, path, self.portal if who == "portal" else self.officer, body, method
        )
        assert status < 300, (path, status, answer)
        return answer

    def report(self, report_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.api(f"/api/v1/reports/{report_id}", method="GET")
        return answer

    def control(self, **settings: Any) -> None:
        request = urllib.request.Request(  # noqa: S310 - the test's own stub
            f"{self.agency}/control",
            data=json.dumps(settings).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def received(self) -> dict[str, dict[str, Any]]:
        with urllib.request.urlopen(f"{self.agency}/reports", timeout=10) as answer:  # noqa: S310
            listed = json.loads(answer.read())
        rows = listed["reports"] if isinstance(listed, dict) else listed
        return {row["report_id"]: row for row in rows}

    def file_and_sign(self, n: int) -> str:
        document = f"<report form='STI-091' n='{n}'>{'x' * n}</report>".encode()
        filed = self.api(
            "/api/v1/reports",
            {
                "inn": INN, "kind": "STI-091", "period": "2026-11", "agency": "tax",
                "office": "003", "file_name": f"r{n}.xml",
                "document": base64.b64encode(document).decode(),
            },
        )  # fmt: skip
        (self.tmp / f"r{n}.xml").write_bytes(document)
        for role in ("head", "accountant"):
            cert, key = self.signers[role]
            out = self.tmp / f"r{n}.{role}.p7s"
            doc = self.tmp / f"r{n}.xml"
            subprocess.run(
                ["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-in", doc,
                 "-signer", cert, "-inkey", key, "-outform", "DER", "-out", out],
                check=True, capture_output=True,
            )  # fmt: skip
            self.api(
                f"/api/v1/reports/{filed['id']}/signatures",
                {"cms": base64.b64encode(out.read_bytes()).decode(), "role": role},
            )
        report_id: str = filed["id"]
        return report_id


def _until(what: Callable[[], bool], timeout: float = 60, step: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)


def _csr(path: Path) -> tuple[str, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), path


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _worker(stack: Stack, name: str, lease: float = 4) -> Any:
    return _process(
        [TAMGA, "worker", "--no-mail", "--idle", "0.2", "--lease", str(lease)],
        stack.env,
        stack.tmp / f"{name}.log",
    )


@pytest.fixture
def stack(run_tamga: RunTamga, tmp_path: Path, pg_database_url: str) -> Iterator[Stack]:
    home = tmp_path / "home"
    run_tamga(home, "init", database_url=pg_database_url)
    port, agency_port = free_port(), free_port()
    base, agency = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{agency_port}"
    sink = MailSink(home / "mail", "127.0.0.1", free_port())
    env = tamga_env(
        home, pg_database_url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2",
        TAMGA_PUBLIC_URL=base, TAMGA_SMTP_URL=sink.url,
    )  # fmt: skip
    agency_home = tmp_path / "agency"
    cert = subprocess.run(
        [AGENCY, "cert", "--home", str(agency_home)], capture_output=True, check=True, env=env
    ).stdout
    (tmp_path / "agency.pem").write_bytes(cert)
    run = lambda *a: run_tamga(home, *a, database_url=pg_database_url)  # noqa: E731
    run("filing", "agency", "add", "--code", "tax", "--name", "Налоговая служба",
        "--endpoint", agency, "--certificate", str(tmp_path / "agency.pem"))  # fmt: skip
    run("filing", "office", "add", "--agency", "tax", "--code", "003", "--name", "УГНС")
    officer = run("clients", "create", "--name", "o", "--role", "officer").stdout.split()[-1]
    portal = run("clients", "create", "--name", "p", "--role", "portal").stdout.split()[-1]
    stub_args = [AGENCY, "serve", "--home", str(agency_home), "--host", "127.0.0.1",
                 "--port", str(agency_port), "--agency", "tax", "--callback", base]  # fmt: skip
    with (
        sink,
        tamga_serve(env, port, tmp_path / "serve.log"),
        _process(stub_args, env, tmp_path / "agency.log"),
    ):
        _until(lambda: _up(agency))
        stack = Stack(base, agency, home, env, officer, portal, tmp_path, {})
        _company(stack)
        yield stack
    run("audit", "verify")
    run("billing", "check")


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310
            return True
    except OSError:
        return False


def _company(stack: Stack) -> None:
    """A registered company with a head and an accountant, each with a RuToken certificate."""
    request = stack.api(
        "/api/v1/registrations",
        {
            "channel": "online",
            "subscriber": {"inn": INN, "name": "ОсОО \"Тест\"", "legal_form": "ОсОО",
                           "locality": "Бишкек", "email": "office@test.kg"},
            "holder": {"full_name": "Асанова Айгуль Бакытовна", "position": "Директор",
                       "passport_series": "ID1234567", "email": "head@test.kg",
                       "phone": "+996555123456"},
            "role": "head", "storage": "cloud",
        },
    )  # fmt: skip
    approved = stack.api(
        f"/api/v1/registrations/{request['id']}/approve", {"note": "ok"}, who="officer"
    )
    head = approved["holder_id"]
    osmp_pay(stack.base, "1", approved["payment_account"], "1510.00")
    osmp_pay(stack.base, "2", INN, "9000.00")
    stack.api("/api/v1/certificates", {"holder_id": head, "role": "head", "storage": "cloud"})
    accountant = stack.api(
        "/api/v1/holders",
        {"inn": INN, "full_name": "Бакиева Нургуль", "position": "Главный бухгалтер",
         "passport_series": "ID7654321", "email": "buh@test.kg", "phone": "+996555765432"},
    )["id"]  # fmt: skip
    stack.api(f"/api/v1/holders/{accountant}/verify", {"document": "passport"}, who="officer")
    for role, holder in (("head", head), ("accountant", accountant)):
        csr, key = _csr(stack.tmp / f"{role}.key")
        issued = stack.api(
            "/api/v1/certificates",
            {"holder_id": holder, "role": role, "storage": "rutoken", "csr_pem": csr},
        )
        cert = stack.tmp / f"{role}.crt"
        cert.write_text(issued["certificate_pem"])
        stack.signers[role] = (cert, key)


def _events(stack: Stack, report_id: str) -> list[str]:
    return [e["event"] for e in stack.report(report_id)["events"]]


def test_agency_down_then_back(stack: Stack) -> None:
    stack.control(mode="down", check="accept", check_delay=0)
    report_id = stack.file_and_sign(1)
    with _worker(stack, "w1"):
        _until(lambda: _events(stack, report_id).count("delivery_failed") >= 2)
        shown = stack.report(report_id)
        assert shown["delivery_status"] == "sent" and report_id not in stack.received()
        stack.control(mode="up")
        _until(lambda: stack.report(report_id)["check_status"] == "accepted", timeout=90)
    assert stack.received()[report_id]["times_received"] == 1
    assert _events(stack, report_id).count("sent") == 1


def test_a_worker_killed_mid_delivery_and_duplicate_verdicts(stack: Stack) -> None:
    stack.control(mode="slow", delay=4, check="accept", check_delay=0, duplicate_results=True)
    report_id = stack.file_and_sign(2)
    with _worker(stack, "dying") as dying:
        _until(lambda: stack.report(report_id)["delivery_status"] == "sent")
        os.killpg(dying.pid, signal.SIGKILL)  # the PUT is in flight
        dying.wait()
    stack.control(mode="up")
    with _worker(stack, "heir"):
        _until(lambda: stack.report(report_id)["check_status"] == "accepted", timeout=90)
        time.sleep(1)  # the second, duplicate verdict arrives
    shown = stack.report(report_id)
    events = [e["event"] for e in shown["events"]]
    assert events.count("sent") == 1 and events.count("delivered") == 1
    assert events.count("checked") == 1
    assert len(stack.received()) == 1  # one report at the agency, however often it was sent
    assert shown["charges"]["transaction"] is not None


def test_two_workers_share_the_queue(stack: Stack) -> None:
    stack.control(mode="up", check="accept", check_delay=0)
    with _worker(stack, "a"), _worker(stack, "b"):
        ids = [stack.file_and_sign(10 + n) for n in range(12)]
        _until(
            lambda: all(stack.report(i)["delivery_status"] == "delivered" for i in ids), timeout=120
        )
    received = stack.received()
    for report_id in ids:
        assert received[report_id]["times_received"] == 1
        assert _events(stack, report_id).count("sent") == 1


def test_the_officers_command_line(stack: Stack, run_tamga: RunTamga) -> None:
    url = stack.env["TAMGA_DATABASE_URL"]

    def tamga(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(stack.home, *args, database_url=url, check=check)

    first, second = stack.file_and_sign(30), stack.file_and_sign(31)  # no worker: queued
    listed = tamga("filing", "list", "--inn", INN, "--status", "queued").stdout
    assert first in listed and second in listed
    shown = json.loads(tamga("filing", "show", first).stdout)
    assert shown["delivery_status"] == "queued" and shown["events"][-1]["event"] == "charged"
    assert "due for delivery" in tamga("filing", "retry", first).stdout
    stopped = tamga("filing", "stop", second, "--reason", "ошибка в отчете").stdout
    assert "stopped; charge reversed by transaction" in stopped
    assert stack.report(second)["delivery_status"] == "stopped"
    assert tamga("filing", "release").stdout.startswith("released 0")
    package = stack.tmp / "first.zip"
    tamga("filing", "package", first, "-o", str(package))
    import zipfile

    names = zipfile.ZipFile(package).namelist()
    assert "document/r30.xml" in names and "signatures/accountant.p7s" in names
    # Refusals: one line, a non-zero exit, nothing changed.
    missing = tamga("filing", "show", "no-such-report", check=False)
    assert missing.returncode == 1 and "no report no-such-report" in missing.stderr
    again = tamga("filing", "retry", second, check=False)
    assert again.returncode == 1 and "stopped" in again.stderr
    bad = stack.tmp / "bad.pem"
    bad.write_text("not a certificate")
    refused = tamga(
        "filing", "agency", "add", "--code", "tax", "--name", "X", "--endpoint",
        "http://127.0.0.1:1", "--certificate", str(bad), check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "receipt_certificate" in refused.stderr
    assert "http://127.0.0.1:1" not in tamga("filing", "agency", "list").stdout

"""Reports per second end to end on PostgreSQL, beside verifying their two signatures alone.

    .venv/bin/python bench/filing.py [--reports 200] [--clients 4] [--workers 2]
                                     [--database-url URL]

Creates a throwaway PostgreSQL database (``tamga_bench_<random>``, through the admin URL
``--database-url``, else ``TAMGA_TEST_DATABASE_URL``, else the local ``postgres`` role) and a
throwaway ``TAMGA_HOME``; runs ``tamga init``; starts ``tamga serve`` (gunicorn, 2 workers),
the agency gateway stub (``tamga-agency``, its check results off so that only delivery is
measured) and ``--workers`` delivery workers (``tamga worker``), each its own process. It then
registers a company with a head and an accountant, each with a RuToken certificate (keys in this
process), funds the balance, and prepares ``--reports`` documents with both detached CMS
signatures made here with pyca (untimed: signing happens on the holders' machines).

**End to end** (timed from the first request to the last receipt recorded): ``--clients``
threads each file reports over HTTP and upload the head's and the accountant's CMS (three
requests per report: every signature verified at intake by ``crl.check_signature``, the second
one charging and queueing the report in its transaction); the workers sign the dispatch
confirmation (HSM + TSA), PUT each report to the stub and record its signed receipt. Printed:
reports/s, and the time from filing to ``delivered`` (p50/p95).

**Baseline**, in the same run on the same database: ``crl.check_signature`` over the same
documents and signatures in this process, one at a time (two per report): the raw cost of the
verification every report needs. Nothing is asserted: figures go to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TAMGA, AGENCY = BIN / "tamga", BIN / "tamga-agency"
INN = "01234567890123"
PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMGA_")}
    env.pop("SOFTHSM2_CONF", None)
    env.update(
        TAMGA_HOME=str(home),
        TAMGA_DATABASE_URL=url,
        TAMGA_PKCS11_MODULE=os.environ.get("TAMGA_PKCS11_MODULE", PKCS11_MODULE),
        TAMGA_MAINTENANCE_WINDOW="off",
        TAMGA_RATE_LIMITS="off",
        **extra,
    )
    return env


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        parts = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)

    def __call__(self, path: str, body: Any = None, method: str = "POST") -> Any:
        self.conn.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        answer = self.conn.getresponse()
        data = json.loads(answer.read() or b"null")
        if answer.status >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status} {data}")
        return data


def _osmp(base: str, txn: str, account: str, amount: str) -> None:
    local = datetime.now(UTC) + timedelta(hours=6)
    query = urllib.parse.urlencode(
        {"command": "pay", "txn_id": txn, "account": account, "sum": amount,
         "txn_date": local.strftime("%Y%m%d%H%M%S")}
    )  # fmt: skip
    with urllib.request.urlopen(f"{base}/payments/osmp/megapay?{query}", timeout=60) as r:  # noqa: S310
        assert b"<result>0</result>" in r.read()


def _key_and_csr() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token")]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def _cms(document: bytes, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bytes:
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(document)
        .add_signer(cert, key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )


def _company(officer: Api, portal: Api, base: str) -> dict[str, tuple[Any, Any]]:
    request = portal(
        "/api/v1/registrations",
        {
            "channel": "online",
            "subscriber": {"inn": INN, "name": "ОсОО Бенч", "legal_form": "ОсОО",
                           "locality": "Бишкек", "email": "office@bench.kg"},
            "holder": {"full_name": "Бенчева Айгуль", "position": "Директор",
                       "passport_series": "ID1234567", "email": "head@bench.kg",
                       "phone": "+996555123456"},
            "role": "head", "storage": "cloud",
        },
    )  # fmt: skip
    approved = officer(f"/api/v1/registrations/{request['id']}/approve", {"note": "bench"})
    _osmp(base, "9001", approved["payment_account"], "1510.00")
    _osmp(base, "9002", INN, "99999.00")
    head = approved["holder_id"]
    portal("/api/v1/certificates", {"holder_id": head, "role": "head", "storage": "cloud"})
    accountant = portal(
        "/api/v1/holders",
        {"inn": INN, "full_name": "Бенчева Нургуль", "position": "Главный бухгалтер",
         "passport_series": "ID7654321", "email": "buh@bench.kg", "phone": "+996555765432"},
    )["id"]  # fmt: skip
    officer(f"/api/v1/holders/{accountant}/verify", {"document": "passport"})
    signers = {}
    for role, holder in (("head", head), ("accountant", accountant)):
        key, csr = _key_and_csr()
        issued = portal(
            "/api/v1/certificates",
            {"holder_id": holder, "role": role, "storage": "rutoken", "csr_pem": csr},
        )
        signers[role] = (x509.load_pem_x509_certificate(issued["certificate_pem"].encode()), key)
    return signers


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:  # noqa: PLR0912, PLR0915 - one linear script, top to bottom
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get(
        "TAMGA_TEST_DATABASE_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
    ))  # fmt: skip
    args = parser.parse_args()

    name = f"tamga_bench_{secrets.token_hex(4)}"
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    home = Path(tempfile.mkdtemp(prefix="tamga-bench-filing-"))
    port, agency_port = _free_port(), _free_port()
    base, agency = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{agency_port}"
    env = _env(home, url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2",
               TAMGA_PUBLIC_URL=base, TAMGA_SMTP_URL="smtp://127.0.0.1:9")  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    log = (home / "processes.log").open("ab")

    def start(*argv: str) -> None:
        procs.append(subprocess.Popen([*argv], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))  # fmt: skip

    def tamga(*argv: str) -> str:
        done = subprocess.run(
            [str(TAMGA), *argv], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise RuntimeError(f"tamga {' '.join(argv)}: {done.stderr}")
        return done.stdout

    try:
        tamga("init")
        agency_home = home / "agency"
        pem = subprocess.run([str(AGENCY), "cert", "--home", str(agency_home)], env=env,
                             capture_output=True, check=True).stdout  # fmt: skip
        (home / "agency.pem").write_bytes(pem)
        tamga("filing", "agency", "add", "--code", "tax", "--name", "Налоговая служба",
              "--endpoint", agency, "--certificate", str(home / "agency.pem"))  # fmt: skip
        tamga("filing", "office", "add", "--agency", "tax", "--code", "003", "--name", "УГНС")
        officer_token = tamga("clients", "create", "--name", "o", "--role", "officer").split()[-1]
        officer = Api(base, officer_token)
        portal_token = tamga("clients", "create", "--name", "p", "--role", "portal").split()[-1]
        start(str(TAMGA), "serve")
        start(str(AGENCY), "serve", "--home", str(agency_home), "--host", "127.0.0.1",
              "--port", str(agency_port), "--agency", "tax", "--callback", base)  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).close()  # noqa: S310
                urllib.request.urlopen(f"{agency}/healthz", timeout=2).close()  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        request = urllib.request.Request(  # noqa: S310
            f"{agency}/control", data=json.dumps({"check": "none"}).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310
        signers = _company(officer, Api(base, portal_token), base)
        documents = [
            f"<report n='{i}'>{secrets.token_hex(512)}</report>".encode()
            for i in range(args.reports)
        ]
        signed = [
            {role: _cms(doc, *signers[role]) for role in ("head", "accountant")}
            for doc in documents
        ]
        for _ in range(args.workers):
            start(str(TAMGA), "worker", "--no-mail", "--idle", "0.05", "--batch", "20")

        filed_at: dict[str, float] = {}
        lock = threading.Lock()
        next_index = iter(range(args.reports))

        def client() -> None:
            api = Api(base, portal_token)
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                started = time.perf_counter()
                report = api("/api/v1/reports", {
                    "inn": INN, "kind": "STI-091", "period": "2026-11", "agency": "tax",
                    "office": "003", "file_name": f"r{i}.xml",
                    "document": base64.b64encode(documents[i]).decode(),
                })  # fmt: skip
                for role in ("head", "accountant"):
                    cms = base64.b64encode(signed[i][role]).decode()
                    api(f"/api/v1/reports/{report['id']}/signatures", {"cms": cms, "role": role})
                with lock:
                    filed_at[report["id"]] = started

        start_time = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        intake = time.perf_counter() - start_time
        engine = create_engine(url)
        delivered_at: dict[str, float] = {}
        while len(delivered_at) < args.reports:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT id FROM reports WHERE delivery_status = 'delivered'")
                ).scalars()
                now = time.perf_counter()
                for report_id in rows:
                    delivered_at.setdefault(report_id, now)
            time.sleep(0.05)
            if time.perf_counter() - start_time > 1800:
                raise RuntimeError(f"only {len(delivered_at)} delivered after 30 min")
        total = max(delivered_at.values()) - start_time
        latencies = [delivered_at[i] - filed_at[i] for i in filed_at]

        # Baseline: the intake verification alone, on the same database, in this process.
        os.environ.update(env)
        from crl import check_signature
        from db import make_engine, make_session_factory

        sessions = make_session_factory(make_engine(url))
        moment = datetime.now(UTC)
        begin = time.perf_counter()
        with sessions() as session:
            for doc, sigs in zip(documents, signed, strict=True):
                for cms in sigs.values():
                    check = check_signature(session, cms, content=doc, now=moment)
                    assert check.ok, check.problems
        verify = time.perf_counter() - begin

        print(
            f"Tamga filing benchmark — {platform.node()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, PostgreSQL; {args.reports} reports, "
            f"{args.clients} clients, {args.workers} workers, gunicorn 2 workers"
        )
        print(f"  end to end (file, 2 signatures, charge, queue, deliver, receipt): "
              f"{args.reports / total:7.1f} reports/s")  # fmt: skip
        print(f"    intake alone (3 HTTP requests per report):                  "
              f"{args.reports / intake:7.1f} reports/s")  # fmt: skip
        print(f"    filing → delivered latency: p50 {statistics.median(latencies):.2f} s, "
              f"p95 {_percentile(latencies, 0.95):.2f} s")  # fmt: skip
        print(f"  raw: verifying the two CMS of a report (crl.check_signature, 1 process): "
              f"{args.reports / verify:7.1f} reports/s")  # fmt: skip
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"home kept for inspection: {home}")


if __name__ == "__main__":
    main()

"""OCSP answers per second (issue #15) over HTTP against ``tamga serve``, beside a static file.

    .venv/bin/python bench/ocsp.py [--certificates 100000] [--sample 2000] [--requests 4000]
                                   [--clients 4] [--database-url URL]

**Set-up.** A throwaway PostgreSQL database (``tamga_bench_<random>``, through the admin URL
``--database-url``, else ``TAMGA_TEST_DATABASE_URL``, else the local ``postgres`` role), a
throwaway ``TAMGA_HOME``, ``tamga init`` (which makes the OCSP responder). ``--certificates``
synthetic certificate rows are seeded straight into ``certificates`` with PostgreSQL ``COPY``
(one subscriber and holder own them all); one in ten is revoked (keyCompromise, with its
``certificate_events`` row, also by ``COPY``). Their ``der`` is NULL: the responder answers from
the serial and the status history only (``crl.status_at``), never from the certificate's bytes,
so synthetic rows are answered exactly as issued ones. The seeding rate is printed.

**Measured**, ``tamga serve`` (gunicorn, 2 workers), ``--clients`` threads with keep-alive
connections, ``--requests`` requests each run:

- ``GET /ca/root.crt``: the baseline, a static DER from the same server (one indexed row);
- cold ``POST /ocsp``: the first request for each of ``--sample`` good serials: miss → status →
  sign on the HSM → store → journal (what a request costs when no worker pre-signed it);
- warm ``POST /ocsp`` and ``GET /ocsp/<base64>``, good and revoked serials: the lookup path of the
  steady state (no HSM call);
- ``POST /ocsp`` with a nonce: signed per request, journalled, not stored;
- in this process on the same database: ``crl.refresh_responses`` re-signing the stored answers
  in batches (the worker's job; the rate that bounds how many certificates one responder key
  keeps fresh per day).

Every answer's responseStatus and certStatus is checked once per kind, nothing else is
asserted. The server is stopped and the database dropped at the end. Figures go to
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import importlib.util
import io
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
from cryptography.x509 import ocsp
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _bench_filing() -> Any:
    """bench/filing.py, for its helpers, loaded by path: its name is the project's ``filing``."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    spec = importlib.util.spec_from_file_location("bench_filing", here / "filing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_filing = _bench_filing()
TAMGA, _env = _filing.TAMGA, _filing._env
_free_port, _percentile = _filing._free_port, _filing._percentile

INN = "01234567890123"
SHA1 = hashes.SHA1()  # noqa: S303 - RFC 5019 §2.1.1 CertIDs are SHA-1
_CHUNK = 50_000
Work = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:9,.1f}/s  ({1000 * seconds / count:8.2f} ms each)"


# --- seeding ---------------------------------------------------------------------------------


def _owner(url: str, now: datetime) -> tuple[str, int]:
    """One subscriber and one verified holder, through the registry service."""
    from ca.registry import create_holder, create_subscriber
    from db import make_engine, make_session_factory

    sessions = make_session_factory(make_engine(url))
    with sessions.begin() as session:
        create_subscriber(
            session,
            {"inn": INN, "name": 'ОсОО "Бенч"', "legal_form": "ОсОО", "locality": "Бишкек",
             "email": "office@bench.kg"},
            now=now, actor="bench",
        )  # fmt: skip
        holder = create_holder(
            session,
            {"inn": INN, "full_name": "Бенчева Бенч", "position": "Руководитель",
             "passport_series": "ID1234567", "email": "head@bench.kg", "phone": "+996555123456"},
            now=now, actor="bench",
        )  # fmt: skip
        return INN, holder.id


def _copy(cursor: Any, statement: str, rows: list[str]) -> None:
    with cursor.copy(statement) as copy:
        copy.write("".join(rows))


def seed(url: str, count: int, now: datetime) -> tuple[list[int], list[int], float]:
    """``count`` certificate rows by COPY, one in ten revoked; (good, revoked serials, seconds)."""
    inn, holder = _owner(url, now)
    engine = create_engine(url)
    good: list[int] = []
    revoked: list[int] = []
    begin = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT coalesce(max(id), 0) FROM certificates")
        first_id = int(cursor.fetchone()[0]) + 1  # type: ignore[index]
        cursor.execute("SELECT coalesce(max(id), 0) FROM certificate_events")
        event_id = int(cursor.fetchone()[0]) + 1  # type: ignore[index]
        not_before, not_after = now - timedelta(days=30), now + timedelta(days=335)
        stamp = now.isoformat()
        for start in range(0, count, _CHUNK):
            certs, events = io.StringIO(), io.StringIO()
            for n in range(start, min(count, start + _CHUNK)):
                serial = secrets.randbits(159) | 1 << 158
                gone = n % 10 == 9
                (revoked if gone else good).append(serial)
                status = "revoked" if gone else "active"
                reason = "key_compromise" if gone else r"\N"
                at = stamp if gone else r"\N"
                certs.write(
                    f"{first_id + n}\t{serial:x}\t{inn}\t{holder}\thead\trutoken\tec-p256\t"
                    f"{'0' * 64}\tCN=bench {n}\t{{}}\t{not_before.isoformat()}\t"
                    f"{not_after.isoformat()}\t{status}\t{'0' * 64}\tstandard\t0\tbench\t"
                    f"f\t{stamp}\tbench\t{at}\t{reason}\n"
                )
                if gone:
                    events.write(
                        f"{event_id}\t{first_id + n}\trevoked\tkey_compromise\t{stamp}\tbench\n"
                    )
                    event_id += 1
            _copy(
                cursor,
                "COPY certificates (id, serial, subscriber_inn, holder_id, role, storage, "
                "key_spec, spki_sha256, subject, requisites, not_before, not_after, status, "
                "tbs_sha256, tariff, price, payment_key, auto_renew, created_at, created_by, "
                "revoked_at, revocation_reason) FROM STDIN",
                [certs.getvalue()],
            )
            _copy(
                cursor,
                "COPY certificate_events (id, certificate_id, action, reason, at, actor) "
                "FROM STDIN",
                [events.getvalue()],
            )
            raw.commit()
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('certificates', 'id'), "
            "(SELECT max(id) FROM certificates))"
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('certificate_events', 'id'), "
            "(SELECT max(id) FROM certificate_events))"
        )
        cursor.execute("ANALYZE certificates")
        cursor.execute("ANALYZE certificate_events")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return good, revoked, time.perf_counter() - begin


# --- the load --------------------------------------------------------------------------------


def _load(
    base: str, clients: int, work: list[Work]
) -> tuple[float, list[float], list[tuple[int, bytes]]]:
    """Send ``work`` (method, path, body, headers) over ``clients`` keep-alive connections."""
    parts = urllib.parse.urlsplit(base)
    latencies: list[float] = []
    answers: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    remaining = iter(work)

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
        while True:
            with lock:
                item = next(remaining, None)
            if item is None:
                return
            method, path, body, headers = item
            begin = time.perf_counter()
            conn.request(method, path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            took = time.perf_counter() - begin
            with lock:
                latencies.append(took)
                if len(answers) < 4:
                    answers.append((answer.status, data))

    begin = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - begin, latencies, answers


def _request(issuing: x509.Certificate, serial: int, nonce: bool = False) -> bytes:
    template = ocsp.OCSPRequestBuilder().add_certificate(issuing, issuing, SHA1).build()
    name_hash = hashes.Hash(SHA1)
    name_hash.update(issuing.subject.public_bytes())
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        name_hash.finalize(), template.issuer_key_hash, serial, SHA1
    )
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(secrets.token_bytes(16)), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _check(answers: list[tuple[int, bytes]], want: ocsp.OCSPCertStatus | None) -> None:
    for status, data in answers:
        if status != 200:
            raise SystemExit(f"HTTP {status}: {data[:200]!r}")
        if want is None:
            continue
        response = ocsp.load_der_ocsp_response(data)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise SystemExit(f"OCSP {response.response_status}")
        if response.certificate_status is not want:
            raise SystemExit(f"certStatus {response.certificate_status}, not {want}")


def run(args: argparse.Namespace) -> None:  # noqa: PLR0915 - linear, top to bottom
    name = f"tamga_bench_{secrets.token_hex(4)}"
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    home = Path(tempfile.mkdtemp(prefix="tamga-bench-ocsp-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(home, url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2",
               TAMGA_PUBLIC_URL=base, TAMGA_SMTP_URL="smtp://127.0.0.1:9")  # fmt: skip
    server: subprocess.Popen[bytes] | None = None
    log = (home / "processes.log").open("ab")
    saved = dict(os.environ)
    try:
        done = subprocess.run([str(TAMGA), "init"], env=env, capture_output=True, text=True,
                              check=False)  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"tamga init: {done.stderr}")
        os.environ.update(env)
        now = datetime.now(UTC)
        good, revoked, took = seed(url, args.certificates, now)
        print(f"seeded {args.certificates:,} certificate rows by COPY ({len(revoked):,} revoked) "
              f"in {took:.1f} s: {args.certificates / took:,.0f} rows/s")  # fmt: skip
        server = subprocess.Popen([str(TAMGA), "serve"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).close()  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with urllib.request.urlopen(f"{base}/ca/issuing.crt", timeout=10) as got:  # noqa: S310
            issuing = x509.load_der_x509_certificate(got.read())
        post = {"Content-Type": "application/ocsp-request"}
        sample_good = good[: args.sample]
        sample_revoked = revoked[: max(1, args.sample // 2)]
        req_good = {s: _request(issuing, s) for s in sample_good}
        req_revoked = {s: _request(issuing, s) for s in sample_revoked}

        def cycle(reqs: dict[int, bytes], n: int, method: str) -> list[Work]:
            ders = list(reqs.values())
            out: list[Work] = []
            for i in range(n):
                der = ders[i % len(ders)]
                if method == "GET":
                    path = "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
                    out.append(("GET", path, b"", {}))
                else:
                    out.append(("POST", "/ocsp", der, post))
            return out

        print(
            f"server: gunicorn 2 workers, PostgreSQL; {args.clients} clients, keep-alive; "
            f"{args.certificates:,} certificates"
        )
        figures: list[tuple[str, int, float, list[float]]] = []

        def measure(label: str, work: list[Work], want: ocsp.OCSPCertStatus | None) -> None:
            total, latencies, answers = _load(base, args.clients, work)
            _check(answers, want)
            figures.append((label, len(work), total, latencies))
            print(f"   {label:<44} {_rate(len(work), total)}  p50 "
                  f"{1000 * statistics.median(latencies):6.2f} ms, p95 "
                  f"{1000 * _percentile(latencies, 0.95):6.2f} ms")  # fmt: skip

        good_status, revoked_status = ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED
        root: list[Work] = [("GET", "/ca/root.crt", b"", {})] * args.requests
        measure("baseline GET /ca/root.crt", root, None)
        measure("cold POST /ocsp, good (sign + store)", cycle(req_good, len(req_good), "POST"),
                good_status)  # fmt: skip
        measure("cold POST /ocsp, revoked (sign + store)",
                cycle(req_revoked, len(req_revoked), "POST"), revoked_status)  # fmt: skip
        measure("warm POST /ocsp, good (lookup)", cycle(req_good, args.requests, "POST"),
                good_status)  # fmt: skip
        measure("warm POST /ocsp, revoked (lookup)", cycle(req_revoked, args.requests, "POST"),
                revoked_status)  # fmt: skip
        measure("warm GET /ocsp/<b64>, good (lookup)", cycle(req_good, args.requests, "GET"),
                good_status)  # fmt: skip
        measure("warm GET /ocsp/<b64>, revoked (lookup)",
                cycle(req_revoked, args.requests, "GET"), revoked_status)  # fmt: skip
        nonce_work = [
            ("POST", "/ocsp", _request(issuing, sample_good[i % len(sample_good)], nonce=True),
             post)
            for i in range(max(1, args.requests // 4))
        ]  # fmt: skip
        measure("POST /ocsp with nonce, good (signed each)", nonce_work, good_status)
        nonce_revoked = [
            ("POST", "/ocsp",
             _request(issuing, sample_revoked[i % len(sample_revoked)], nonce=True), post)
            for i in range(max(1, args.requests // 4))
        ]  # fmt: skip
        measure("POST /ocsp with nonce, revoked (signed each)", nonce_revoked, revoked_status)
        measure("baseline GET /ca/root.crt (again)", root, None)

        # The worker's refresh, in this process on the same database, all stored rows due.
        from crl import refresh_responses
        from policies.ocsp import OCSP
        from signing_api.config import Config
        from signing_api.runtime import Runtime

        runtime = Runtime(Config.from_env())
        later = datetime.now(UTC) + OCSP.response_validity - OCSP.refresh_margin
        begin, refreshed = time.perf_counter(), 0
        while True:
            with runtime.transaction() as session:
                n = refresh_responses(
                    session, token=runtime.ca_token, now=later, actor="bench", limit=500
                )
            refreshed += n
            if n == 0:
                break
        took = time.perf_counter() - begin
        if refreshed:
            print(f"   in-process refresh_responses (worker job): {refreshed} stored answers "
                  f"re-signed, {_rate(refreshed, took)}")  # fmt: skip
        runtime.engine.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        log.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"home kept for inspection: {home}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2000, help="serials asked (cold pass)")
    parser.add_argument("--requests", type=int, default=4000, help="requests per warm run")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--database-url", default=os.environ.get(
        "TAMGA_TEST_DATABASE_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
    ))  # fmt: skip
    args = parser.parse_args()
    print(
        f"Tamga OCSP benchmark — {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    run(args)
    print(f"load at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Dispute verifications per second (§8, issue #14): the engine, ``openssl cms -verify``, the API.

    .venv/bin/python bench/verify.py [--crls 30] [--count 200] [--cli-count 5]
                                     [--clients 2] [--api-count 100] [--skip-api]
                                     [--database-url URL]

**Engine in-process.** ``tests/verification_pki.py`` builds a PKI in memory (root → issuing CA
→ subscriber, and a TSA under the issuing CA) and ``--crls`` daily CRLs of each CA (default 30:
a month), the last one an hour ago. One CAdES-B-T detached signature (``ca.cms.sign_detached``,
its time-stamp three hours ago, between the last two CRLs) over a 4 KiB document is verified
``--count`` times by ``signing_api.verification.verify_signature``: the seven steps of §8.2,
the signer's path and the TSA's path (both 3 levels), each validated with the two CRLs of each
CA around the time-stamp. Printed: verifications/s with the trust (anchors, intermediates, every
CRL) parsed once, and with ``load_trust`` parsed again each time (as the API and the CLI do);
then ``tamga verify signature`` as a process per verification (``--cli-count`` runs, default 5).

**Baseline**, on the same files in the same run: ``openssl cms -verify -binary -inform DER
-content doc -CAfile root.pem -certfile issuing.pem -purpose any -crl_check_all`` with the
latest CRL of each CA (``openssl cms`` has no ``-CRLfile``: the CRLs go into the ``-CAfile``
PEM, where OpenSSL's file lookup reads them), one process per verification as a commission's
script would run it, ``--count`` times; and ``openssl version`` processes ``--count`` times, the
share of process start. openssl checks the signature, the signer's path and its revocation now;
it does not look at the time-stamp token (the engine does: its signature, its TSA's path).

**Through the API.** A throwaway PostgreSQL database (``tamga_bench_<random>``, through the
admin URL ``--database-url``, else ``TAMGA_TEST_DATABASE_URL``, else the local ``postgres``
role), a throwaway ``TAMGA_HOME``, ``tamga init``; ``--crls`` CRLs of each of the server's CAs
are signed into its archive (``crl_issues``) in this process before the server starts, dated a
day apart and ending now (as a month of daily CRLs would be). ``tamga serve`` (gunicorn, 2
workers); a company registered over HTTP (``bench/filing.py``'s helpers) whose head has a
RuToken certificate from the server's CA (the key here, pyca); its balance topped up by OSMP for
every fee. The disputed signature is a CAdES-B-T made here with that key by
``ca.cms.sign_detached``, its time-stamp from the server's own ``/tsa``. ``--clients`` threads
(keep-alive connections, a ``commission`` API client) send ``--api-count`` ``POST
/api/v1/disputes`` (multipart: ``subscriber_inn``, ``document``, ``signature``): each reads the
server's CA certificates and every CRL from the database, runs the engine, charges the fee and
stores the case with its report. Printed: disputes/s, latency p50/p95; beside them, in this
process on the same database, ``trust_from_archive`` alone and with ``verify_signature``.

Every verification's verdict is checked once (TOTAL-PASSED, openssl exit 0, 201) so the
figures are for real, valid signatures; otherwise nothing is asserted. The server is stopped and
the database dropped at the end; the home directory is kept (its path printed). Figures go to
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import tsp
from cryptography.hazmat.primitives import serialization
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _bench_filing() -> Any:
    """bench/filing.py, for its helpers, loaded by path: its name is the project's ``filing``."""
    here = Path(__file__).resolve().parent
    # Run as a script, this directory comes first on sys.path, where bench/filing.py would hide
    # the ``filing`` package from every project import.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    spec = importlib.util.spec_from_file_location("bench_filing", here / "filing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_filing = _bench_filing()
TAMGA, Api, _company, _env = _filing.TAMGA, _filing.Api, _filing._company, _filing._env
_free_port, _osmp, _percentile = _filing._free_port, _filing._osmp, _filing._percentile

INN = "01234567890123"  # the company _company registers
FEE_SOM = 3000  # the dispute tariff (policies.tariffs), for the top-up only


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:9,.1f}/s  ({1000 * seconds / count:8.2f} ms each)"


def _timed(count: int, work: Callable[[], object]) -> float:
    begin = time.perf_counter()
    for _ in range(count):
        work()
    return time.perf_counter() - begin


# --- 1 and 2: the engine in-process, beside openssl --------------------------------------------


def engine_and_openssl(args: argparse.Namespace, work: Path) -> None:  # noqa: PLR0915
    from ca.cms import sign_detached
    from signing_api.verification import verify_signature
    from signing_api.verification.inputs import NamedBytes, load_trust
    from tests.verification_pki import PKI

    now = datetime.now(UTC).replace(microsecond=0)
    pki = PKI("Bench")
    signer = pki.subscriber("Bench Subscriber")
    for k in range(args.crls):  # daily, the last one an hour ago
        pki.issue_crl(now - timedelta(days=args.crls - 1 - k, hours=1))
    document = secrets.token_bytes(4096)
    signed_at = now - timedelta(hours=3)

    def stamp(digest: bytes, hash_name: str) -> bytes:
        assert hash_name == "sha256"
        return pki.timestamp_digest(digest, signed_at + timedelta(seconds=5))

    signature = sign_detached(
        document, signer.cert, signer.key, [pki.issuing.cert], signing_time=signed_at,
        timestamper=stamp,
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    root_pem, issuing_pem = pki.root.pem, pki.issuing.pem
    crl_ders = pki.crl_ders()
    anchors = [NamedBytes("root.pem", root_pem)]
    intermediates = [NamedBytes("issuing.pem", issuing_pem)]
    crls = [NamedBytes(f"crl-{i:03d}.crl", der) for i, der in enumerate(crl_ders)]
    sig_in, doc_in = NamedBytes("doc.p7s", signature), NamedBytes("doc.bin", document)

    trust = load_trust(anchors, intermediates, crls)
    report = verify_signature(signature=sig_in, document=doc_in, trust=trust, now=now)
    if not report.passed:
        raise SystemExit(f"the engine does not pass the signature: {report.to_json()}")

    def engine_only() -> None:
        verify_signature(signature=sig_in, document=doc_in, trust=trust, now=now)

    def engine_with_trust() -> None:
        loaded = load_trust(anchors, intermediates, crls)
        verify_signature(signature=sig_in, document=doc_in, trust=loaded, now=now)

    def trust_only() -> None:
        load_trust(anchors, intermediates, crls)

    engine_only()  # warm
    t_engine = _timed(args.count, engine_only)
    t_engine_trust = _timed(args.count, engine_with_trust)
    t_trust = _timed(args.count, trust_only)

    # The same files for openssl and for `tamga verify signature`.
    (work / "doc.bin").write_bytes(document)
    (work / "doc.p7s").write_bytes(signature)
    (work / "root.pem").write_bytes(root_pem)
    (work / "issuing.pem").write_bytes(issuing_pem)
    crl_dir = work / "crls"
    crl_dir.mkdir()
    for item in crls:
        (crl_dir / item.name).write_bytes(item.data)
    latest = [pki.crls[-1], pki.root_crls[-1]]
    (work / "ca-and-crls.pem").write_bytes(root_pem + b"".join(c.public_bytes(pem) for c in latest))
    openssl = [
        "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "doc.p7s",
        "-content", "doc.bin", "-CAfile", "ca-and-crls.pem", "-certfile", "issuing.pem",
        "-purpose", "any", "-crl_check_all", "-out", os.devnull,
    ]  # fmt: skip
    done = subprocess.run(openssl, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"openssl cms -verify fails: {done.stderr}")
    without_crls = [("root.pem" if a == "ca-and-crls.pem" else a) for a in openssl]
    probe = subprocess.run(without_crls, cwd=work, capture_output=True, check=False)
    crls_used = probe.returncode != 0  # without the CRLs -crl_check_all must fail

    def run(argv: list[str]) -> Callable[[], None]:
        return lambda: subprocess.run(argv, cwd=work, capture_output=True, check=True)

    t_openssl = _timed(args.count, run(openssl))
    t_version = _timed(args.count, run(["openssl", "version"]))
    cli = [
        str(TAMGA), "verify", "signature", "--document", "doc.bin", "--signature", "doc.p7s",
        "--trust", "root.pem", "--intermediate", "issuing.pem", "--crl-dir", "crls",
    ]  # fmt: skip
    subprocess.run(cli, cwd=work, capture_output=True, check=True)  # exit 0: TOTAL-PASSED
    t_cli = _timed(args.cli_count, run(cli))
    t_python = _timed(args.cli_count, run([sys.executable, "-c", "pass"]))

    size = sum(len(d) for d in crl_ders)
    print(
        f"1. engine in-process: CAdES-B-T, 3-level chain (and the TSA's), {args.crls} daily CRLs"
        f" per CA ({len(crl_ders)} CRLs, {size:,} bytes); verdict {report.indication.value},"
        f" time from {report.signatures[0].signing_time.proof.value}"
    )
    print(f"   verify_signature, trust parsed once:         {_rate(args.count, t_engine)}")
    print(f"   load_trust + verify_signature each time:     {_rate(args.count, t_engine_trust)}")
    print(f"     of which load_trust ({len(crl_ders)} CRLs + 2 certs):    "
          f"{_rate(args.count, t_trust)}")  # fmt: skip
    print(f"   `tamga verify signature`, 1 process each:    {_rate(args.cli_count, t_cli)}")
    print(f"     `python -c pass`, 1 process each:         {_rate(args.cli_count, t_python)}")
    print(
        f"2. baseline: openssl cms -verify -crl_check_all, latest CRL of each CA (CRLs checked:"
        f" {'yes' if crls_used else 'NO'}), time-stamp not checked"
    )
    print(f"   openssl cms -verify, 1 process each:         {_rate(args.count, t_openssl)}")
    print(f"     `openssl version`, 1 process each:         {_rate(args.count, t_version)}"
          f"  = {100 * t_version / t_openssl:.0f} % of the above")  # fmt: skip
    net = max(t_openssl - t_version, 1e-9)
    print(f"     openssl cms -verify less process start:    {_rate(args.count, net)}")
    cli_ratio = (t_openssl / args.count) / (t_cli / args.cli_count)
    print(f"   engine/s ÷ openssl/s: load_trust + verify ÷ openssl process "
          f"{t_openssl / t_engine_trust:.2f}; verify alone ÷ openssl less process start "
          f"{net / t_engine:.2f}; tamga CLI process ÷ openssl process {cli_ratio:.3f}")  # fmt: skip


# --- 3: through the API --------------------------------------------------------------------


def _timestamper(base: str) -> Callable[[bytes, str], bytes]:
    """An RFC 3161 client of the server's ``/tsa`` for ``ca.cms``: (digest, hash) -> token DER."""

    def stamp(digest: bytes, hash_name: str) -> bytes:
        query = tsp.TimeStampReq(
            {
                "version": "v1",
                "message_imprint": {
                    "hash_algorithm": {"algorithm": hash_name},
                    "hashed_message": digest,
                },
                "nonce": int.from_bytes(secrets.token_bytes(8), "big"),
                "cert_req": True,
            }
        ).dump()
        request = urllib.request.Request(  # noqa: S310
            f"{base}/tsa", data=query, headers={"Content-Type": "application/timestamp-query"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            response = tsp.TimeStampResp.load(answer.read())
        if response["status"]["status"].native != "granted":
            raise RuntimeError(f"/tsa refused: {response['status'].native}")
        return bytes(response["time_stamp_token"].dump())

    return stamp


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            .encode()
        )  # fmt: skip
    for name, (filename, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _archive_crls(count: int) -> None:
    """``count`` CRLs of each of the server's CAs in its archive, a day apart, the last now."""
    from crl import ForeignIssuer, refresh_crl
    from policies.crl import CRL_ISSUERS
    from signing_api.cli.root import open_runtime

    runtime = open_runtime()
    now = datetime.now(UTC)
    for name in CRL_ISSUERS:
        for k in range(count):
            try:
                with runtime.transaction() as session:
                    refresh_crl(session, issuer=name, token=runtime.ca_token,
                                now=now - timedelta(days=count - 1 - k), actor="bench",
                                force=True)  # fmt: skip
            except ForeignIssuer:
                break
    runtime.engine.dispose()


def through_the_api(args: argparse.Namespace) -> None:  # noqa: PLR0915 - linear, top to bottom
    name = f"tamga_bench_{secrets.token_hex(4)}"
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    home = Path(tempfile.mkdtemp(prefix="tamga-bench-verify-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(home, url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2",
               TAMGA_PUBLIC_URL=base, TAMGA_SMTP_URL="smtp://127.0.0.1:9")  # fmt: skip
    server: subprocess.Popen[bytes] | None = None
    log = (home / "processes.log").open("ab")

    def tamga(*argv: str) -> str:
        done = subprocess.run(
            [str(TAMGA), *argv], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise RuntimeError(f"tamga {' '.join(argv)}: {done.stderr}")
        return done.stdout

    try:
        tamga("init")
        tokens = {
            role: tamga("clients", "create", "--name", role[0], "--role", role).split()[-1]
            for role in ("officer", "portal", "commission")
        }
        saved = dict(os.environ)
        os.environ.update(env)
        _archive_crls(args.crls)  # before the server: one process on the HSM at a time
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
        cert, key = _company(Api(base, tokens["officer"]), Api(base, tokens["portal"]), base)[
            "head"
        ]
        due = (args.api_count + 5) * FEE_SOM  # one payment is at most 100 000 som (OSMP)
        for txn, amount in enumerate(range(0, due, 99_000), 9003):
            _osmp(base, str(txn), INN, f"{min(99_000, due - amount)}.00")
        from ca.cms import sign_detached

        document = f"<report n='dispute'>{secrets.token_hex(2048)}</report>".encode()
        signature = sign_detached(document, cert, key, signing_time=datetime.now(UTC),
                                  timestamper=_timestamper(base))  # fmt: skip
        body, content_type = _multipart(
            {"subscriber_inn": INN},
            {"document": ("report.xml", document), "signature": ("report.p7s", signature)},
        )
        headers = {"Authorization": f"Bearer {tokens['commission']}", "Content-Type": content_type}
        parts = urllib.parse.urlsplit(base)

        def post(conn: http.client.HTTPConnection) -> dict[str, Any]:
            conn.request("POST", "/api/v1/disputes", body=body, headers=headers)
            answer = conn.getresponse()
            data = json.loads(answer.read())
            if answer.status != 201:
                raise RuntimeError(f"POST /api/v1/disputes: {answer.status} {data}")
            return dict(data)

        first = post(http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120))
        if first["indication"] != "TOTAL-PASSED":
            raise SystemExit(f"the API does not pass the signature: {first['report']}")

        latencies: list[float] = []
        lock = threading.Lock()
        remaining = iter(range(args.api_count))

        def client() -> None:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return
                begin = time.perf_counter()
                post(conn)
                took = time.perf_counter() - begin
                with lock:
                    latencies.append(took)

        begin = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = time.perf_counter() - begin
        if len(latencies) != args.api_count:
            raise SystemExit(f"only {len(latencies)} of {args.api_count} requests answered")

        # Beside it, in this process on the same database: the archive read and the engine.
        from db import make_engine, make_session_factory
        from signing_api.verification import verify_signature
        from signing_api.verification.archive import trust_from_archive
        from signing_api.verification.inputs import NamedBytes

        sessions = make_session_factory(make_engine(url))
        moment = datetime.now(UTC)
        sig_in, doc_in = NamedBytes("report.p7s", signature), NamedBytes("report.xml", document)
        with sessions() as session:
            archive = trust_from_archive(session)
            n = max(10, args.api_count // 2)
            t_archive = _timed(n, lambda: trust_from_archive(session))

            def engine() -> None:
                trust = trust_from_archive(session)
                verify_signature(signature=sig_in, document=doc_in, trust=trust, now=moment)

            t_engine = _timed(n, engine)
        os.environ.clear()
        os.environ.update(saved)

        proof = first["report"]["signatures"][0]["signing_time"]["proof"]
        print(
            f"3. through the API: POST /api/v1/disputes, gunicorn 2 workers, PostgreSQL, "
            f"{args.clients} clients, {args.api_count} requests; CAdES-B-T (server's TSA) by a "
            f"RuToken certificate of the server's CA; archive: {len(archive.crls)} CRLs, "
            f"{len(archive.anchors) + len(archive.intermediates)} CA certificates; verdict "
            f"{first['indication']}, time from {proof}"
        )
        print(f"   disputes (verify, charge, store the case):   {_rate(args.api_count, total)}")
        print(f"     latency p50 {1000 * statistics.median(latencies):.1f} ms, "
              f"p95 {1000 * _percentile(latencies, 0.95):.1f} ms")  # fmt: skip
        print(f"   in-process, same DB: trust_from_archive:     {_rate(n, t_archive)}")
        print(f"     trust_from_archive + verify_signature:     {_rate(n, t_engine)}")
    finally:
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
    parser.add_argument("--crls", type=int, default=30, help="CRLs per CA in the archive")
    parser.add_argument("--count", type=int, default=200, help="in-process and openssl runs")
    parser.add_argument("--cli-count", type=int, default=5, help="`tamga verify` processes")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--api-count", type=int, default=100)
    parser.add_argument("--skip-api", action="store_true", help="parts 1 and 2 only")
    parser.add_argument("--database-url", default=os.environ.get(
        "TAMGA_TEST_DATABASE_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
    ))  # fmt: skip
    args = parser.parse_args()
    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True)
    print(
        f"Tamga dispute verification benchmark — {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {openssl.stdout.strip()}, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory(prefix="tamga-bench-verify-files-") as work:
        engine_and_openssl(args, Path(work))
    if not args.skip_api:
        through_the_api(args)
    print(f"load at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

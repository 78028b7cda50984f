"""Signatures per second through the CSC API (``signHash`` over HTTP), beside raw HSM signatures.

    .venv/bin/python bench/sign_api.py [--clients 8] [--calls N] [--seconds 3]
                                       [--breakdown-calls 40] [--database-url URL]

Creates a throwaway PostgreSQL database (``tamga_bench_<random>``) through the admin URL
(``--database-url``, else ``TAMGA_TEST_DATABASE_URL``, else the local ``postgres`` role) and a
throwaway ``TAMGA_HOME``, runs ``tamga init`` on them (SoftHSM2 tokens, root and issuing CA,
migrations) and starts ``tamga serve`` on a free loopback port: real gunicorn, 2 workers of 4
threads, the audit journal on as always, ``TAMGA_MAINTENANCE_WINDOW=off``. In this process it
registers a subscriber and two holders, issues one cloud ``head`` certificate with an EC P-256
key and one with an RSA-2048 key (the first one paid through its payment account, as the first
certificate of a subscriber is), funds the balance, and creates a ``portal`` API client with the
subscriber in its scope.

**The holder's interactive step is not measured.** In production every ``signHash`` follows a
``credentials/authorize`` with the holder's PIN and a TOTP code, and a TOTP code is usable once
per 30-second step by design, so no load generator can mint SADs quickly. The harness therefore
inserts pre-authorised ``SignatureActivation`` rows straight into the database, exactly what a
granted ``authorize`` stores: each with its own random SAD (only its SHA-256 is stored), its own
random SHA-256 hashes, bound to the credential, the portal client, the subscriber's INN, role
``head``, expiring an hour later. Every ``signHash`` call then goes through everything the real
one does: bearer-token authentication, the credential lookup in the portal's scope, the SAD's
conditional consumption, the per-role and billing checks, the HSM signatures, and one evidence
row (``cloud_signatures``) per signature plus one audit journal entry per call, in one transaction.

For each key (P-256, RSA-2048), each number of hashes per call (1 and 10) and each client count
(``--clients``, a comma-separated list; default 8), that many client threads, each with its own
keep-alive ``http.client`` connection, send ``signHash`` calls, one SAD each: a warm-up of two
calls per client, then ``--calls`` calls (default 300 with 1 hash, 100 with 10). Printed:
signatures/s (hashes signed per second), calls/s, and latency p50/p95. One call in ten has its
first and last signatures verified afterwards with the certificate's public key, and the number
of evidence rows is checked against the number of hashes sent.

Beside them, measured in the same run on the same token and the same keys, the raw baseline:
``HSMToken.sign_digest`` in 1 process and in 2 processes (as the 2 gunicorn workers), started
together, for ``--seconds`` each; the ratio API ÷ raw (2 processes) and the targets of the issue
(RSA-2048: 1 hash per call at least 50 % of raw, 10 hashes per call at least 80 %).

Last, to see where a call's time goes, the same ``signHash`` calls in this process through the
real Flask app (``create_app`` and its test client: no HTTP, no gunicorn), one at a time, timed
from engine and session events and a wrapper around ``sign_digest`` (nothing in production code
is touched): SQL statements per call and their time, commit time, HSM time, the rest (Flask,
JSON, ORM, Python), and how long the audit journal's head row is held (from its ``SELECT ...
FOR UPDATE`` to the commit): every signing call of every worker takes that row in turn, so
``1000 / held`` calls per second is the most the journal lets through.

The server is stopped and the database dropped at the end, whatever happens; the home directory
is left for inspection (its path is printed, with the server log in it). Nothing is asserted:
the figures go to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import platform
import queue
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.hashes import SHA256
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
TAMGA = ROOT / ".venv" / "bin" / "tamga"
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
INN = "01234567890123"
SHA256_OID = "2.16.840.1.101.3.4.2.1"
ENDPOINT = "/csc/v1/signatures/signHash"
WARMUP_PER_CLIENT = 2


@dataclass(frozen=True)
class Key:
    name: str  # for the tables
    key_spec: str  # issue_certificate's key_spec
    sign_oid: str  # CSC signAlgo
    scheme: str  # policies.keys.SignatureScheme value
    serial: str = ""
    certificate_id: int = 0
    key_label: str = ""
    der: bytes = b""


KEYS = (
    Key("ECDSA P-256", "ec-p256", "1.2.840.10045.4.3.2", "ecdsa-sha256"),
    Key("RSA-2048 PKCS#1 v1.5", "rsa-2048", "1.2.840.113549.1.1.11", "rsa-pkcs1-sha256"),
)
TARGETS = {("rsa-2048", 1): 50.0, ("rsa-2048", 10): 80.0}  # % of raw, from the issue


# -- the installation ---------------------------------------------------------------------------


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new, empty database (``tamga init`` migrates it); dropped on the way out."""
    from db import make_engine

    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"tamga_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(home: Path, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMGA_")}
    env.pop("SOFTHSM2_CONF", None)
    env |= {
        "TAMGA_HOME": str(home),
        "TAMGA_DATABASE_URL": database_url,
        "TAMGA_BIND": f"127.0.0.1:{port}",
        "TAMGA_WORKERS": "2",
        "TAMGA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TAMGA_MAINTENANCE_WINDOW": "off",
        "TAMGA_RATE_LIMITS": "off",  # the signing path is measured, not the per-token limit
    }
    return env


@contextmanager
def server(env: dict[str, str], home: Path) -> Iterator[tuple[str, int]]:
    """``tamga serve`` until the block ends: (base URL, master pid); log in ``$home/serve.log``."""
    base = env["TAMGA_PUBLIC_URL"]
    with (home / "serve.log").open("w") as log:
        proc = subprocess.Popen([str(TAMGA), "serve"], env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            workers: set[int] = set()
            while len(workers) < 2:  # both workers up and logged in to their tokens
                url = base + "/healthz"
                with (
                    contextlib.suppress(OSError, ValueError, KeyError),
                    urllib.request.urlopen(url, timeout=5) as answer,  # noqa: S310 - our own server
                ):
                    workers.add(json.loads(answer.read())["worker_pid"])
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"tamga serve did not start; see {home / 'serve.log'}")
                time.sleep(0.1)
            yield base, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def setup(rt: Any) -> tuple[list[Key], int, str]:
    """Subscriber, holders, the two certificates, the balance, the portal: (keys, client, token)."""
    import billing
    from billing.models import PaymentAccount
    from ca.errors import PaymentRequired
    from ca.issuance import issue_certificate
    from ca.registry import create_holder, create_subscriber, verify_holder
    from ca.requests import IssueRequest
    from signing_api.clients import ClientSubscriber, create_client

    now = datetime.now(UTC)
    with rt.transaction() as session:
        create_subscriber(
            session,
            {
                "inn": INN,
                "name": "ОсОО Бенч",
                "legal_form": "ОсОО",
                "locality": "Бишкек",
                "email": "bench@test.kg",
            },
            now=now,
            actor="bench",
        )
        holders = [
            create_holder(
                session,
                {
                    "inn": INN,
                    "full_name": f"Бенчев Холдер{i}",
                    "position": "Директор",
                    "passport_series": "ID1234567",
                    "email": f"h{i}@test.kg",
                    "phone": "+996555123456",
                },
                now=now,
                actor="bench",
            ).id
            for i in range(len(KEYS))
        ]
        for holder in holders:  # §3.3: certificates only for holders an officer verified
            verify_holder(session, holder, document="bench: office file B-1", now=now,
                          actor="bench")  # fmt: skip
        billing.record_payment(session, channel="cash", provider="", external_id="bench",
                               account=INN, amount=10**12, paid_at=now, now=now,
                               actor="bench")  # fmt: skip
        portal = create_client(session, name="bench-portal", role="portal", now=now, actor="bench")
        session.add(
            ClientSubscriber(
                client_id=portal.client_id, inn=INN, granted_at=now, granted_by="bench"
            )
        )

    def issue(holder: int, key: Key) -> Key:
        issued = issue_certificate(
            rt.transaction,
            ca_token=rt.ca_token,
            cloud_token=rt.cloud_token,
            request=IssueRequest.parse(
                holder_id=holder, role="head", storage="cloud", key_spec=key.key_spec
            ),
            public_url=rt.config.public_url,
            now=datetime.now(UTC),
            actor="bench",
        ).certificate
        assert issued.key_label is not None and issued.der is not None
        return Key(key.name, key.key_spec, key.sign_oid, key.scheme, issued.serial, issued.id,
                   issued.key_label, issued.der)  # fmt: skip

    keys = []
    for holder, key in zip(holders, KEYS, strict=True):
        try:
            keys.append(issue(holder, key))
        except PaymentRequired:  # the first certificate is paid through its payment account
            with rt.transaction() as session:
                pa = session.query(PaymentAccount).one()
                billing.record_payment(session, channel="cash", provider="",
                                       external_id="bench-pa", account=pa.number,
                                       amount=pa.amount_due, paid_at=now, now=now,
                                       actor="bench")  # fmt: skip
            keys.append(issue(holder, key))
    return keys, portal.client_id, portal.token


def mint_sads(rt: Any, key: Key, client_id: int, hashes: int, count: int) -> list[Job]:
    """``count`` pre-authorised SADs, as a granted ``credentials/authorize`` stores them."""
    from signing_api.cloud import SignatureActivation

    now = datetime.now(UTC)
    jobs = [
        Job(secrets.token_urlsafe(32), [os.urandom(32) for _ in range(hashes)])
        for _ in range(count)
    ]
    with rt.transaction() as session:
        session.add_all(
            SignatureActivation(
                sad_sha256=hashlib.sha256(job.sad.encode()).hexdigest(),
                certificate_id=key.certificate_id,
                client_id=client_id,
                hashes=job.b64,
                num_signatures=hashes,
                inn=INN,
                role="head",
                end_user_ip="203.0.113.7",
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
            for job in jobs
        )
    return jobs


# -- CPU time from /proc: who spent the machine's two cores -------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds so far: gunicorn (master and workers), this database's PostgreSQL backends,
    this process (the load generator), and the whole machine's busy and total time."""

    workers: float
    postgres: float
    client: float
    busy: float
    total: float

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.workers - other.workers, self.postgres - other.postgres,
                   self.client - other.client, self.busy - other.busy,
                   self.total - other.total)  # fmt: skip


def cpu_now(master: int, database: str) -> Cpu:
    workers = postgres = client = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid, ppid, spent = int(entry.name), int(fields[1]), (int(fields[11]) + int(fields[12]))
        if master in (pid, ppid):
            workers += spent / TICK
        elif cmdline.startswith(b"postgres:") and f" {database} ".encode() in cmdline:
            postgres += spent / TICK
        elif pid == os.getpid():
            client += spent / TICK
    ticks = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return Cpu(workers, postgres, client, (sum(ticks) - idle) / TICK, sum(ticks) / TICK)


# -- the API through HTTP -----------------------------------------------------------------------


@dataclass
class Job:
    sad: str
    digests: list[bytes]
    signatures: list[bytes] = field(default_factory=list)

    @property
    def b64(self) -> list[str]:
        return [base64.b64encode(d).decode() for d in self.digests]

    def body(self, key: Key) -> bytes:
        return json.dumps(
            {
                "credentialID": key.serial,
                "SAD": self.sad,
                "hash": self.b64,
                "hashAlgo": SHA256_OID,
                "signAlgo": key.sign_oid,
            }
        ).encode()


@dataclass(frozen=True)
class ApiResult:
    key: Key
    hashes: int
    clients: int
    calls: int
    seconds: float
    latencies_ms: list[float]
    cpu: Cpu

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds

    @property
    def signatures_per_s(self) -> float:
        return self.calls * self.hashes / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _call(connection: http.client.HTTPConnection, key: Key, token: str, job: Job) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request("POST", ENDPOINT, body=job.body(key), headers=headers)
    answer = connection.getresponse()
    data = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"signHash answered {answer.status}: {data[:300]!r}")
    job.signatures = [base64.b64decode(s) for s in json.loads(data)["signatures"]]
    if len(job.signatures) != len(job.digests):
        raise RuntimeError("signHash returned the wrong number of signatures")


def measure_api(
    base: str,
    token: str,
    key: Key,
    hashes: int,
    clients: int,
    warmup: list[Job],
    jobs: list[Job],
    cpu: Callable[[], Cpu],
) -> ApiResult:
    host, port = base.removeprefix("http://").split(":")
    todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    start = threading.Barrier(clients + 1)
    latencies: list[float] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            for job in warmup[index * WARMUP_PER_CLIENT : (index + 1) * WARMUP_PER_CLIENT]:
                _call(connection, key, token, job)  # connects, and warms both workers up
            start.wait(timeout=120)
            mine = []
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    break
                began = time.perf_counter()
                _call(connection, key, token, job)
                mine.append(1000 * (time.perf_counter() - began))
            with lock:
                latencies.extend(mine)
        except BaseException as ex:
            failures.append(ex)
            start.abort()
            raise
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(timeout=120)
    began, cpu_before = time.perf_counter(), cpu()
    for thread in threads:
        thread.join()
    elapsed, cpu_spent = time.perf_counter() - began, cpu() - cpu_before
    if failures:
        raise SystemExit(f"a client failed: {failures[0]!r}")
    return ApiResult(key, hashes, clients, len(jobs), elapsed, latencies, cpu_spent)


def verify_sample(key: Key, jobs: list[Job]) -> int:
    """Verify the first and last signature of one call in ten; how many were verified."""
    public = x509.load_der_x509_certificate(key.der).public_key()
    checked = 0
    for job in jobs[::10]:
        for i in sorted({0, len(job.digests) - 1}):
            digest, signature = job.digests[i], job.signatures[i]
            if isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(signature, digest, ec.ECDSA(utils.Prehashed(SHA256())))
            elif isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(SHA256()))
            else:
                raise SystemExit("unexpected key type")
            checked += 1
    return checked


# -- the raw baseline: HSMToken.sign_digest in 1 and 2 processes -------------------------------


def _raw_child(key: Key, seconds: float, start: Any, results: Any) -> None:
    """One spawned process: log in, check one signature, then sign for ``seconds``."""
    try:
        from policies.keys import SignatureScheme
        from signing_api.config import Config
        from signing_api.runtime import Runtime

        token = Runtime(Config.from_env()).cloud_token
        scheme = SignatureScheme(key.scheme)
        digest = os.urandom(32)
        signature = token.sign_digest(key.key_label, digest, scheme)  # logs in, finds the key
        verify_sample(key, [Job("", [digest], [signature])])
        start.wait(timeout=120)
        count, began = 0, time.perf_counter()
        deadline = began + seconds
        while time.perf_counter() < deadline:
            token.sign_digest(key.key_label, digest, scheme)
            count += 1
        results.put(("ok", count / (time.perf_counter() - began)))
    except BaseException as ex:
        results.put(("error", f"{type(ex).__name__}: {ex}"))
        start.abort()
        raise


def measure_raw(key: Key, procs: int, seconds: float) -> float:
    """Signatures/s of ``procs`` processes signing together, added up."""
    ctx = mp.get_context("spawn")  # this process has used PKCS#11: no fork
    start, results = ctx.Barrier(procs + 1), ctx.Queue()
    children = [
        ctx.Process(target=_raw_child, args=(key, seconds, start, results), daemon=True)
        for _ in range(procs)
    ]
    for child in children:
        child.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(timeout=120)
    rate = 0.0
    try:
        for _ in children:
            status, value = results.get(timeout=seconds + 120)
            if status != "ok":
                raise SystemExit(f"raw baseline child failed: {value}")
            rate += value
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
    return rate


# -- where a call's time goes: the real app in this process, one call at a time --------------


@dataclass
class Probe:
    """Per-call sums from engine/session events and a wrapper around ``sign_digest``."""

    statements: int = 0
    sql: float = 0.0
    commit: float = 0.0
    hsm: float = 0.0
    audit_held: float = 0.0
    _started: float = 0.0
    _commit_started: float = 0.0
    _audit_locked: float | None = None

    def install(self, rt: Any) -> None:
        event.listen(rt.engine, "before_cursor_execute", self._before)
        event.listen(rt.engine, "after_cursor_execute", self._after)
        event.listen(rt.engine, "commit", self._before_commit)
        event.listen(rt.session_factory, "after_commit", self._after_commit)
        token = rt.cloud_token
        sign = token.sign_digest

        def timed(*args: Any) -> bytes:
            began = time.perf_counter()
            try:
                return sign(*args)  # type: ignore[no-any-return]
            finally:
                self.hsm += time.perf_counter() - began

        token.sign_digest = timed  # on this instance only

    def reset(self) -> None:
        self.statements, self.sql, self.commit, self.hsm, self.audit_held = 0, 0.0, 0.0, 0.0, 0.0

    def _before(self, *_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        now = time.perf_counter()
        self.statements += 1
        self.sql += now - self._started
        audit_head = "FROM audit_head" in statement and statement.rstrip().endswith("FOR UPDATE")
        if audit_head and self._audit_locked is None:  # held from the first append on
            self._audit_locked = now

    def _before_commit(self, *_: Any) -> None:
        self._commit_started = time.perf_counter()

    def _after_commit(self, *_: Any) -> None:
        now = time.perf_counter()
        self.commit += now - self._commit_started
        if self._audit_locked is not None:
            self.audit_held += now - self._audit_locked
            self._audit_locked = None


def breakdown(
    rt_setup: Any, key: Key, client_id: int, token: str, hashes: int, calls: int
) -> list[str]:
    from signing_api.app import create_app
    from signing_api.config import Config

    app = create_app(Config.from_env())
    rt = app.extensions["tamga"]
    probe = Probe()
    probe.install(rt)
    web = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    jobs = mint_sads(rt_setup, key, client_id, hashes, calls + 3)
    total = 0.0
    for i, job in enumerate(jobs):
        if i == 3:  # after three calls: connections open, key found, code warm
            probe.reset()
            total = 0.0
        began = time.perf_counter()
        answer = web.post(ENDPOINT, data=job.body(key), headers=headers,
                          content_type="application/json")  # fmt: skip
        total += time.perf_counter() - began
        if answer.status_code != 200:
            raise SystemExit(f"in-process signHash answered {answer.status_code}: {answer.json}")
    rt.engine.dispose()
    per = 1000 / calls
    ms = total * per
    rest = ms - (probe.sql + probe.commit + probe.hsm) * per
    held = probe.audit_held * per
    return [
        key.name, str(hashes), f"{ms:.2f}", f"{probe.statements / calls:.1f}",
        f"{probe.sql * per:.2f}", f"{probe.commit * per:.2f}", f"{probe.hsm * per:.2f}",
        f"{rest:.2f}", f"{held:.2f}", f"{1000 / held:,.0f}", f"{hashes * 1000 / held:,.0f}",
    ]  # fmt: skip


# -- main -----------------------------------------------------------------------------------------


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", default="8", help="client thread counts, e.g. 1,8 (8)")
    parser.add_argument("--calls", type=int, help="calls per figure (300 with 1 hash, 100 with 10)")
    parser.add_argument("--seconds", type=float, default=3.0, help="raw baseline duration (3)")
    parser.add_argument("--breakdown-calls", type=int, default=40, help="in-process calls (40)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TAMGA_TEST_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL role allowed to CREATE DATABASE (TAMGA_TEST_DATABASE_URL)",
    )
    args = parser.parse_args()
    try:
        args.client_counts = [int(n) for n in args.clients.split(",")]
    except ValueError:
        parser.error("--clients is a comma-separated list of numbers, e.g. 1,8")
    if min(args.client_counts) < 1 or (args.calls is not None and args.calls < 1):
        parser.error("--clients and --calls must be at least 1")
    return args


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return " | ".join([cells[0].ljust(widths[0]), *rest])

    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def report(results: list[ApiResult], raw: dict[str, tuple[float, float]]) -> None:
    """The API figures beside the raw ones, then the CPU each call cost."""
    rows = []
    for r in results:
        base_rate = raw[r.key.key_spec][1]
        ratio = 100 * r.signatures_per_s / base_rate
        target = TARGETS.get((r.key.key_spec, r.hashes))
        verdict = (
            "" if target is None else f"≥{target:.0f}%: {'met' if ratio >= target else 'MISSED'}"
        )
        rows.append([
            r.key.name, str(r.hashes), str(r.clients), str(r.calls),
            f"{r.signatures_per_s:,.1f}", f"{r.calls_per_s:,.1f}",
            f"{r.percentile(50):.1f}", f"{r.percentile(95):.1f}",
            f"{base_rate:,.0f}", f"{ratio:.2f}%", verdict,
        ])  # fmt: skip
    _table(
        ["key", "hashes/call", "clients", "calls", "signatures/s", "calls/s", "p50 ms",
         "p95 ms", "raw 2 procs/s", "API/raw", "target"],
        rows,
    )  # fmt: skip
    print()
    print("CPU during the same measurements (from /proc), ms per call:")
    cpu_rows = []
    for r in results:
        per, c = 1000 / r.calls, r.cpu
        other = c.busy - c.workers - c.postgres - c.client
        cpu_rows.append([
            r.key.name, str(r.hashes), str(r.clients), f"{c.workers * per:.1f}",
            f"{c.postgres * per:.1f}", f"{c.client * per:.1f}", f"{other * per:.1f}",
            f"{100 * c.busy / c.total:.0f}%",
        ])  # fmt: skip
    _table(
        ["key", "hashes/call", "clients", "gunicorn", "postgres", "client", "other",
         "machine busy"],
        cpu_rows,
    )  # fmt: skip
    print(
        "  gunicorn: master and workers; postgres: this database's backends; client: this"
        " process's threads;\n  other: the rest of the machine's busy time (PostgreSQL's"
        " WAL writer, anything else running); machine busy: of all CPUs"
    )


def run(args: argparse.Namespace, database_url: str, home: Path) -> None:
    env = _env(home, database_url, _free_port())
    subprocess.run([str(TAMGA), "init"], env=env, check=True, capture_output=True)
    os.environ.clear()
    os.environ.update(env)

    from signing_api.cloud import CloudSignature
    from signing_api.config import Config
    from signing_api.runtime import Runtime

    rt = Runtime(Config.from_env())
    keys, client_id, token = setup(rt)
    print(
        f"Tamga CSC signHash benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL; load average {os.getloadavg()[0]:.2f} at the start"
    )
    print("raw HSMToken.sign_digest on tamga-cloud, same keys (spawned processes):", flush=True)
    raw: dict[str, tuple[float, float]] = {}
    for key in keys:
        raw[key.key_spec] = (measure_raw(key, 1, args.seconds), measure_raw(key, 2, args.seconds))
        print(
            f"  {key.name:<21} 1 process {raw[key.key_spec][0]:8,.0f}/s   "
            f"2 processes {raw[key.key_spec][1]:8,.0f}/s",
            flush=True,
        )

    results: list[ApiResult] = []
    verified = sent = 0
    database = make_url(database_url).database or ""
    with server(env, home) as (base, master):
        print(f"tamga serve on {base}: 2 gunicorn workers × 4 threads; clients are threads "
              "of this process, one keep-alive connection each", flush=True)  # fmt: skip
        for key in keys:
            for hashes in (1, 10):
                calls = args.calls or (300 if hashes == 1 else 100)
                for clients in args.client_counts:
                    warmup = mint_sads(rt, key, client_id, hashes, clients * WARMUP_PER_CLIENT)
                    jobs = mint_sads(rt, key, client_id, hashes, calls)
                    result = measure_api(base, token, key, hashes, clients, warmup, jobs,
                                         lambda: cpu_now(master, database))  # fmt: skip
                    verified += verify_sample(key, jobs)
                    sent += (len(warmup) + len(jobs)) * hashes
                    results.append(result)
                    print(
                        f"  {key.name:<21} {hashes:>2} hash/call {clients:>2} clients: "
                        f"{result.signatures_per_s:7.1f} signatures/s",
                        file=sys.stderr,
                        flush=True,
                    )
        with rt.transaction() as session:
            evidence = session.scalar(select(func.count()).select_from(CloudSignature))
        if evidence != sent:
            raise SystemExit(f"{sent} hashes signed but {evidence} evidence rows")

        print()
        report(results, raw)
        print(
            f"({verified} signatures verified with the certificates' public keys; "
            f"{evidence} evidence rows for {sent} hashes sent, warm-up included)"
        )
        print()
        print(f"where a call's time goes: the real app in this process, one call at a time, "
              f"{args.breakdown_calls} calls; ms per call (server idle)")  # fmt: skip
        _table(
            ["key", "hashes/call", "total", "stmts", "SQL", "commit", "HSM", "rest",
             "audit held", "calls/s bound", "sigs/s bound"],
            [breakdown(rt, key, client_id, token, hashes, args.breakdown_calls)
             for key in keys for hashes in (1, 10)],
        )  # fmt: skip
    print(
        "  stmts/SQL: SQL statements per call and their time (auth and signing transactions);"
        " commit: the two COMMITs;\n  HSM: sign_digest; rest: Flask, JSON, ORM, Python;"
        " audit held: from SELECT ... FROM audit_head FOR UPDATE to the commit;\n"
        "  bound: 1000 / audit held, the most calls (and hashes) per second the journal's"
        " head row lets through, all workers together"
    )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    rt.engine.dispose()


def main() -> None:
    args = _parse_args()
    home = Path(tempfile.mkdtemp(prefix="tamga-bench-sign-"))
    try:
        with scratch_database(args.database_url) as url:
            run(args, url, home)
    finally:
        print(f"(home {home} left for inspection; server log in serve.log)", file=sys.stderr)


if __name__ == "__main__":
    main()

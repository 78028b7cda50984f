"""Credits and charges per second through Tamga's ledger on PostgreSQL, beside raw commits.

    .venv/bin/python bench/ledger.py [--ops 400] [--clients 1,8,32] [--accounts 1000]
                                     [--database-url URL]

Creates a throwaway database (``tamga_bench_<random>``) through the admin URL (``--database-url``,
else ``TAMGA_TEST_DATABASE_URL``, else the local ``postgres`` role), migrates it with
``db.upgrade``, opens one "hot" subscriber and ``--accounts`` others, funds them, and then for
each operation (``billing.credit``, ``billing.charge``), each target (the hot account alone; a
random one of the many) and each number of clients (threads, each with its own connection and
its own transaction per operation) times ``--ops`` operations. The database is dropped at the
end, whatever happens.

Beside each figure it prints the raw baseline: the same number of bare single-row
``INSERT ...; COMMIT`` transactions through the same engine with the same number of clients,
i.e. what PostgreSQL and the driver do by themselves on this machine.

Every money event appends to the audit journal in its own transaction. Until issue #16 every
append locked the single ``audit_head`` row until the commit: writers of all subscribers queued
there. Now appends lock nothing, and a sequencer process runs beside the clients for the whole
run, as ``tamga worker`` does (``bench/audit.py``); at the end the script waits for it to number
every entry and verifies the journal. The script times, from engine events and without
touching production code, how long each operation waited for the subscriber's row lock
(``customer_accounts ... FOR UPDATE``) and for the audit head (zero since issue #16), and how
long it then held each until its commit: ``1000 / held`` is the most operations per second that
row lets through (the subscriber's row for operations on one subscriber).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from audit import sequencer_process, wait_until_sequenced
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import billing
from billing import ledger
from db import make_engine, make_session_factory, upgrade
from db.audit import verify_journal
from policies.tariffs import Revenue

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ACTOR = "bench"
HOT = "10000000000000"
FUNDING = 10**11  # tyiyn per account: no charge of the run can be refused
OPERATIONS = ("credit", "charge")
BATCH = 100  # credits per transaction of billing.credit_many


# -- timing the two row locks through engine events -------------------------------------------


@dataclass
class Probe:
    """Seconds spent in the two ``SELECT ... FOR UPDATE`` and then holding their rows.

    A row lock is held from the moment its ``SELECT ... FOR UPDATE`` returns to the end of the
    commit; ``_after`` notes the first moment, :meth:`committed` the second.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)
    customer_wait: float = 0.0
    customer_held: float = 0.0
    audit_wait: float = 0.0
    audit_held: float = 0.0

    def install(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def reset(self) -> None:
        with self.lock:
            self.customer_wait = self.customer_held = self.audit_wait = self.audit_held = 0.0

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.local.started = time.perf_counter()

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.rstrip().endswith("FOR UPDATE"):
            return
        now = time.perf_counter()
        spent = now - self.local.started
        if "FROM audit_head" in statement:
            self.local.audit_locked_at = now
            with self.lock:
                self.audit_wait += spent
        elif "FROM customer_accounts" in statement:
            self.local.customer_locked_at = now
            with self.lock:
                self.customer_wait += spent

    def committed(self) -> None:
        """Called after each commit: the rows this transaction locked are free again."""
        now = time.perf_counter()
        customer = getattr(self.local, "customer_locked_at", None)
        audit = getattr(self.local, "audit_locked_at", None)
        self.local.customer_locked_at = self.local.audit_locked_at = None
        with self.lock:
            self.customer_held += 0.0 if customer is None else now - customer
            self.audit_held += 0.0 if audit is None else now - audit


# -- the work ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    operation: str  # credit | charge | raw
    target: str  # hot | many | "" for raw
    clients: int


@dataclass(frozen=True)
class Result:
    config: Config
    rate: float  # operations per second, all clients together
    latency_ms: float  # mean wall time of one operation as its client saw it
    customer_wait_ms: float  # per operation
    customer_held_ms: float
    audit_wait_ms: float
    audit_held_ms: float


@dataclass
class Bench:
    engine: Engine
    factory: sessionmaker[Session]
    probe: Probe
    many: tuple[str, ...]
    ops: int
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))

    def operation(self, config: Config, client: int) -> Callable[[int], None]:
        """What client ``client`` does for its ``i``-th operation."""
        rng = random.Random(client)  # noqa: S311 - which account to charge, not a secret
        tag = f"{self.run_id}:{config.operation}:{config.target}:{config.clients}:{client}"
        if config.operation == "raw":
            return self._raw

        def once(i: int) -> None:
            inn = HOT if config.target == "hot" else rng.choice(self.many)
            with self.factory.begin() as s:
                if config.operation == "batch":
                    orders = [
                        billing.CreditOrder(rng.choice(self.many), 100_00, f"{tag}:{i}:{n}",
                                            ledger.CASH, "statement line")
                        for n in range(BATCH)
                    ]  # fmt: skip
                    billing.credit_many(s, orders, now=NOW, actor=ACTOR)
                elif config.operation == "credit":
                    billing.credit(s, inn=inn, amount=100_00, key=f"{tag}:{i}",
                                   source=ledger.CASH, description="top-up", now=NOW,
                                   actor=ACTOR)  # fmt: skip
                else:
                    billing.charge(s, inn=inn, amount=1_00, key=f"{tag}:{i}",
                                   revenue_kind=Revenue.REPORTS, description="report", now=NOW,
                                   actor=ACTOR)  # fmt: skip
            self.probe.committed()

        return once

    def _raw(self, i: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("INSERT INTO bench_raw (n) VALUES (:n)"), {"n": i})

    def measure(self, config: Config) -> Result:
        shares = [self.ops // config.clients + (c < self.ops % config.clients)
                  for c in range(config.clients)]  # fmt: skip
        start = threading.Barrier(config.clients + 1)
        latencies: list[float] = []
        failures: list[BaseException] = []

        def client(index: int) -> None:
            try:
                do = self.operation(config, index)
                with self.engine.connect() as connection:  # connect before the clock starts
                    connection.execute(text("SELECT 1"))
                start.wait(timeout=60)
                began = time.perf_counter()
                for i in range(shares[index]):
                    do(i)
                latencies.append((time.perf_counter() - began) / max(shares[index], 1))
            except BaseException as ex:
                failures.append(ex)
                start.abort()
                raise

        threads = [threading.Thread(target=client, args=(c,)) for c in range(config.clients)]
        for thread in threads:
            thread.start()
        self.probe.reset()
        with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: see below
            start.wait(timeout=60)
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        if failures:
            raise SystemExit(f"a client failed: {failures[0]!r} (its traceback is above)")
        per_op = 1000 / self.ops
        return Result(
            config,
            self.ops / elapsed,
            1000 * sum(latencies) / len(latencies),
            self.probe.customer_wait * per_op,
            self.probe.customer_held * per_op,
            self.probe.audit_wait * per_op,
            self.probe.audit_held * per_op,
        )


# -- the database -----------------------------------------------------------------------------


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new database, migrated to head; dropped on the way out."""
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"tamga_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        migrated = make_engine(url)
        try:
            upgrade(migrated)
            with migrated.begin() as connection:
                connection.exec_driver_sql(
                    "CREATE TABLE bench_raw (id bigserial PRIMARY KEY, n integer NOT NULL)"
                )
        finally:
            migrated.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def bench_engine(url: str, clients: int) -> Engine:
    """``db.make_engine``'s PostgreSQL settings, with a pool of one connection per client."""
    return create_engine(
        make_url(url).set(drivername="postgresql+psycopg"),
        pool_size=clients,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )


def fund_accounts(factory: sessionmaker[Session], inns: list[str]) -> None:
    for start in range(0, len(inns), 200):
        with factory.begin() as s:
            for inn in inns[start : start + 200]:
                billing.open_account(s, inn=inn, name=f"ОсОО «{inn}»", now=NOW, actor=ACTOR)
                billing.credit(s, inn=inn, amount=FUNDING, key=f"fund:{inn}", source=ledger.BANK,
                               description="funding", now=NOW, actor=ACTOR)  # fmt: skip


# -- output -----------------------------------------------------------------------------------


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return " | ".join([first, *rest])

    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _print_machine(engine: Engine, args: argparse.Namespace) -> None:
    with engine.connect() as connection:
        settings = {
            name: connection.exec_driver_sql(f"SHOW {name}").scalar_one()
            for name in ("server_version", "synchronous_commit", "fsync", "max_connections")
        }
    print(f"date:        {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine:     {os.cpu_count()} CPUs, {_cpu_model()}; load {os.getloadavg()[0]:.2f}")
    print(
        f"PostgreSQL:  {settings['server_version']} (synchronous_commit "
        f"{settings['synchronous_commit']}, fsync {settings['fsync']}), over TCP loopback"
    )
    print(
        f"Python:      {platform.python_version()}, SQLAlchemy {metadata.version('sqlalchemy')}, "
        f"psycopg {metadata.version('psycopg')}; clients are threads of one process"
    )
    print(
        f"measuring:   {args.ops} operations per figure; clients {args.clients}; "
        f"1 hot account, or {args.accounts} accounts picked at random"
    )
    print(flush=True)


def _row(result: Result, raw: dict[int, float]) -> list[str]:
    c = result.config
    base = raw[c.clients]
    # The row every operation of this configuration must take in turn: the one subscriber's
    # when all work on it, else the audit head, which every operation takes.
    held = result.customer_held_ms if c.target == "hot" else result.audit_held_ms
    bound = 1000 / held if held else None
    return [
        f"{c.operation}s",
        c.target,
        str(c.clients),
        f"{result.rate:,.0f}",
        f"{base:,.0f}",
        f"{100 * result.rate / base:.1f}%",
        f"{result.latency_ms:.1f}",
        f"{result.customer_wait_ms:.2f}",
        f"{result.customer_held_ms:.2f}",
        f"{result.audit_wait_ms:.2f}",
        f"{result.audit_held_ms:.2f}",
        "n/a" if bound is None else f"{bound:,.0f}",
    ]


def _legend(accounts: int) -> None:
    for line in (
        "ops/s:          ledger operations per second, all clients together",
        "raw commits/s:  bare INSERT of one row + COMMIT, same engine, same number of clients",
        "of raw:         ops/s / raw commits/s",
        "latency:        mean wall time of one operation (its transaction) as its client saw it",
        "customer wait:  ms per operation in SELECT ... FROM customer_accounts ... FOR UPDATE",
        "customer held:  ms per operation from getting that row lock to the end of the commit",
        "audit wait:     ms per operation in SELECT ... FROM audit_head ... FOR UPDATE",
        "audit held:     ms per operation from getting the audit head to the end of the commit",
        "bound/s:        1000 / the held time of the row every operation takes in turn (hot:",
        "                the subscriber's row; many: the audit head): the most ops/s it allows",
        f"hot / many:     every operation on one subscriber / on one of {accounts} at random",
    ):
        print(line)


# -- main -------------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=400, help="operations per figure (400)")
    parser.add_argument("--clients", default="1,8,32", help="client counts (1,8,32)")
    parser.add_argument("--accounts", type=int, default=1000, help="the many accounts (1000)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TAMGA_TEST_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL role allowed to CREATE DATABASE (TAMGA_TEST_DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    try:
        args.client_counts = sorted({int(n) for n in args.clients.split(",")})
    except ValueError:
        parser.error("--clients is a comma-separated list of numbers, e.g. 1,8,32")
    if args.ops < 1 or args.accounts < 1 or min(args.client_counts) < 1:
        parser.error("--ops, --accounts and every client count must be at least 1")
    if make_url(args.database_url).get_backend_name() != "postgresql":
        parser.error("the ledger benchmark runs on PostgreSQL: give a postgresql:// URL")
    return args


def run(args: argparse.Namespace, url: str) -> None:
    engine = bench_engine(url, max(args.client_counts))
    try:
        _print_machine(engine, args)
        probe = Probe()
        probe.install(engine)
        factory = make_session_factory(engine)
        many = tuple(f"2{n:013d}" for n in range(args.accounts))
        print("  funding the accounts", file=sys.stderr, flush=True)
        fund_accounts(factory, [HOT, *many])
        bench = Bench(engine, factory, probe, many, args.ops)
        raw = {n: bench.measure(Config("raw", "", n)).rate for n in args.client_counts}
        print("  raw commits measured", file=sys.stderr, flush=True)
        rows = []
        with sequencer_process(url):
            for operation in OPERATIONS:
                for target in ("hot", "many"):
                    for clients in args.client_counts:
                        result = bench.measure(Config(operation, target, clients))
                        rows.append(_row(result, raw))
                        print(f"  {operation} {target} {clients}", file=sys.stderr, flush=True)
            batches = Bench(engine, factory, probe, many, max(4, args.ops // 20))
            batched = {
                n: batches.measure(Config("batch", "many", n)).rate * BATCH
                for n in args.client_counts
                if n <= 8
            }
            wait_until_sequenced(factory)
        with factory() as session:
            check = verify_journal(session)
        header = ["ledger", "accounts", "clients", "ops/s", "raw commits/s", "of raw",
                  "latency ms", "customer wait ms", "customer held ms", "audit wait ms",
                  "audit held ms", "bound/s"]  # fmt: skip
        _print_table(header, rows)
        print(f"(load average at the end: {os.getloadavg()[0]:.2f})")
        for n, rate in batched.items():
            ratio = rate / raw[n]
            print(f"batched credits (billing.credit_many, {BATCH} per transaction, many"
                  f" accounts), {n} client(s): {rate:,.0f}/s = {ratio:.1f}x raw")  # fmt: skip
        print(f"(audit journal: {check.entries:,} entries numbered by the sequencer process"
              f" beside the clients; chain and tree verified)")  # fmt: skip
        print()
        _legend(args.accounts)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    with scratch_database(args.database_url) as url:
        run(args, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())

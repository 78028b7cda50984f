"""Audit journal throughput (issue #16): appends, sequencing, and the sequencing delay under load.

Three figures, each beside its raw baseline, on a scratch PostgreSQL database (or SQLite with
``--sqlite``):

1. **Sequencing**: ``--entries`` committed entries wait (written untimed), then
   ``db.sequencer.run_pending`` numbers, chains and Merkle-integrates them in batches of
   ``--batch``. Beside it: the same entries' hashing and tree building in Python alone (no
   database), and a bare ``executemany`` UPDATE of as many rows (the database's part alone).
2. **Appends**: ``--writers`` threads each commit transactions of one ``db.audit.append`` (what a
   money event adds), while a sequencer process runs as ``tamga worker``'s thread does. Beside
   it: bare single-row ``INSERT ... COMMIT`` transactions from as many threads.
3. **Delay**: for every entry of (2), the time from its commit to the sequencer's commit that
   numbered it: p50, p99 and the maximum (the issue's bound is 1 s under load).

Usage::

    .venv/bin/python bench/audit.py                       # PostgreSQL (TAMGA_TEST_DATABASE_URL)
    .venv/bin/python bench/audit.py --sqlite              # the embedded default
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's packages before bench/'s own modules

from db import append, make_engine, make_session_factory, upgrade  # noqa: E402
from db.audit import AuditEntry, chain_hash, leaf_of, verify_journal  # noqa: E402
from db.merkle import Frontier, leaf_hash  # noqa: E402
from db.sequencer import run_pending  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2026, 12, 3, tzinfo=UTC)

_SEQUENCER = """
import sys, time
from db import make_engine, make_session_factory
from db.sequencer import run_pending
factory = make_session_factory(make_engine(sys.argv[1]), inline_audit=False)
stop = sys.argv[2]
import os
print("ready", flush=True)
while not os.path.exists(stop):
    if run_pending(factory, limit=int(sys.argv[3])) == 0:
        time.sleep(float(sys.argv[4]))
"""


@contextmanager
def sequencer_process(url: str, batch: int = 5000, poll: float = 0.2) -> Iterator[None]:
    """A sequencer in its own process, as `tamga worker`'s thread runs it, until the block ends;
    it has imported everything before the block starts."""
    stop = Path(tempfile.mkdtemp()) / "stop"
    process = subprocess.Popen(
        [sys.executable, "-c", _SEQUENCER, url, str(stop), str(batch), str(poll)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    try:
        yield
    finally:
        stop.touch()
        process.wait(timeout=60)


@contextmanager
def scratch(args: argparse.Namespace) -> Iterator[str]:
    if args.sqlite:
        with tempfile.TemporaryDirectory() as home:
            url = f"sqlite:///{home}/bench.db"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            yield url
        return
    admin = make_engine(args.database_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"tamga_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(args.database_url).set(database=name).render_as_string(False)
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE bench_raw (id bigserial PRIMARY KEY, n int)")
        engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def write_backlog(factory: object, count: int) -> None:
    for start in range(0, count, 1000):
        with factory.begin() as session:  # type: ignore[attr-defined]
            for n in range(start, min(count, start + 1000)):
                append(
                    session,
                    actor="bench",
                    action="payment.credited",
                    object=f"account:{n % 1000}",
                    details={"amount": n, "channel": "cash", "receipt": f"r-{n}"},
                    now=T0,
                )


def sequencing(url: str, args: argparse.Namespace) -> list[str]:
    engine = make_engine(url)
    factory = make_session_factory(engine, inline_audit=False)
    write_backlog(factory, args.entries)
    started = time.perf_counter()
    done = run_pending(factory, limit=args.batch)
    seconds = time.perf_counter() - started
    assert done == args.entries, done
    # Python alone: the same content hashes, chain and tree, no database.
    with factory() as session:
        rows = session.execute(select(AuditEntry.__table__).order_by(AuditEntry.id)).all()
    started = time.perf_counter()
    frontier, prev = Frontier(), "0" * 64
    for row in rows:
        leaf = leaf_of(row)
        prev = chain_hash(leaf, prev)
        frontier.append(leaf_hash(leaf))
    python_only = time.perf_counter() - started
    # The database alone: as many one-row UPDATEs, batched as the sequencer sends them.
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE bench_upd (id integer PRIMARY KEY, h text)")
        connection.execute(
            text("INSERT INTO bench_upd (id) VALUES (:i)"), [{"i": i} for i in range(len(rows))]
        )
    started = time.perf_counter()
    for start in range(0, len(rows), args.batch):
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE bench_upd SET h = :h WHERE id = :i"),
                [{"i": i, "h": "x" * 64} for i in range(start, min(len(rows), start + args.batch))],
            )
    database_only = time.perf_counter() - started
    with factory() as session:
        check = verify_journal(session)
    engine.dispose()
    return [
        f"sequencing: {args.entries:,} waiting entries integrated in {seconds:.2f} s:"
        f" {args.entries / seconds:,.0f} entries/s (batches of {args.batch});"
        f" journal verified ({check.entries:,} entries, tree {check.tree_size:,})",
        f"  raw, Python alone (content, chain and tree hashes): {len(rows) / python_only:,.0f}/s",
        f"  raw, database alone (executemany UPDATE, same batches): "
        f"{len(rows) / database_only:,.0f} rows/s",
    ]


def appends(url: str, args: argparse.Namespace) -> list[str]:
    engine = make_engine(url)
    factory = make_session_factory(engine, inline_audit=False)
    with factory() as session:
        first = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0
    committed: dict[int, float] = {}
    numbered: list[tuple[float, int]] = []
    lock = threading.Lock()
    watching = threading.Event()

    def writer(index: int) -> None:
        for n in range(args.appends // args.writers):
            with factory.begin() as session:
                entry = append(
                    session, actor=f"writer-{index}", action="charge.made",
                    object=f"account:{n}", details={"amount": n}, now=T0,
                )  # fmt: skip
            with lock:
                committed[entry.id] = time.perf_counter()

    def watch() -> None:  # when each sequence number became visible
        while not watching.is_set():
            with engine.connect() as connection:
                last = connection.scalar(text("SELECT last_sequence FROM audit_head"))
            numbered.append((time.perf_counter(), int(last or 0)))
            time.sleep(0.01)

    with sequencer_process(url, args.batch, args.poll):
        watcher = threading.Thread(target=watch)
        watcher.start()
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.writers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        total = len(committed)
        wait_until_sequenced(factory)
        watching.set()
        watcher.join()
    with factory() as session:
        sequence_of = dict(
            session.execute(
                select(AuditEntry.id, AuditEntry.sequence).where(AuditEntry.id > first)
            ).all()
        )
        check = verify_journal(session)
    delays = _delays(committed, sequence_of, numbered)
    raw = raw_commits(engine, args) if not args.sqlite else None
    engine.dispose()
    lines = [
        f"appends: {total:,} one-entry transactions from {args.writers} threads in"
        f" {seconds:.2f} s: {total / seconds:,.0f}/s, a sequencer process beside them",
    ]
    if raw is not None:
        lines.append(f"  raw: bare one-row INSERT + COMMIT, {args.writers} threads: {raw:,.0f}/s"
                     f" (appends at {total / seconds / raw:.0%} of raw)")  # fmt: skip
    lines.append(
        f"delay commit -> numbered: p50 {statistics.median(delays) * 1000:.0f} ms,"
        f" p99 {delays[int(len(delays) * 0.99)] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
        f" (poll {args.poll} s); journal verified: {check.entries:,} entries, pending"
        f" {check.pending}"
    )
    return lines


def wait_until_sequenced(factory: object, timeout: float = 60) -> None:
    """Until no committed entry waits for the sequencer."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with factory() as session:  # type: ignore[operator]
            if session.scalar(text(PENDING)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("the sequencer did not catch up")


PENDING = "SELECT count(*) FROM audit_journal WHERE sequence IS NULL"


def _delays(
    committed: dict[int, float], sequence_of: dict[int, int], numbered: list[tuple[float, int]]
) -> list[float]:
    """Seconds from each entry's commit to the first moment the head counted its sequence."""
    delays = []
    for entry_id, at in committed.items():
        sequence = sequence_of[entry_id]
        seen = next(t for t, last in numbered if last >= sequence)
        delays.append(max(0.0, seen - at))
    return sorted(delays)


def raw_commits(engine: object, args: argparse.Namespace) -> float:
    def client() -> None:
        for n in range(args.appends // args.writers):
            with engine.begin() as connection:  # type: ignore[attr-defined]
                connection.execute(text("INSERT INTO bench_raw (n) VALUES (:n)"), {"n": n})

    threads = [threading.Thread(target=client) for _ in range(args.writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (args.appends // args.writers * args.writers) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=50_000, help="backlog to sequence")
    parser.add_argument("--batch", type=int, default=5000, help="entries per sequencer batch")
    parser.add_argument("--appends", type=int, default=4000, help="appends under load")
    parser.add_argument("--writers", type=int, default=8, help="writer threads")
    parser.add_argument("--poll", type=float, default=0.2, help="sequencer sleep when idle")
    parser.add_argument("--sqlite", action="store_true", help="the embedded SQLite database")
    parser.add_argument(
        "--database-url", default=os.environ.get("TAMGA_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
    )
    args = parser.parse_args(argv)
    print(f"{'SQLite' if args.sqlite else 'PostgreSQL'}, {os.cpu_count()} CPUs,"
          f" load average {os.getloadavg()[0]:.2f} at the start")  # fmt: skip
    with scratch(args) as url:
        for line in sequencing(url, args):
            print(line, flush=True)
    with scratch(args) as url:
        for line in appends(url, args):
            print(line, flush=True)
    print(f"(load average at the end: {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ledger under load and through crashes, through the real service functions.

* Concurrency: 32 clients make 10,000 mixed credits, charges, holds, posts and voids on 50
  accounts of a PostgreSQL database, replaying used idempotency keys at random and racing
  duplicates of operations still in flight. The clients are threads, each with its own
  database sessions, in two processes (as gunicorn workers would be; and so that the clients'
  Python work uses both cores); a thread of the test process samples every balance during the
  run. Afterwards every acknowledged operation is in the journal exactly once, nothing else is,
  the balances add up and nothing drifted. A smaller run (4 clients, 1,000 operations) shows
  SQLite serialising the same load correctly, and PostgreSQL too.
* Crashes: an exception between the journal write and the commit leaves nothing behind, and a
  child process killed hard in the middle of its credits leaves only complete transactions;
  retrying the same keys credits nothing twice.

Database errors are never retried here: READ COMMITTED with row locks must not produce
serialisation failures or deadlocks, so any such error fails the test with its traceback.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.selectable import ScalarSelect

import billing
from billing import ledger
from billing.models import (
    CustomerAccount,
    Hold,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Payment,
)
from db import AuditEntry, make_engine, make_session_factory, verify_chain
from db.sequencer import DEFAULT_BATCH, integrate
from policies.tariffs import Revenue

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ACTOR = "load-test"
SEED = 20_261_102
ACCOUNTS = tuple(f"1{n:013d}" for n in range(50))
SOURCES = (ledger.CASH, ledger.clearing("megapay"))
PROCS = 2  # client processes, as gunicorn workers: one per core uses both for Python
CLIENTS, TOTAL_OPS = 32, 10_000  # about 80 s on a quiet 2-core machine (CPU-bound)
SAMPLE_EVERY_S = 0.1


def _rng(stream: int) -> random.Random:
    """A reproducible random stream: the load is the same on every run."""
    return random.Random(SEED * 100 + stream)  # noqa: S311 - a test load, not a secret


# --- the load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One request a client makes; replaying it means sending exactly the same again."""

    kind: str  # credit | charge | hold | post | void
    key: str  # the idempotency key (for post and void: the hold's key)
    inn: str
    amount: int
    source: str = ledger.CASH

    @property
    def ledger_key(self) -> str | None:
        """The key of the ledger transaction it writes, if it writes one."""
        if self.kind in ("credit", "charge"):
            return self.key
        return f"{self.key}:post" if self.kind == "post" else None


@dataclass(frozen=True)
class Outcome:
    """An acknowledged operation: committed without an exception."""

    op: Op
    replayed: bool
    ident: int  # the ledger transaction (credit, charge, post) or the hold (hold, void)
    strict_replay: bool  # sent after its first acknowledgement: must come back replayed


@dataclass
class Load:
    """What the clients share: acknowledged results, refusals, errors, operations in flight."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: list[Outcome] = field(default_factory=list)
    first: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    replayable: list[Op] = field(default_factory=list)
    refusals: list[Op] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    inflight: dict[int, Op] = field(default_factory=dict)

    def record(self, outcome: Outcome) -> None:
        identity = (outcome.op.kind, outcome.op.key)
        with self.lock:
            self.outcomes.append(outcome)
            if not outcome.replayed and identity not in self.first:
                self.first[identity] = outcome
                self.replayable.append(outcome.op)
            first = self.first.get(identity)
        if outcome.strict_replay and (
            not outcome.replayed or first is None or first.ident != outcome.ident
        ):
            self.error(f"replay of {outcome.op} gave {outcome}, first was {first}")

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


def _apply(s: Session, op: Op) -> tuple[bool, int]:
    """Send ``op`` through the billing service functions: (replayed, ident)."""
    if op.kind == "credit":
        p = billing.credit(
            s, inn=op.inn, amount=op.amount, key=op.key, source=op.source,
            description="top-up", now=NOW, actor=ACTOR,
        )  # fmt: skip
        return p.replayed, p.transaction_id
    if op.kind == "charge":
        p = billing.charge(
            s, inn=op.inn, amount=op.amount, key=op.key, revenue_kind=Revenue.REPORTS,
            description="report", now=NOW, actor=ACTOR,
        )  # fmt: skip
        return p.replayed, p.transaction_id
    if op.kind == "hold":
        h = billing.hold(
            s, inn=op.inn, amount=op.amount, key=op.key, revenue_kind=Revenue.STORAGE,
            description="storage", now=NOW, actor=ACTOR,
        )  # fmt: skip
        return h.replayed, h.id
    if op.kind == "post":
        p = billing.post_hold(s, key=op.key, now=NOW, actor=ACTOR)
        return p.replayed, p.transaction_id
    h = billing.void_hold(s, key=op.key, now=NOW, actor=ACTOR)
    return h.replayed, h.id


@dataclass
class Client:
    """One client thread: its own random stream, its own sessions, its own open holds."""

    index: int
    budget: int
    load: Load
    factory: sessionmaker[Session]
    rng: random.Random = field(init=False)
    open_holds: list[Op] = field(default_factory=list)
    made: int = 0

    def __post_init__(self) -> None:
        self.rng = _rng(self.index)

    def run(self) -> None:
        for _ in range(self.budget):
            op, strict = self.next_op()
            self.send(op, strict=strict)

    def next_op(self) -> tuple[Op, bool]:
        """12% replays of acknowledged requests, 3% duplicates of requests still in flight
        (sent by another client at the same time), 9% posts or voids of this client's open
        holds, then 28% charges, 9% holds and the rest credits."""
        roll = self.rng.random()
        if roll < 0.12:
            with self.load.lock:
                used = self.rng.choice(self.load.replayable) if self.load.replayable else None
            if used is not None:
                return used, True
        elif roll < 0.15:
            with self.load.lock:  # the same request sent twice at once, by two clients
                racing = [op for i, op in self.load.inflight.items() if i != self.index]
            if racing:
                return self.rng.choice(racing), False
        elif roll < 0.24 and self.open_holds:
            held = self.open_holds.pop(self.rng.randrange(len(self.open_holds)))
            return Op(self.rng.choice(("post", "void")), held.key, held.inn, held.amount), False
        return self.fresh_op(roll), False

    def fresh_op(self, roll: float) -> Op:
        self.made += 1
        inn = self.rng.choice(ACCOUNTS)
        key = f"{self.index}:{self.made}"
        if roll < 0.24 or roll >= 0.61:
            amount = self.rng.randint(100, 6_000)
            return Op("credit", f"c:{key}", inn, amount, self.rng.choice(SOURCES))
        if roll < 0.52:
            return Op("charge", f"r:{key}", inn, self.rng.randint(100, 7_000))
        return Op("hold", f"h:{key}", inn, self.rng.randint(100, 3_000))

    def send(self, op: Op, *, strict: bool) -> None:
        with self.load.lock:
            self.load.inflight[self.index] = op
        try:
            with self.factory.begin() as s:
                replayed, ident = _apply(s, op)
        except billing.InsufficientFunds:
            with self.load.lock:
                self.load.refusals.append(op)
        except Exception:  # every other failure is reported, never retried
            self.load.error(f"client {self.index}, {op}:\n{traceback.format_exc()}")
        else:
            self.load.record(Outcome(op, replayed, ident, strict))
            if op.kind == "hold" and not replayed:
                self.open_holds.append(op)
        finally:
            with self.load.lock:
                self.load.inflight.pop(self.index, None)


def _customer_journal() -> ScalarSelect[Any]:
    """Correlated subquery: a customer's balance according to the journal."""
    return (
        select(func.coalesce(-func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.inn == CustomerAccount.inn, LedgerAccount.code.like("customer:%"))
        .scalar_subquery()
    )


def _sample_balances(engine: Engine, stop: threading.Event, seen: list[str]) -> int:
    """Read every balance, cache and journal in one statement, until told to stop."""
    query = select(
        CustomerAccount.inn, CustomerAccount.posted, CustomerAccount.held, _customer_journal()
    )
    samples = 0
    while not stop.wait(SAMPLE_EVERY_S):
        with engine.connect() as connection:
            rows = connection.execute(query).all()
            connection.rollback()
        samples += 1
        for inn, posted, held, journal in rows:
            if posted < 0 or held < 0 or posted < held or posted != journal:
                seen.append(f"{inn}: posted {posted}, held {held}, journal {journal}")
    return samples


def _load_engine(url: str, clients: int) -> Engine:
    """An engine with a connection for each of a process's clients.

    ``db.make_engine`` keeps SQLAlchemy's default pool (5 + 10 overflow); on PostgreSQL this is
    the same engine with a pool sized to the clients. SQLite's default pool covers its few.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert clients <= 15
        return make_engine(url)
    return create_engine(
        parsed.set(drivername="postgresql+psycopg"),
        pool_size=clients,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )


def _open_accounts(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        for n, inn in enumerate(ACCOUNTS):
            billing.open_account(s, inn=inn, name=f"ОсОО «Клиент {n}»", now=NOW, actor=ACTOR)


@dataclass
class Report:
    """What one client process sends back."""

    outcomes: list[Outcome]
    refusals: list[Op]
    errors: list[str]


def _client_process(
    url: str, indices: list[int], budgets: list[int], start: Any, reports: Any
) -> None:
    """A worker process (as one gunicorn worker would be): its clients are threads."""
    try:
        engine = _load_engine(url, len(indices))
        load, factory = Load(), make_session_factory(engine)
        clients = [Client(i, n, load, factory) for i, n in zip(indices, budgets, strict=True)]
        threads = [threading.Thread(target=client.run) for client in clients]
        start.wait(timeout=120)  # every process is up: go
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        engine.dispose()
        reports.put(Report(load.outcomes, load.refusals, load.errors))
    except BaseException:
        reports.put(Report([], [], [f"client process:\n{traceback.format_exc()}"]))
        raise


def _hammer(url: str, procs: int, clients: int, total: int) -> tuple[Load, int, float]:
    """Run the load in ``procs`` processes of threads; (results, balance samples, seconds)."""
    ctx = mp.get_context("spawn")  # never fork a process that has threads and connections
    budgets = [total // clients + (i < total % clients) for i in range(clients)]
    start, queue = ctx.Barrier(procs + 1), ctx.Queue()
    children = [
        ctx.Process(
            target=_client_process,
            args=(url, list(range(clients))[p::procs], budgets[p::procs], start, queue),
        )
        for p in range(procs)
    ]
    for child in children:
        child.start()
    sampler_engine, stop, seen, samples = make_engine(url), threading.Event(), list[str](), []
    sampler = threading.Thread(
        target=lambda: samples.append(_sample_balances(sampler_engine, stop, seen))
    )
    try:
        start.wait(timeout=120)
        began = time.perf_counter()
        sampler.start()
        reports = [queue.get(timeout=300) for _ in children]
        elapsed = time.perf_counter() - began
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join()
        sampler_engine.dispose()
        for child in children:
            child.join(timeout=30)
            if child.is_alive():  # a failure above left it waiting: it reported nothing
                child.kill()
    load = Load()
    for report in reports:
        load.outcomes += report.outcomes
        load.refusals += report.refusals
        load.errors += report.errors
        for outcome in report.outcomes:
            if not outcome.replayed:
                load.first.setdefault((outcome.op.kind, outcome.op.key), outcome)
    load.errors.extend(f"balance sample: {line}" for line in seen)
    return load, samples[0] if samples else 0, elapsed


# --- what must hold afterwards ---------------------------------------------------------------


def _check_replays(load: Load) -> dict[tuple[str, str], Outcome]:
    """Every operation acknowledged once as new; all its acknowledgements agree."""
    by_identity: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for outcome in load.outcomes:
        by_identity[(outcome.op.kind, outcome.op.key)].append(outcome)
    for identity, outcomes in by_identity.items():
        assert sum(not o.replayed for o in outcomes) == 1, (identity, outcomes)
        assert len({o.ident for o in outcomes}) == 1, (identity, outcomes)
    assert set(by_identity) == set(load.first)
    return load.first


def _expected_balances(first: dict[tuple[str, str], Outcome]) -> dict[str, tuple[int, int]]:
    """(posted, held) of every account from the acknowledged operations alone."""
    posted: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for (kind, _), outcome in first.items():
        op = outcome.op
        posted[op.inn] += {"credit": op.amount, "charge": -op.amount, "post": -op.amount}.get(
            kind, 0
        )
        held[op.inn] += {"hold": op.amount, "post": -op.amount, "void": -op.amount}.get(kind, 0)
    return {inn: (posted[inn], held[inn]) for inn in ACCOUNTS}


def _check_journal(s: Session, first: dict[tuple[str, str], Outcome]) -> None:
    """The journal holds every acknowledged operation exactly once, and nothing else."""
    rows = s.execute(select(LedgerTransaction.idempotency_key, LedgerTransaction.id)).all()
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys))
    expected = {o.op.ledger_key: o.ident for o in first.values() if o.op.ledger_key}
    assert dict(rows) == expected
    settled = {key: kind for kind, key in first if kind in ("post", "void")}
    holds = {key: (hid, status) for key, hid, status in s.execute(
        select(Hold.idempotency_key, Hold.id, Hold.status))}  # fmt: skip
    expected_holds = {
        key: (o.ident, {"post": "posted", "void": "voided"}.get(settled.get(key, ""), "open"))
        for (kind, key), o in first.items()
        if kind == "hold"
    }
    assert holds == expected_holds
    balances = {r.inn: (r.posted, r.held) for r in s.scalars(select(CustomerAccount))}
    assert balances == _expected_balances(first)
    assert all(posted >= held >= 0 for posted, held in balances.values())


def _numbered(s: Session) -> int:
    """Run the audit sequencer (tamga worker's job: processes here append on PostgreSQL without
    numbering), then verify the chain; the entries numbered."""
    while integrate(s) == DEFAULT_BATCH:  # in this session's transaction (SQLite: its lock)
        pass
    return verify_chain(s)


def _check_totals(s: Session, first: dict[tuple[str, str], Outcome]) -> None:
    """Sum of balances = credits - charges; the operator's side of each leg agrees."""
    total: Counter[str] = Counter()
    for (kind, _), outcome in first.items():
        total[kind] += outcome.op.amount
    sources = sum(ledger.account_balance(s, code) for code in SOURCES)
    assert sources == total["credit"]
    posted = s.scalar(select(func.sum(CustomerAccount.posted)))
    assert posted == total["credit"] - total["charge"] - total["post"]
    assert -ledger.account_balance(s, ledger.revenue(Revenue.REPORTS)) == total["charge"]
    assert -ledger.account_balance(s, ledger.revenue(Revenue.STORAGE)) == total["post"]
    assert billing.check_balances(s) == (len(ACCOUNTS), [])


def _check_audit(s: Session, first: dict[tuple[str, str], Outcome]) -> None:
    """One audit row per money event (none for replays or refusals); the chain verifies."""
    action = {"credit": "billing.credit.posted", "charge": "billing.charge.posted",
              "hold": "billing.hold.placed", "post": "billing.hold.posted",
              "void": "billing.hold.voided"}  # fmt: skip
    expected = Counter(action[kind] for kind, _ in first)
    expected["billing.account.opened"] = len(ACCOUNTS)
    rows = s.scalars(select(AuditEntry).where(AuditEntry.action.like("billing.%"))).all()
    assert Counter(r.action for r in rows) == expected
    audited = Counter((r.action, r.details_dict().get("key")) for r in rows)
    assert audited == Counter((action[kind], key) for kind, key in first) + Counter(
        {("billing.account.opened", None): len(ACCOUNTS)}
    )
    assert _numbered(s) == s.scalar(select(func.count()).select_from(AuditEntry))


def _run_and_check(url: str, procs: int, clients: int, total: int) -> None:
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        _open_accounts(factory)
        load, samples, elapsed = _hammer(url, procs, clients, total)
        print(
            f"\n{make_url(url).get_backend_name()}: {clients} clients in {procs} processes, "
            f"{total} operations in "
            f"{elapsed:.1f} s ({total / elapsed:,.0f}/s); {len(load.first)} new, "
            f"{len(load.outcomes) - len(load.first)} replays, {len(load.refusals)} refused for "
            f"funds, {samples} balance samples"
        )
        assert not load.errors, "\n".join(load.errors[:5]) + f"\n({len(load.errors)} in all)"
        assert len(load.outcomes) + len(load.refusals) == total
        assert samples > 0
        kinds = Counter(kind for kind, _ in load.first)
        assert min(kinds[k] for k in ("credit", "charge", "hold", "post", "void")) > 0, kinds
        assert sum(o.strict_replay for o in load.outcomes) > total // 20
        assert load.refusals, "the load never ran an account dry: no InsufficientFunds"
        first = _check_replays(load)
        with factory.begin() as s:
            _check_journal(s, first)
            _check_totals(s, first)
            _check_audit(s, first)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_32_clients_10000_operations_on_postgresql(database_url: str) -> None:
    if make_url(database_url).get_backend_name() == "sqlite":
        pytest.skip("the 32-client run is for PostgreSQL; SQLite runs the 4-client one")
    _run_and_check(database_url, procs=PROCS, clients=CLIENTS, total=TOTAL_OPS)


@pytest.mark.slow
def test_4_clients_serialise_on_either_database(database_url: str) -> None:
    _run_and_check(database_url, procs=2, clients=4, total=1_000)


# --- crashes ---------------------------------------------------------------------------------

INN = "01234567890123"


class Crash(Exception):
    """Raised after the journal write, before the commit."""


def _state(s: Session) -> tuple[int, ...]:
    counts = (
        s.scalar(select(func.count()).select_from(table)) or 0
        for table in (LedgerTransaction, LedgerEntry, Payment, AuditEntry)
    )
    return (*counts, billing.balance(s, INN).posted)


def _credit_once(s: Session, how: str) -> int:
    """Credit 250.00 som by ``how``; the ledger transaction's id."""
    if how == "credit":
        posting = billing.credit(
            s, inn=INN, amount=250_00, key="cash:crash-1", source=ledger.CASH,
            description="top-up", now=NOW, actor=ACTOR,
        )  # fmt: skip
        return posting.transaction_id
    receipt = billing.record_payment(
        s, channel="osmp", provider="megapay", external_id="crash-1", account=INN,
        amount=250_00, paid_at=NOW, now=NOW, actor="osmp:megapay",
    )  # fmt: skip
    return receipt.transaction_id


@pytest.mark.parametrize("how", ["credit", "record_payment"])
def test_an_exception_after_the_journal_write_leaves_nothing(
    session_factory: sessionmaker[Session], how: str
) -> None:
    with session_factory.begin() as s:
        billing.open_account(s, inn=INN, name='ОсОО "Ала-Тоо"', now=NOW, actor=ACTOR)
    with session_factory.begin() as s:
        before = _state(s)
    with pytest.raises(Crash), session_factory.begin() as s:
        _credit_once(s, how)
        assert billing.balance(s, INN).posted == 250_00  # written, in this transaction only
        raise Crash
    with session_factory.begin() as s:
        assert _state(s) == before
    with session_factory.begin() as s:  # the client retries with the same key
        txn = _credit_once(s, how)
    with session_factory.begin() as s:
        assert _credit_once(s, how) == txn  # and again: a replay
        ledger_, entries, payments, audit, posted = _state(s)
        assert (ledger_, entries, posted) == (before[0] + 1, before[1] + 2, 250_00)
        assert payments == before[2] + (how == "record_payment")
        assert audit == before[3] + 1
        assert billing.check_balances(s) == (1, [])
        assert _numbered(s) == audit


CHILD = textwrap.dedent(
    '''
    """Credits in a loop, one transaction each; reports each commit on stdout."""
    import os, sys
    from datetime import UTC, datetime

    import billing
    from billing import ledger
    from db import make_engine, make_session_factory

    url, inn, count, die_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    factory = make_session_factory(make_engine(url))
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    for i in range(count):
        with factory.begin() as s:
            if i % 2:
                r = billing.record_payment(
                    s, channel="cash", provider="", external_id=f"kill-{i}", account=inn,
                    amount=100 + i, paid_at=now, now=now, actor="child")
            else:
                r = billing.credit(
                    s, inn=inn, amount=100 + i, key=f"kill:{i}", source=ledger.CASH,
                    description="top-up", now=now, actor="child")
            if i == die_at:  # the journal is written and the transaction not committed
                print(f"dying {i}", flush=True)
                os._exit(1)
        print(f"ack {i} {r.transaction_id} {int(r.replayed)}", flush=True)
    print("done", flush=True)
    '''
)
CHILD_OPS = 160


def _key_index(key: str) -> int:
    return int(key.rsplit(":", 1)[1].removeprefix("kill-"))


@dataclass
class ChildRun:
    acks: dict[int, tuple[int, bool]]  # index -> (transaction id, replayed)
    finished: bool


def _run_child(script: Path, url: str, *, die_at: int = -1, kill_after: int = -1) -> ChildRun:
    """Run the child; SIGKILL it a moment after its ``kill_after``-th acknowledgement."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(script), url, INN, str(CHILD_OPS), str(die_at)]
    rng, acks, finished = _rng(-1), {}, False
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) as child:
        assert child.stdout is not None
        for line in child.stdout:
            word, *rest = line.split()
            if word == "ack":
                acks[int(rest[0])] = (int(rest[1]), rest[2] == "1")
            finished = finished or word == "done"
            if len(acks) == kill_after:
                time.sleep(rng.random() * 0.005)  # somewhere inside the next transaction
                child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    return ChildRun(acks, finished)


def _committed(s: Session) -> dict[int, int]:
    """index -> ledger transaction id of the child's credits that reached the database."""
    rows = s.execute(
        select(LedgerTransaction.idempotency_key, LedgerTransaction.id).where(
            LedgerTransaction.idempotency_key.like("%kill%")
        )
    ).all()
    return {_key_index(key): txn for key, txn in rows}


def _check_complete(s: Session, committed: dict[int, int]) -> None:
    """Every committed transaction whole: two balanced entries, its receipt, its audit row."""
    entries = s.execute(
        select(LedgerEntry.transaction_id, func.count(), func.sum(LedgerEntry.amount)).group_by(
            LedgerEntry.transaction_id
        )
    ).all()
    assert {txn: (n, total) for txn, n, total in entries} == {
        txn: (2, 0) for txn in committed.values()
    }
    receipts = dict(s.execute(select(Payment.external_id, Payment.transaction_id)).all())
    assert receipts == {f"kill-{i}": txn for i, txn in committed.items() if i % 2}
    audited = [
        e.details_dict()["transaction"]
        for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "billing.credit.posted"))
    ]
    assert sorted(audited) == sorted(committed.values())
    assert billing.balance(s, INN).posted == sum(100 + i for i in committed)
    assert billing.check_balances(s) == (1, [])
    assert _numbered(s) == s.scalar(select(func.count()).select_from(AuditEntry))


@pytest.fixture
def child_script(tmp_path: Path) -> Iterator[Path]:
    script = tmp_path / "credit_loop.py"
    script.write_text(CHILD, encoding="utf-8")
    yield script


@pytest.mark.slow
@pytest.mark.parametrize("death", ["os._exit before commit", "SIGKILL at a random moment"])
def test_a_killed_worker_loses_nothing_and_a_retry_credits_once(
    database_url: str, session_factory: sessionmaker[Session], child_script: Path, death: str
) -> None:
    with session_factory.begin() as s:
        billing.open_account(s, inn=INN, name='ОсОО "Ала-Тоо"', now=NOW, actor=ACTOR)
    stop_at = _rng(-2).randrange(20, CHILD_OPS - 40)
    if death.startswith("os._exit"):
        killed = _run_child(child_script, database_url, die_at=stop_at)
    else:
        killed = _run_child(child_script, database_url, kill_after=stop_at)
    assert not killed.finished and len(killed.acks) >= stop_at
    with session_factory.begin() as s:
        committed = _committed(s)
        # Acknowledged means committed; at most the one in flight committed unacknowledged.
        assert {i: txn for i, (txn, _) in killed.acks.items()} == {
            i: txn for i, txn in committed.items() if i in killed.acks
        }
        assert sorted(committed) == list(range(len(committed)))
        assert len(killed.acks) <= len(committed) <= len(killed.acks) + 1
        if death.startswith("os._exit"):
            assert len(committed) == stop_at
        _check_complete(s, committed)
    retry = _run_child(child_script, database_url)  # the same keys again, to the end
    assert retry.finished and sorted(retry.acks) == list(range(CHILD_OPS))
    for i, (txn, replayed) in retry.acks.items():
        assert replayed == (i in committed)
        assert txn == committed.get(i, txn)
    with session_factory.begin() as s:
        final = _committed(s)
        assert final == {i: txn for i, (txn, _) in retry.acks.items()}
        _check_complete(s, final)

"""Load test (issue #16): a filing day's request mix through locust against a real ``tamga serve``.

    .venv/bin/python bench/load.py [--users 40] [--spawn-rate 10] [--seconds 120]
                                   [--wait 0.2,1.0] [--subscribers 8] [--database-url URL]

Needs locust: ``pip install -e '.[bench]'`` (it is not part of ``make test``).

The installation is a throwaway one, as in ``bench/sign_api.py`` (whose helpers this script
imports): a new PostgreSQL database (``tamga_bench_<random>``) through the admin URL
(``--database-url``, else ``TAMGA_TEST_DATABASE_URL``, else the local ``postgres`` role) and a new
``TAMGA_HOME``, ``tamga init`` on them, then ``tamga serve`` on a free loopback port (real
gunicorn, 2 workers × 4 threads) with ``TAMGA_RATE_LIMITS=off``, ``TAMGA_MAINTENANCE_WINDOW=off``
and ``TAMGA_AUDIT_SEQUENCER=worker``, and a ``tamga worker --no-mail`` process beside it: on
PostgreSQL the worker's thread is the audit journal's sequencer (docs/audit.md), and it also
keeps the cloud key pool, the CRLs and the OCSP answers fresh as in production. The script
fills the cloud key pool before the load starts (the worker's ``tend_key_pool`` passes, run
in the script beside it), so that the pool's key generation (SoftHSM on the same two cores) is
not part of the figures.

Seeded in this process (``bench/sign_api.py``'s ``setup``): a subscriber with two holders, a
cloud ``head`` certificate with a P-256 key and one with an RSA-2048 key, a funded balance and a
``portal`` client with the subscriber in its scope; then ``--subscribers`` − 1 more subscribers,
each funded and put in the same portal's scope, for balance reads and payments.

**The holder's step is not load-generated.** In production every ``signHash`` follows a
``credentials/authorize`` with the holder's PIN and a TOTP code, and a TOTP code works once per
30-second step by design: no load generator can mint SADs at load rates. So the SADs are
pre-minted (``sign_api.mint_sads``): ``signature_activations`` rows written straight into the
database as a granted ``authorize`` stores them, each with its own random SAD and hashes, bound
to the credential, the portal, the INN and role ``head``. Enough are minted for the most the
users can send (``users ÷ min wait × the task's share × seconds``), each is used once, and every
``signHash`` then goes through the real path (token, scope, SAD consumption, billing checks, the
HSM, the evidence rows and the audit entry).

Locust runs headless as a subprocess (``python -m locust -f bench/locustfile.py --headless -u
USERS -r RATE -t SECONDS --host URL --csv ...``); what the users need goes to it in a JSON file
named by ``TAMGA_LOAD_SEED``. The mix and what counts as a failure are in ``bench/locustfile.py``.

Printed at the end: per request type requests/s, p50/p95/p99 latency (ms, locust's rounding) and
failures (unexpected statuses or answers only: the wrong-token requests expect 401), the totals;
what the users did checked against the database (evidence rows = hashes signed, OSMP receipts
and their sum = payments credited); then, once the worker has sequenced every audit entry and
stopped, the output of ``tamga audit verify`` and ``tamga billing check`` on the same
installation. The exit status is non-zero if either fails, if any request failed or if the
database disagrees with what the users saw. The database is dropped at the end; the home
directory is left for inspection (the server, worker and locust logs and CSVs are in it).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sign_api import (
    DEFAULT_ADMIN_URL,
    INN,
    TAMGA,
    _env,
    _free_port,
    _table,
    cpu_now,
    mint_sads,
    scratch_database,
    server,
    setup,
)
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SIGN_SHARE = {1: 0.12, 10: 0.04}  # the signHash tasks' weights in locustfile.py, of 100
FUNDS = 10**12  # tyiyn on each subscriber's balance: no charge is ever refused


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40, help="locust users (40)")
    parser.add_argument("--spawn-rate", type=float, default=10, help="users started per s (10)")
    parser.add_argument("--seconds", type=int, default=120, help="duration of the load (120)")
    parser.add_argument("--wait", default="0.2,1.0", help="each user's wait between tasks, s")
    parser.add_argument("--subscribers", type=int, default=8, help="subscribers in scope (8)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TAMGA_TEST_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL role allowed to CREATE DATABASE (TAMGA_TEST_DATABASE_URL)",
    )
    args = parser.parse_args()
    try:
        args.wait_range = [float(n) for n in args.wait.split(",")]
    except ValueError:
        parser.error("--wait is MIN,MAX in seconds, e.g. 0.2,1.0")
    if len(args.wait_range) != 2 or not 0 < args.wait_range[0] <= args.wait_range[1]:
        parser.error("--wait is MIN,MAX with 0 < MIN <= MAX")
    if args.users < 1 or args.seconds < 1 or args.subscribers < 1:
        parser.error("--users, --seconds and --subscribers must be at least 1")
    return args


# -- seeding --------------------------------------------------------------------------------------


def more_subscribers(rt: Any, client_id: int, count: int) -> list[str]:
    """``count`` more funded subscribers in the portal's scope: their INNs."""
    import billing
    from ca.registry import create_subscriber
    from signing_api.clients import ClientSubscriber

    now = datetime.now(UTC)
    inns = [f"0200000000{i:04d}" for i in range(1, count + 1)]
    with rt.transaction() as session:
        for inn in inns:
            create_subscriber(
                session,
                {"inn": inn, "name": f"ОсОО Нагрузка {inn[-4:]}", "legal_form": "ОсОО",
                 "locality": "Бишкек", "email": f"load{inn[-4:]}@test.kg"},
                now=now, actor="bench",
            )  # fmt: skip
            billing.record_payment(session, channel="cash", provider="", external_id=f"load-{inn}",
                                   account=inn, amount=FUNDS, paid_at=now, now=now,
                                   actor="bench")  # fmt: skip
            session.add(ClientSubscriber(client_id=client_id, inn=inn, granted_at=now,
                                         granted_by="bench"))  # fmt: skip
    return inns


def fill_key_pool(rt: Any, limit: float) -> float:
    """Seconds until the cloud key pool is full (at most ``limit``): passes of the worker's own
    ``tend_key_pool`` run here beside it, without its idle waits."""
    from ca.key_pool import pool_sizes, tend_key_pool
    from policies.key_pool import KEY_POOL

    began = time.monotonic()
    while time.monotonic() - began < limit:
        with rt.transaction() as session:
            sizes = pool_sizes(session, now=datetime.now(UTC))
        if all(sizes.get(spec, 0) >= target for spec, target in KEY_POOL.targets):
            break
        tend_key_pool(rt.transaction, rt.cloud_token, now=datetime.now(UTC), actor="bench")
    return time.monotonic() - began


def ocsp_paths(home: Path, certificates: list[bytes]) -> list[str]:
    """GET paths (RFC 6960 A.1.1, URL-encoded base64) asking about our subscribers' certificates
    and about the issuing CA itself (answered by the root key); SHA-1 CertIDs as RFC 5019 has."""
    ca = home / "public" / "ca"
    root = x509.load_der_x509_certificate((ca / "root.crt").read_bytes())
    issuing = x509.load_der_x509_certificate((ca / "issuing.crt").read_bytes())
    pairs = [(x509.load_der_x509_certificate(der), issuing) for der in certificates]
    pairs.append((issuing, root))
    paths = []
    for cert, issuer in pairs:
        der = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 - RFC 5019 CertID
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        paths.append("/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
    return paths


def seed(rt: Any, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Everything the locust users need; the SADs minted for the most the users can send."""
    from ca.models import Certificate
    from policies.providers import PROVIDERS, SOCHI

    keys, client_id, token = setup(rt)
    inns = [INN, *more_subscribers(rt, client_id, args.subscribers - 1)]
    with rt.transaction() as session:
        ids = [k.certificate_id for k in keys]
        holders = list(
            session.scalars(select(Certificate.holder_id).where(Certificate.id.in_(ids)))
        )
    most_tasks = args.users / args.wait_range[0] * args.seconds  # no user can do more
    sads: dict[str, list[dict[str, Any]]] = {}
    for count, share in SIGN_SHARE.items():
        per_key = max(50, math.ceil(most_tasks * share * 1.1 / len(keys)))
        jobs = [
            {"serial": key.serial, "sign_algo": key.sign_oid, "sad": job.sad, "hash": job.b64}
            for key in keys
            for job in mint_sads(rt, key, client_id, count, per_key)
        ]
        random.shuffle(jobs)  # P-256 and RSA-2048 calls interleaved
        sads[str(count)] = jobs
    return {
        "token": token,
        "inns": inns,
        "holders": holders,
        "credentials": [{"serial": k.serial, "sign_algo": k.sign_oid} for k in keys],
        "sads": sads,
        "ocsp": ocsp_paths(home, [k.der for k in keys]),
        "providers": sorted(code for code, p in PROVIDERS.items() if SOCHI in p.services),
        "wait": args.wait_range,
    }


# -- processes ------------------------------------------------------------------------------------


@contextmanager
def worker(env: dict[str, str], home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``tamga worker --no-mail`` until the block ends (SIGTERM: it finishes its pass)."""
    with (home / "worker.log").open("w") as log:
        proc = subprocess.Popen([str(TAMGA), "worker", "--no-mail"], env=env, stdout=log,
                                stderr=log)  # fmt: skip
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for_sequencer(rt: Any, proc: subprocess.Popen[bytes], limit: float) -> int:
    """Entries still waiting after the worker's sequencer had up to ``limit`` s to number them."""
    from db.sequencer import backlog

    deadline = time.monotonic() + limit
    while True:
        with rt.transaction() as session:
            pending = backlog(session).pending
        if pending == 0 or time.monotonic() > deadline or proc.poll() is not None:
            return pending
        time.sleep(0.2)


def run_locust(args: argparse.Namespace, env: dict[str, str], base: str, home: Path) -> int:
    """Locust headless for ``--seconds``; its CSVs and log in ``home``; its exit status."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.seconds}s",
        "--host", base, "--csv", str(home / "locust"), "--only-summary", "--stop-timeout", "30",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    print("$ " + " ".join(command), flush=True)
    locust_env = env | {
        "TAMGA_LOAD_SEED": str(home / "seed.json"),
        "TAMGA_LOAD_TALLY": str(home / "tally.json"),
    }
    with (home / "locust.log").open("w") as log:
        done = subprocess.run(command, env=locust_env, stdout=log, stderr=log, check=False,
                              timeout=args.seconds + 120)  # fmt: skip
    return done.returncode


def own_cpu(pid: int) -> float:
    """CPU seconds of one process so far (user + system, all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (locust, once it has ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the report -----------------------------------------------------------------------------------


def stats_table(tally: dict[str, Any]) -> tuple[int, int]:
    """The per-request-type table (locust's figures, from the tally); (requests, failures)."""

    def cells(name: str, f: dict[str, Any]) -> list[str]:
        return [
            name, f"{f['requests']:,}", f"{f['rps']:.1f}", f"{f['p50']:.0f}", f"{f['p95']:.0f}",
            f"{f['p99']:.0f}", f"{f['max']:.0f}", f"{f['failures']:,}",
        ]  # fmt: skip

    rows = [cells(name, f) for name, f in sorted(tally["stats"].items())]
    total = tally["total"]
    _table(["request", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "failures"],
           [*rows, cells("total", total)])  # fmt: skip
    if tally["errors"]:
        print("\nfailures:")
        for occurrences, name, error in tally["errors"]:
            print(f"  {occurrences:>6} × {name}: {error[:200]}")
    return int(total["requests"]), int(total["failures"])


def cpu_report(before: tuple[Any, float, float], after: tuple[Any, float, float],
               requests: int) -> None:  # fmt: skip
    """Who spent the machine's CPU during the load, from /proc and getrusage."""
    machine, worker_s, locust_s = after[0] - before[0], after[1] - before[1], after[2] - before[2]
    other = machine.busy - machine.workers - machine.postgres - worker_s - locust_s
    wall = machine.total / (os.cpu_count() or 1)
    parts = [("gunicorn", machine.workers), ("postgres", machine.postgres),
             ("tamga worker", worker_s), ("locust", locust_s), ("other", other)]  # fmt: skip
    shares = [f"{name} {spent / wall:.2f} cores ({1000 * spent / requests:.1f} ms/request)"
              for name, spent in parts]  # fmt: skip
    print(f"CPU during the load: {', '.join(shares)};"
          f" machine {100 * machine.busy / machine.total:.0f}% busy")  # fmt: skip


def check_database(rt: Any, tally: dict[str, Any]) -> list[str]:
    """What the users saw against what the database holds; the disagreements."""
    from billing.models import Payment
    from signing_api.cloud import CloudSignature

    with rt.transaction() as session:
        evidence = session.scalar(select(func.count()).select_from(CloudSignature))
        paid = session.execute(
            select(func.count(), func.coalesce(func.sum(Payment.amount), 0)).where(
                Payment.channel == "osmp"
            )
        ).one()
    print(
        f"database: {evidence:,} evidence rows for {tally['hashes_signed']:,} hashes signed;"
        f" {paid[0]:,} OSMP receipts of {paid[1] / 100:,.2f} som for {tally['pays']:,} payments"
        f" credited ({tally['paid_tyiyn'] / 100:,.2f} som); {tally['replays']:,} replays answered"
        f" with the first receipt; SADs left {tally['sads_left']}, missing {tally['sads_missing']}"
    )
    problems = []
    if evidence != tally["hashes_signed"]:
        problems.append(f"{evidence} evidence rows, {tally['hashes_signed']} hashes signed")
    if (paid[0], paid[1]) != (tally["pays"], tally["paid_tyiyn"]):
        problems.append(f"OSMP receipts {tuple(paid)} ≠ payments credited "
                        f"{(tally['pays'], tally['paid_tyiyn'])}")  # fmt: skip
    if tally["sads_missing"]:
        problems.append(f"{tally['sads_missing']} signHash tasks found no SAD left (too few)")
    return problems


def tamga(env: dict[str, str], *command: str) -> bool:
    """Run ``tamga COMMAND``, print its output; whether it exited 0."""
    print(f"\n$ tamga {' '.join(command)}", flush=True)
    done = subprocess.run([str(TAMGA), *command], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    print((done.stdout + done.stderr).rstrip())
    print(f"(exit {done.returncode})")
    return done.returncode == 0


def run(args: argparse.Namespace, database_url: str, home: Path) -> int:
    env = _env(home, database_url, _free_port())
    env["TAMGA_AUDIT_SEQUENCER"] = "worker"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    subprocess.run([str(TAMGA), "init"], env=env, check=True, capture_output=True)
    os.environ.clear()
    os.environ.update(env)

    from signing_api.config import Config
    from signing_api.runtime import Runtime

    rt = Runtime(Config.from_env())
    print(
        f"Tamga load test — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()},"
        f" {os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL;"
        f" load average {os.getloadavg()[0]:.2f} at the start",
        flush=True,
    )
    with worker(env, home) as sequencer:
        material = seed(rt, home, args)
        (home / "seed.json").write_text(json.dumps(material))
        filled = fill_key_pool(rt, 180)
        print(
            f"seeded: {len(material['inns'])} subscribers in the portal's scope,"
            f" {len(material['credentials'])} cloud credentials (P-256, RSA-2048),"
            f" {len(material['sads']['1']):,} + {len(material['sads']['10']):,} SADs (1 and 10"
            f" hashes); tamga worker up, key pool full after {filled:.0f} s",
            flush=True,
        )
        with server(env, home) as (base, master):
            print(f"tamga serve on {base}: 2 gunicorn workers × 4 threads; locust"
                  f" {args.users} users, +{args.spawn_rate:g}/s, {args.seconds} s, wait"
                  f" {args.wait_range[0]:g}–{args.wait_range[1]:g} s", flush=True)  # fmt: skip
            database = make_url(database_url).database or ""
            before = (cpu_now(master, database), own_cpu(sequencer.pid), children_cpu())
            status = run_locust(args, env, base, home)
            after = (cpu_now(master, database), own_cpu(sequencer.pid), children_cpu())
        pending = wait_for_sequencer(rt, sequencer, 120)
    tally_file = home / "tally.json"
    if not tally_file.exists():
        raise SystemExit(f"locust wrote no tally (exit {status}); see {home / 'locust.log'}")
    tally = json.loads(tally_file.read_text())
    print()
    requests, failures = stats_table(tally)
    print()
    cpu_report(before, after, tally["total"]["requests"])
    problems = check_database(rt, tally)
    if pending:
        problems.append(f"{pending} audit entries still waiting for the sequencer")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    rt.engine.dispose()
    verified = tamga(env, "audit", "verify")
    checked = tamga(env, "billing", "check")
    print()
    if failures:
        problems.append(f"{failures:,} of {requests:,} requests failed")
    elif status != 0:
        problems.append(f"locust exited {status}; see {home / 'locust.log'}")
    if not verified or not checked:
        problems.append("tamga audit verify or tamga billing check failed")
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print(f"passed: {requests:,} requests, no unexpected failure, journal and ledger intact")
    return 1 if problems else 0


def main() -> None:
    args = _parse_args()
    home = Path(tempfile.mkdtemp(prefix="tamga-bench-load-"))
    try:
        with scratch_database(args.database_url) as url:
            code = run(args, url, home)
    finally:
        print(f"(home {home} left for inspection: serve.log, worker.log, locust.log, CSVs)",
              file=sys.stderr)  # fmt: skip
    sys.exit(code)


if __name__ == "__main__":
    main()

"""Full CRLs at scale (issue #15): Tamga's builder from the database beside ``openssl ca -gencrl``.

    .venv/bin/python bench/crl.py [--sizes 10000,100000,1000000] [--backends sqlite,postgresql]
                                  [--pg-admin-url postgresql+psycopg://postgres:postgres@127.0.0.1/postgres]

For each backend and size: a throwaway ``TAMGA_HOME`` (``tamga init``: SoftHSM2 tokens, root and
issuing CA; on PostgreSQL a fresh database made through ``--pg-admin-url``), then, untimed, that
many revoked or suspended certificate rows inserted with Core bulk inserts (tests/crl_seed.py:
reasons in turn, a third with an invalidity date). Then, in a **fresh process** so that its
peak RSS is the builder's alone, ``crl.refresh_crl(force=True)`` in one transaction: the rows
read with SQLAlchemy Core, each entry encoded to DER (crl/der.py), the TBSCertList hashed, its
digest signed with the issuing CA's P-384 key in SoftHSM2, the row inserted in ``crl_issues``
and journaled. Printed: wall time, the process's peak RSS (``ru_maxrss`` from ``wait4``; an
idle process that imported the same modules is printed once for reference), DER size.

Baseline, same sizes: ``openssl ca -gencrl`` from an ``index.txt`` of as many revoked lines
(same reasons), with a P-384 key in a file, SHA-384 — time and peak RSS measured the same way.
Nothing is asserted: the figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
TAMGA = ROOT / ".venv" / "bin" / "tamga"
INN = "01234567890123"
_OPENSSL_REASONS = ("keyCompromise", "superseded", "cessationOfOperation", "unspecified",
                    "certificateHold")  # fmt: skip


def _env(home: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMGA_")}
    env.pop("SOFTHSM2_CONF", None)
    env["TAMGA_HOME"] = str(home)
    if database_url:
        env["TAMGA_DATABASE_URL"] = database_url
    return env


def _measured(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - start
    assert child.stdout is not None and child.stderr is not None
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{args[:3]} failed: {err}")
    return took, usage.ru_maxrss / 1024, out


# ---- children -------------------------------------------------------------------------------


def _seed(size: int) -> None:
    from ca.registry import create_holder, create_subscriber
    from signing_api.config import Config
    from signing_api.runtime import Runtime
    from tests.crl_seed import seed_certificates

    rt = Runtime(Config.from_env())
    now = datetime.now(UTC)
    with rt.transaction() as session:
        create_subscriber(
            session,
            {"inn": INN, "name": "ОсОО Бенч", "legal_form": "ОсОО", "locality": "Бишкек",
             "email": "bench@test.kg"},
            now=now, actor="bench",
        )  # fmt: skip
        holder = create_holder(
            session,
            {"inn": INN, "full_name": "Бенчев Холдер", "position": "Бухгалтер",
             "passport_series": "ID1234567", "email": "h@test.kg", "phone": "+996555123456"},
            now=now, actor="bench",
        ).id  # fmt: skip
    with rt.transaction() as session:
        seed_certificates(session, inn=INN, holder_id=holder, count=size, now=now)


def _idle() -> None:
    from crl import refresh_crl  # noqa: F401 - the same imports as _build, nothing else
    from signing_api.config import Config
    from signing_api.runtime import Runtime

    with Runtime(Config.from_env()).transaction() as session:
        session.execute(__import__("sqlalchemy").text("SELECT 1"))


def _build() -> None:
    from crl import refresh_crl
    from signing_api.config import Config
    from signing_api.runtime import Runtime

    rt = Runtime(Config.from_env())
    start = time.perf_counter()
    with rt.transaction() as session:
        issued, _ = refresh_crl(session, issuer="issuing", token=rt.ca_token,
                                now=datetime.now(UTC), actor="bench", force=True,
                                public_url=rt.config.public_url)  # fmt: skip
    took = time.perf_counter() - start
    print(f"{took:.3f} {len(issued.der)} {issued.entries}")


# ---- openssl ca -gencrl ---------------------------------------------------------------------

_CONFIG = """[ ca ]
default_ca = tamga_bench
[ tamga_bench ]
dir = {dir}
database = $dir/index.txt
certificate = $dir/ca.pem
private_key = $dir/ca.key
crlnumber = $dir/crlnumber
default_md = sha384
default_crl_hours = 48
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""


def _openssl_setup(directory: Path, size: int) -> list[str]:
    key, cert = directory / "ca.key", directory / "ca.pem"
    subprocess.run(["openssl", "ecparam", "-name", "secp384r1", "-genkey", "-noout",
                    "-out", str(key)], check=True)  # fmt: skip
    subprocess.run(["openssl", "req", "-new", "-x509", "-key", str(key), "-out", str(cert),
                    "-subj", "/C=KG/O=Bench/CN=Bench Issuing CA", "-days", "3650",
                    "-sha384"], check=True)  # fmt: skip
    (directory / "crlnumber").write_text("01\n")
    (directory / "openssl.cnf").write_text(_CONFIG.format(dir=directory))
    now = datetime.now(UTC)
    expiry = (now + timedelta(days=335)).strftime("%y%m%d%H%M%SZ")
    with (directory / "index.txt").open("w") as index:
        for i in range(size):
            revoked = (now - timedelta(seconds=i + 1)).strftime("%y%m%d%H%M%SZ")
            reason = _OPENSSL_REASONS[i % len(_OPENSSL_REASONS)]
            serial = f"{secrets.randbits(159) | 1 << 158:040X}"
            index.write(f"R\t{expiry}\t{revoked},{reason}\t{serial}\tunknown\t/CN=h{i}\n")
    return ["openssl", "ca", "-gencrl", "-config", str(directory / "openssl.cnf"),
            "-out", str(directory / "crl.pem")]  # fmt: skip


def _pg_database(admin_url: str, name: str) -> str:
    from sqlalchemy import text

    from db import make_engine

    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(admin_url: str, name: str) -> None:
    from sqlalchemy import text

    from db import make_engine

    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "TAMGA_TEST_DATABASE_URL",
            "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres",
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the homes and databases")
    parser.add_argument("--child", choices=("seed", "build", "idle"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # this file is bench/crl.py: the package crl must not resolve to it
        sys.path[0] = str(ROOT)
    if args.child == "seed":
        return _seed(args.size)
    if args.child == "build":
        return _build()
    if args.child == "idle":
        return _idle()

    sys.path[0] = str(ROOT)  # db, for the PostgreSQL databases (after the crl name clash)
    sizes = [int(s) for s in args.sizes.split(",")]
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{version.stdout.strip()}")  # fmt: skip
    print(f"{'':<34}{'entries':>9} {'time':>9} {'peak RSS':>10} {'DER size':>10}")
    idle_shown = False
    for backend in args.backends.split(","):
        for size in sizes:
            home = Path(tempfile.mkdtemp(prefix="tamga-bench-crl-"))
            url = None
            if backend == "postgresql":
                url = _pg_database(args.pg_admin_url, f"tamga_bench_crl_{size}")
            env = _env(home, url)
            subprocess.run([str(TAMGA), "init"], env=env, check=True, capture_output=True)
            me = [str(PYTHON), str(Path(__file__).resolve())]
            _measured([*me, "--child", "seed", "--size", str(size)], env)
            if not idle_shown:
                _, idle_rss, _ = _measured([*me, "--child", "idle"], env)
                print(f"{'(an idle process, same imports)':<34}{'':>9} {'':>9} {idle_rss:>7.0f} MB")
                idle_shown = True
            _, rss, out = _measured([*me, "--child", "build"], env)
            took, der_size, entries = out.split()
            assert int(entries) == size, (entries, size)
            label = f"Tamga refresh_crl, {backend}"
            print(f"{label:<34}{size:>9} {float(took):>7.2f} s {rss:>7.0f} MB "
                  f"{int(der_size) / 1e6:>7.1f} MB", flush=True)  # fmt: skip
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)
                if url is not None:
                    _drop_database(args.pg_admin_url, f"tamga_bench_crl_{size}")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="tamga-bench-openssl-") as tmp:
            command = _openssl_setup(Path(tmp), size)
            seconds, rss, _ = _measured(command)
            pem = str(Path(tmp) / "crl.pem")
            der = subprocess.run(["openssl", "crl", "-in", pem, "-outform", "DER"],
                                 capture_output=True, check=True).stdout  # fmt: skip
            label = "openssl ca -gencrl (file key)"
            print(f"{label:<34}{size:>9} {seconds:>7.2f} s {rss:>7.0f} MB "
                  f"{len(der) / 1e6:>7.1f} MB")  # fmt: skip
    return None


if __name__ == "__main__":
    main()

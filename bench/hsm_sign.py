"""Signatures per second through Tamga's ``hsm`` package, beside ``openssl speed``.

    .venv/bin/python bench/hsm_sign.py [--seconds 3] [--procs N] [--extra-keys K] [--module PATH]

Creates a throwaway SoftHSM2 installation in a temporary directory (its own ``softhsm2.conf``
and token), generates an RSA-2048 and an EC P-256 key on it, then for each key measures
``HSMToken.sign()`` (hash here, sign on the token, as every Tamga signature is made):

* one thread in one process;
* N threads in one process (they share the process-wide PKCS#11 lock, as the threads of one
  gunicorn worker would);
* N processes, one thread each (each opens the library and logs in itself, as gunicorn workers
  do), started together; their rates are added up;

and prints beside them two raw baselines: the same signature through python-pkcs11 straight to
the token (key object looked up once, no lock: what SoftHSM2 and the binding cost by themselves),
and the machine's software figure, ``openssl speed`` in one process and with ``-multi N``.
N defaults to the number of CPUs. ``--extra-keys K`` puts K more key pairs on the token first,
as on a cloud token holding many subscribers' keys (SoftHSM2's file store slows down with them).

The parent process never touches PKCS#11: key generation and every measurement run in forked
children, so no library state is ever shared across ``fork()``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import multiprocessing as mp
import os
import platform
import queue
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from multiprocessing.context import ForkContext
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from hsm import HSMToken
from hsm.softhsm import init_token, write_config
from policies.keys import KeySpec, SignatureScheme

ROOT = Path(__file__).resolve().parents[1]
HSM_LABEL = "tamga-bench"
# DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1), as hsm/ puts before the digest.
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
DOCUMENT = b"Tamga benchmark document " * 40  # 1000 bytes, hashed on every call as in real use


@dataclass(frozen=True)
class Setup:
    """What every child needs: the PKCS#11 module, the token's PIN, seconds per measurement."""

    module: str
    pin: str
    seconds: float


@dataclass(frozen=True)
class Algorithm:
    name: str
    key_spec: str
    scheme: SignatureScheme
    key_label: str
    openssl_name: str
    openssl_row: re.Pattern[str]


@dataclass(frozen=True)
class Job:
    """One measuring child: which key, how many threads, through HSMToken or raw python-pkcs11."""

    algorithm: Algorithm
    threads: int
    raw: bool


# openssl speed rows: the label, then per-operation times ("0.000270s"), then rates (ops/s);
# the first rate is sign/s in OpenSSL 3.0 as in 3.2+ (which adds encaps/decaps columns).
_TIMES_THEN_SIGN_RATE = r"(?:\s+[\d.]+s)+\s+([\d.]+)"
ALGORITHMS = (
    Algorithm(
        name="RSA-2048 PKCS#1 v1.5",
        key_spec="rsa-2048",
        scheme=SignatureScheme.RSA_PKCS1_SHA256,
        key_label="bench-rsa-2048",
        openssl_name="rsa2048",
        openssl_row=re.compile(r"^\s*rsa\s+2048\s+bits" + _TIMES_THEN_SIGN_RATE, re.M),
    ),
    Algorithm(
        name="ECDSA P-256",
        key_spec="ec-p256",
        scheme=SignatureScheme.ECDSA_SHA256,
        key_label="bench-ec-p256",
        openssl_name="ecdsap256",
        openssl_row=re.compile(
            r"^\s*256\s+bits\s+ecdsa\s+\(nistp256\)" + _TIMES_THEN_SIGN_RATE, re.M
        ),
    ),
)


# -- children (forked; the only processes that call into PKCS#11) --------------------------------


def _generate_keys(setup: Setup, extra_keys: int) -> None:
    token = HSMToken(setup.module, HSM_LABEL, setup.pin)
    for algorithm in ALGORITHMS:
        token.generate_key(algorithm.key_label, KeySpec.parse(algorithm.key_spec))
    for i in range(extra_keys):  # other subscribers' keys, as on a populated cloud token
        token.generate_key(f"bench-extra-{i}", KeySpec.parse("ec-p256"))
    token.close()


def _check_signature(token: HSMToken, algorithm: Algorithm) -> None:
    """One signature verified with pyca/cryptography: we measure real, valid signatures."""
    signature = token.sign(algorithm.key_label, DOCUMENT, algorithm.scheme)
    public = token.public_key(algorithm.key_label)
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, DOCUMENT, padding.PKCS1v15(), hashes.SHA256())
    else:
        public.verify(signature, DOCUMENT, ec.ECDSA(hashes.SHA256()))


def _sign_for(sign: Callable[[], object], seconds: float) -> tuple[int, float]:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        sign()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count, now - start


def _tamga_signer(setup: Setup, algorithm: Algorithm) -> Callable[[], object]:
    """``HSMToken.sign()``: what every Tamga signature goes through."""
    token = HSMToken(setup.module, HSM_LABEL, setup.pin)
    _check_signature(token, algorithm)  # also logs in before the clock starts
    return lambda: token.sign(algorithm.key_label, DOCUMENT, algorithm.scheme)


def _raw_signer(setup: Setup, algorithm: Algorithm) -> Callable[[], object]:
    """The same signature through python-pkcs11 directly, the key object looked up once.

    The baseline for what HSMToken adds on top (lock, key lookup by label, checks): the same
    hash here, the same mechanism (CKM_RSA_PKCS over a DigestInfo, CKM_ECDSA over the digest).
    """
    import pkcs11  # only in this child: the parent process never touches PKCS#11

    session = pkcs11.lib(setup.module).get_token(token_label=HSM_LABEL).open(user_pin=setup.pin)
    key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=algorithm.key_label)
    if algorithm.scheme is SignatureScheme.ECDSA_SHA256:
        return lambda: key.sign(hashlib.sha256(DOCUMENT).digest(), mechanism=pkcs11.Mechanism.ECDSA)
    return lambda: key.sign(
        SHA256_DIGEST_INFO + hashlib.sha256(DOCUMENT).digest(), mechanism=pkcs11.Mechanism.RSA_PKCS
    )


def _child(setup: Setup, job: Job, login_lock: Any, start: Any, results: Any) -> None:
    """One process, ``job.threads`` threads sharing one signer; reports (signatures, seconds)."""
    try:
        # One child logs in at a time: SoftHSM2 rewrites its token file on every C_Login, and a
        # second process logging in at that moment gets CKR_GENERAL_ERROR (docs/benchmarks.md).
        with login_lock:
            sign = (_raw_signer if job.raw else _tamga_signer)(setup, job.algorithm)
        start.wait()  # every child of this measurement is logged in: go
        began = time.perf_counter()
        counts: list[tuple[int, float]] = []
        workers = [
            threading.Thread(target=lambda: counts.append(_sign_for(sign, setup.seconds)))
            for _ in range(job.threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if len(counts) != job.threads:
            raise RuntimeError("a signing thread failed; see its traceback above")
        results.put(("ok", sum(n for n, _ in counts), time.perf_counter() - began))
    except BaseException as ex:
        results.put(("error", f"{type(ex).__name__}: {ex}", 0.0))
        start.abort()
        raise


# -- parent ------------------------------------------------------------------------------------


def _run_children(
    ctx: ForkContext, setup: Setup, index: int, *, procs: int, threads: int, raw: bool = False
) -> float:
    """Start ``procs`` children of ``threads`` threads each together; the summed signatures/s."""
    results = ctx.Queue()
    start = ctx.Barrier(procs + 1)
    args = (setup, Job(ALGORITHMS[index], threads, raw), ctx.Lock(), start, results)
    children = [ctx.Process(target=_child, args=args, daemon=True) for _ in range(procs)]
    for child in children:
        child.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(timeout=120)  # broken when a child failed: its report says why
    rate = 0.0
    try:
        for _ in children:
            status, count, elapsed = results.get(timeout=setup.seconds + 120)
            if status != "ok":
                raise SystemExit(f"benchmark child failed: {count}")
            rate += count / elapsed
    except queue.Empty:
        raise SystemExit("a benchmark child did not report; see its traceback above") from None
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
    return rate


def _openssl_speed(seconds: int, procs: int) -> dict[str, float | None]:
    openssl = shutil.which("openssl")
    rates: dict[str, float | None] = {a.openssl_name: None for a in ALGORITHMS}
    if openssl is None:
        return rates
    argv = [openssl, "speed", "-seconds", str(seconds)]
    if procs > 1:
        argv += ["-multi", str(procs)]
    argv += [a.openssl_name for a in ALGORITHMS]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    for algorithm in ALGORITHMS:
        match = algorithm.openssl_row.search(out.stdout)
        rates[algorithm.openssl_name] = float(match.group(1)) if match else None
    return rates


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return "n/a"
    return (out.stdout.strip() or out.stderr.strip() or "n/a").splitlines()[0]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fmt(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def _ratio(ours: float, baseline: float | None) -> str:
    return "n/a" if not baseline else f"{100 * ours / baseline:.1f}%"


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


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="seconds per measurement (3)")
    parser.add_argument(
        "--procs", type=int, default=os.cpu_count() or 1, help="N: processes/threads (CPU count)"
    )
    parser.add_argument(
        "--module",
        default=os.environ.get("TAMGA_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
        help="PKCS#11 module (TAMGA_PKCS11_MODULE, else Debian's SoftHSM2)",
    )
    parser.add_argument(
        "--extra-keys",
        type=int,
        default=0,
        metavar="K",
        help="also put K other EC key pairs on the token, as on a cloud token (0)",
    )
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.procs < 1 or args.extra_keys < 0:
        parser.error("--seconds and --procs must be at least 1, --extra-keys at least 0")
    if not Path(args.module).exists():
        parser.error(f"PKCS#11 module {args.module} not found (make setup installs SoftHSM2)")
    return args


def _print_machine(args: argparse.Namespace) -> None:
    print(f"date:       {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine:    {os.cpu_count()} CPUs, {_cpu_model()}")
    print(f"module:     {args.module}")
    pairs = len(ALGORITHMS) + args.extra_keys
    print(f"token:      {pairs} key pairs on one SoftHSM2 token (--extra-keys {args.extra_keys})")
    print(f"SoftHSM2:   {_first_line(['softhsm2-util', '--version'])}")
    print(f"OpenSSL:    {_first_line(['openssl', 'version'])}")
    print(
        f"Python:     {platform.python_version()}, "
        f"python-pkcs11 {metadata.version('python-pkcs11')}, "
        f"cryptography {metadata.version('cryptography')}"
    )
    print(f"measuring:  {args.seconds} s each; N = {args.procs}; signing a 1000-byte document")
    print(flush=True)


def _measure_hsm(args: argparse.Namespace) -> list[tuple[float, float, float, float]]:
    """Signatures/s for each algorithm: (raw python-pkcs11 1 thread, HSMToken 1 thread,
    HSMToken N threads in 1 process, HSMToken N processes)."""
    ctx = mp.get_context("fork")
    n = args.procs
    home = Path(tempfile.mkdtemp(prefix="tamga-bench-"))
    try:
        # SoftHSM2 reads SOFTHSM2_CONF when the library is first initialised: set it before any
        # PKCS#11 use, here in the parent, so that every child inherits it.
        conf = write_config(ROOT / "softhsm.conf", home)
        os.environ["SOFTHSM2_CONF"] = str(conf)
        setup = Setup(module=args.module, pin=secrets.token_hex(8), seconds=args.seconds)
        init_token(conf, HSM_LABEL, setup.pin, secrets.token_hex(8))
        keygen = ctx.Process(target=_generate_keys, args=(setup, args.extra_keys))
        keygen.start()
        keygen.join()
        if keygen.exitcode != 0:
            raise SystemExit("key generation failed; see the traceback above")
        rates = []
        for index, algorithm in enumerate(ALGORITHMS):
            raw = _run_children(ctx, setup, index, procs=1, threads=1, raw=True)
            one = _run_children(ctx, setup, index, procs=1, threads=1)
            threaded = _run_children(ctx, setup, index, procs=1, threads=n)
            multi = _run_children(ctx, setup, index, procs=n, threads=1)
            rates.append((raw, one, threaded, multi))
            print(f"  {algorithm.name}: tamga hsm measured", file=sys.stderr, flush=True)
        return rates
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    n = args.procs
    _print_machine(args)
    ours = _measure_hsm(args)
    ossl_one = _openssl_speed(args.seconds, 1)
    print("  openssl speed (1 process) measured", file=sys.stderr, flush=True)
    ossl_multi = _openssl_speed(args.seconds, n)
    print(f"  openssl speed -multi {n} measured", file=sys.stderr, flush=True)

    header = [
        "signatures/s",
        "tamga hsm 1 thread",
        f"tamga hsm {n} procs",
        "openssl 1 proc",
        f"openssl {n} procs",
        "ratio 1",
        f"ratio {n}",
        f"tamga hsm {n} threads",
        "raw pkcs11 1 thread",
    ]
    rows = []
    for algorithm, (raw, one, threaded, multi) in zip(ALGORITHMS, ours, strict=True):
        base_one = ossl_one[algorithm.openssl_name]
        base_multi = ossl_multi[algorithm.openssl_name]
        rows.append(
            [
                algorithm.name,
                _fmt(one),
                _fmt(multi),
                _fmt(base_one),
                _fmt(base_multi),
                _ratio(one, base_one),
                _ratio(multi, base_multi),
                _fmt(threaded),
                _fmt(raw),
            ]
        )
    _print_table(header, rows)
    print()
    for line in (
        "tamga hsm:   hsm.HSMToken.sign() (SHA-256 here, signature on the SoftHSM2 token)",
        f"{n} procs:     {n} processes, each with its own PKCS#11 session and login, rates added",
        "openssl:     openssl speed, the same machine's raw software baseline (-multi for N)",
        "ratio 1:     tamga hsm 1 thread / openssl 1 proc",
        f"ratio {n}:     tamga hsm {n} procs / openssl {n} procs",
        f"{n} threads:   {n} threads in one process, serialised by hsm's process-wide PKCS#11 lock",
        "raw pkcs11:  python-pkcs11 straight to the token, key looked up once, no lock",
    ):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Certificates per second through Tamga's issuance, and CRL generation for big revocation lists.

    .venv/bin/python bench/issue.py [--certs 100] [--database-url URL] [--crl-sizes 10000,100000]
                                    [--profile FILE]

Makes a throwaway ``TAMGA_HOME`` (``tamga init``: SoftHSM2 tokens, root and issuing CA), on the
embedded SQLite database unless ``--database-url`` names an existing, empty PostgreSQL database,
registers one subscriber with ``--certs`` holders, funds its balance, and times
``ca.issuance.issue_certificate`` end to end — cloud key generation in ``tamga-cloud``, the
pre-issuance lint, the HSM signature, the payment hold and its posting, four transactions — for
cloud P-256 certificates with pkilint and without it (``lint=`` a no-op), and for RuToken
certificates from a CSR (the CSR's P-256 key made here, outside the timing); and cloud P-256
certificates from a warm key pool (issue #16): the pool is filled first with ``--certs`` keys
by the worker's own pass (``ca.key_pool.tend_key_pool``, untimed but its rate printed), then
each issuance takes a pooled key instead of generating one. Beside them, the raw
baselines measured in the same run: key pairs generated per second on ``tamga-cloud`` and
signatures per second with the issuing CA key (P-384) through ``HSMToken.sign_digest``, and
pkilint alone on one certificate.

Then ``crl.issue_crl`` signs full CRLs with 10,000 and 100,000 synthetic entries (keyCompromise
with invalidity dates on a third of them): the time to build and sign each and its DER size.
Nothing is asserted: the figures go to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
TAMGA = ROOT / ".venv" / "bin" / "tamga"
INN = "01234567890123"
REASONS = {True: x509.ReasonFlags.key_compromise, False: x509.ReasonFlags.superseded}


def _env(home: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMGA_")}
    env.pop("SOFTHSM2_CONF", None)
    env["TAMGA_HOME"] = str(home)
    if database_url:
        env["TAMGA_DATABASE_URL"] = database_url
    return env


def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def main() -> None:  # noqa: PLR0915 - one linear script, top to bottom
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=100, help="certificates per variant")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--crl-sizes", default="10000,100000")
    parser.add_argument(
        "--profile", help="write cProfile stats of the warm-pool run here (pstats format)"
    )
    args = parser.parse_args()
    # Run as a script, this directory comes first on sys.path, where bench/crl.py would hide
    # the project's ``crl`` package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]

    home = Path(tempfile.mkdtemp(prefix="tamga-bench-issue-"))
    env = _env(home, args.database_url)
    subprocess.run([str(TAMGA), "init"], env=env, check=True, capture_output=True)
    os.environ.clear()
    os.environ.update(env)

    import billing
    from ca.errors import PaymentRequired
    from ca.issuance import issue_certificate
    from ca.key_pool import pool_sizes, tend_key_pool
    from ca.profiles import lint_certificate
    from ca.registry import create_holder, create_subscriber, verify_holder
    from ca.requests import IssueRequest
    from crl import RevokedEntry, issue_crl
    from policies.ca_profiles import ISSUING_CA
    from policies.key_pool import KeyPoolPolicy
    from policies.keys import KeySpec, SignatureScheme
    from signing_api.config import Config
    from signing_api.runtime import Runtime

    rt = Runtime(Config.from_env())
    now = datetime.now(UTC)
    n = args.certs
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
                    "position": "Бухгалтер",
                    "passport_series": "ID1234567",
                    "email": f"h{i}@test.kg",
                    "phone": "+996555123456",
                },
                now=now,
                actor="bench",
            ).id
            for i in range(6 * n + 1)
        ]
        for holder_id in holders:  # §3.3: a certificate needs an identity an officer checked
            verify_holder(session, holder_id, document="bench", now=now, actor="bench")
        billing.record_payment(
            session,
            channel="cash",
            provider="",
            external_id="bench",
            account=INN,
            amount=10**12,
            paid_at=now,
            now=now,
            actor="bench",
        )
    # The first certificate goes through its payment account; pay it and issue it untimed.
    from billing.models import PaymentAccount

    try:
        issue_certificate(
            rt.transaction,
            ca_token=rt.ca_token,
            cloud_token=rt.cloud_token,
            request=IssueRequest.parse(holder_id=holders[0], role="accountant", storage="cloud"),
            public_url=rt.config.public_url,
            now=now,
            actor="bench",
        )
    except PaymentRequired:  # the first certificate is paid through its payment account
        with rt.transaction() as session:
            pa = session.query(PaymentAccount).one()
            billing.record_payment(
                session,
                channel="cash",
                provider="",
                external_id="bench-pa",
                account=pa.number,
                amount=pa.amount_due,
                paid_at=now,
                now=now,
                actor="bench",
            )
        issue_certificate(
            rt.transaction,
            ca_token=rt.ca_token,
            cloud_token=rt.cloud_token,
            request=IssueRequest.parse(holder_id=holders[0], role="accountant", storage="cloud"),
            public_url=rt.config.public_url,
            now=now,
            actor="bench",
        )

    def run(label: str, ids: list[int], profile: str | None = None, **kw: Any) -> float:
        profiler = cProfile.Profile() if profile else None
        start = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for holder in ids:
            issue_certificate(
                rt.transaction,
                ca_token=rt.ca_token,
                cloud_token=rt.cloud_token,
                request=IssueRequest.parse(holder_id=holder, role="accountant", storage="cloud"),
                public_url=rt.config.public_url,
                now=datetime.now(UTC),
                actor="bench",
                **kw,
            )
        rate = len(ids) / (time.perf_counter() - start)
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        print(f"  {label:<44} {rate:8.1f} certificates/s")
        return rate

    print(
        f"Tamga issuance benchmark — {platform.node()}, {platform.machine()}, "
        f"Python {platform.python_version()}, {'PostgreSQL' if args.database_url else 'SQLite'}"
        f", {n} certificates per variant"
    )
    print("end to end (issue_certificate: key, lint, HSM signature, hold, four transactions):")
    batches = iter(holders[1:])

    def batch() -> list[int]:
        return [next(batches) for _ in range(n)]

    def fill_pool() -> None:
        """The worker's own pass fills the pool with n P-256 keys (untimed, its time printed)."""
        policy = KeyPoolPolicy(
            targets=(("ec-p256", n),), max_age=timedelta(days=30), keys_per_pass=n,
            pass_budget=timedelta(hours=1),
        )  # fmt: skip
        start = time.perf_counter()
        filled = tend_key_pool(
            rt.transaction, rt.cloud_token, now=datetime.now(UTC), actor="bench", policy=policy
        )
        took = time.perf_counter() - start
        assert filled.added == n and not filled.errors, filled
        print(f"  {'(untimed: pool filled by the worker pass,':<44} {n / took:8.1f} keys/s)")

    def used_up() -> None:
        with rt.transaction() as session:
            left = pool_sizes(session, now=datetime.now(UTC))
        assert not left, f"the pool was not used up: {left}"

    run("cloud P-256, empty pool, pkilint included", batch())
    fill_pool()
    run("cloud P-256, warm key pool, pkilint included", batch())
    used_up()
    fill_pool()
    run("cloud P-256, warm key pool, pkilint excluded", batch(), lint=lambda _c: [])
    used_up()
    run("cloud P-256, empty pool, pkilint excluded", batch(), lint=lambda _c: [])
    if args.profile:
        fill_pool()
        run("(cProfile) cloud P-256, warm pool, pkilint", batch(), profile=args.profile)
        used_up()
    csrs = [_csr() for _ in range(n)]
    start = time.perf_counter()
    for holder, csr in zip(batch(), csrs, strict=True):
        issue_certificate(
            rt.transaction,
            ca_token=rt.ca_token,
            cloud_token=rt.cloud_token,
            request=IssueRequest.parse(
                holder_id=holder, role="accountant", storage="rutoken", csr=csr
            ),
            public_url=rt.config.public_url,
            now=datetime.now(UTC),
            actor="bench",
        )
    print(
        f"  {'RuToken CSR (P-256), pkilint included':<44} "
        f"{n / (time.perf_counter() - start):8.1f} certificates/s"
    )

    print("raw baselines, same run:")
    spec = KeySpec.parse("ec-p256")
    start = time.perf_counter()
    labels = [f"bench-{secrets.token_hex(6)}" for _ in range(n)]
    for label in labels:
        rt.cloud_token.generate_key(label, spec)
    print(
        f"  {'tamga-cloud P-256 key pairs generated':<44} "
        f"{n / (time.perf_counter() - start):8.1f} /s"
    )
    for label in labels:
        rt.cloud_token.destroy_key(label)
    digest = os.urandom(48)
    start = time.perf_counter()
    for _ in range(n):
        rt.ca_token.sign_digest(ISSUING_CA.key_label, digest, SignatureScheme("ecdsa-sha384"))
    print(
        f"  {'issuing CA key (P-384) signatures':<44} {n / (time.perf_counter() - start):8.1f} /s"
    )
    with rt.transaction() as session:
        from ca.models import Certificate

        row = session.query(Certificate).filter(Certificate.der.is_not(None)).first()
        assert row is not None and row.der is not None
        cert = x509.load_der_x509_certificate(row.der)
    start = time.perf_counter()
    for _ in range(n):
        lint_certificate(cert)
    print(f"  {'pkilint alone on one certificate':<44} {n / (time.perf_counter() - start):8.1f} /s")

    print("CRL generation (issue_crl, issuing CA, synthetic entries):")
    for size in (int(s) for s in args.crl_sizes.split(",")):
        entries = [
            RevokedEntry(
                serial=secrets.randbits(159) | (1 << 64),
                revoked_at=now - timedelta(minutes=i % 10_000),
                reason=REASONS[i % 3 == 0],
                invalidity_date=now - timedelta(days=1) if i % 3 == 0 else None,
                not_after=now + timedelta(days=365),
            )
            for i in range(size)
        ]
        start = time.perf_counter()
        with rt.transaction() as session:
            issued = issue_crl(
                session,
                issuer="issuing",
                token=rt.ca_token,
                revoked=entries,
                now=datetime.now(UTC),
                actor="bench",
            )
        took = time.perf_counter() - start
        size_mb, per_entry = len(issued.der) / 1e6, len(issued.der) / size
        print(
            f"  {size:>7} entries: {took:6.2f} s to build, sign and record; "
            f"{size_mb:6.2f} MB DER ({per_entry:.0f} bytes/entry)"
        )
    print(f"(home {home} left for inspection)", file=sys.stderr)


if __name__ == "__main__":
    main()

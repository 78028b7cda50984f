"""The cloud key pool (issue #16, docs/certificates.md "The cloud key pool").

Real SoftHSM and real databases (SQLite and PostgreSQL): the worker's pass fills the pool to
its target and no further, a bounded number of keys per pass, with keys as locked in as the
ones issuance generates; issuance takes the oldest ready key of the wanted spec (the
certificate's key is the pooled SPKI, the row is gone, the label signs) and generates one when
there is none; expired keys are never taken and the worker destroys and journals them; a taken
key never returns to the pool, whatever happens to its issuance; on PostgreSQL concurrent
claims and issuances never share a key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from ca.errors import LintFailed
from ca.issuance import issue_certificate
from ca.key_pool import claim_key
from ca.models import Certificate, PooledKey
from ca.profiles import Finding, Severity
from ca.requests import IssueRequest
from db import AuditEntry
from hsm import HSMError, HSMToken, KeyInfo
from policies.key_pool import KeyPoolPolicy
from policies.keys import KeySpec, SignatureScheme
from signing_api.worker import Tally, Worker
from tests.ca_fixtures import CA_URL, CaApi, register
from tests.hsm_fixtures import PKCS11_MODULE, TEST_PINS
from tests.integration.ca.test_issuance import (
    HEAD_CLOUD,
    INN,
    _BrokenToken,
    _paid_first,
    _verify,
)

pytestmark = [pytest.mark.hsm, pytest.mark.db]

CHECK_TOKEN_KEYS = Path(__file__).resolve().parents[2] / "check_token_keys.py"
P256 = KeySpec.parse("ec-p256")
RSA = KeySpec.parse("rsa-2048")


def _policy(
    p256: int = 3, rsa: int = 1, *, per_pass: int = 2, max_age: timedelta = timedelta(days=1)
) -> KeyPoolPolicy:
    return KeyPoolPolicy(
        targets=(("ec-p256", p256), ("rsa-2048", rsa)),
        max_age=max_age,
        keys_per_pass=per_pass,
        pass_budget=timedelta(minutes=5),  # the count bounds these passes, not the clock
    )


def _worker(api: CaApi, policy: KeyPoolPolicy) -> Worker:
    worker = Worker(api.runtime, mail=False)
    worker.key_pool = policy
    return worker


def _fill(api: CaApi, policy: KeyPoolPolicy) -> None:
    worker = _worker(api, policy)
    for _ in range(50):
        done = worker.tend_key_pool(Tally())
        assert done is not None and not done.errors, done
        if done.added == 0:
            return
    raise AssertionError("the pool did not fill")


def _pool(api: CaApi) -> list[PooledKey]:
    """The pool's rows, oldest first (the order issuance takes them)."""
    with api.runtime.transaction() as session:
        rows = session.scalars(
            select(PooledKey).order_by(PooledKey.created_at, PooledKey.label)
        ).all()
        session.expunge_all()
    return list(rows)


def _audits(api: CaApi, action: str) -> list[dict[str, Any]]:
    with api.runtime.transaction() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        ).all()
        return [{**e.details_dict(), "outcome": e.outcome} for e in entries]


def _spki(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _token_keys() -> dict[str, dict[str, Any]]:
    """What python-pkcs11 (not Tamga's hsm package) sees on tamga-cloud, in another process."""
    result = subprocess.run(
        [sys.executable, str(CHECK_TOKEN_KEYS), PKCS11_MODULE, "tamga-cloud",
         TEST_PINS["tamga-cloud"]],
        env={"SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    return {key["label"]: key for key in json.loads(result.stdout)}


def _issue(api: CaApi, holder: int, **more: Any) -> Certificate:
    rt = api.runtime
    request = IssueRequest.parse(
        holder_id=holder, role="head", storage="cloud", key_spec=more.pop("key_spec", None)
    )
    issued = issue_certificate(
        rt.transaction, ca_token=more.pop("ca_token", rt.ca_token), cloud_token=rt.cloud_token,
        request=request, public_url=CA_URL, now=api.clock.now, actor="test", **more,
    )  # fmt: skip
    certificate: Certificate = issued.certificate
    return certificate


def _holder_with_balance(api: CaApi, certificates: int) -> int:
    """A holder whose subscriber already has its first certificate and money for more."""
    holder = register(api)
    _paid_first(api, holder)
    _issue(api, holder)  # the first certificate used its payment account (the pool is empty)
    api.pay(INN, certificates * HEAD_CLOUD)
    return holder


# ---- the worker fills the pool --------------------------------------------------------------


def test_the_worker_fills_the_pool_to_its_target_and_no_further(ca_api: CaApi) -> None:
    """Targets 3 × P-256 and 1 × RSA-2048, 2 keys per pass: 2 + 2 + 0. With the per-pass bound
    dropped the first pass makes 4; with the target check dropped the third pass adds more."""
    worker = _worker(ca_api, _policy())
    first = worker.run_once()  # the pass is part of the worker's loop
    assert first.errors == [], first.errors
    assert len(_pool(ca_api)) == 2
    second = worker.tend_key_pool(Tally())
    assert second is not None and second.added == 2, second
    third = worker.tend_key_pool(Tally())
    assert third is not None and third.added == 0 and third.errors == [], third
    rows = _pool(ca_api)
    assert sorted(r.key_spec for r in rows) == ["ec-p256", "ec-p256", "ec-p256", "rsa-2048"]

    # Each row is a key pair on tamga-cloud whose public half is the stored SPKI, generated
    # like issuance's keys: sensitive, never extractable, sign-only, value not readable.
    cloud: HSMToken = ca_api.runtime.cloud_token
    on_token = _token_keys()
    for row in rows:
        assert row.label.startswith("cloud-") and len(row.label) == 30, row.label
        assert _spki(cloud.public_key(row.label)) == row.spki_der
        key = on_token[row.label]
        assert key["sensitive"] and key["always_sensitive"], key
        assert not key["extractable"] and key["never_extractable"], key
        assert not key["decrypt"] and not key["unwrap"] and not key["derive"], key
        assert key["sign"] and key["token"] and key["private"], key
        assert key["value_readable"] is False, key
    # One journal entry per pass that added keys, naming every label by spec.
    pooled = _audits(ca_api, "ca.key_pool.pooled")
    assert len(pooled) == 2
    named = [label for entry in pooled for labels in entry["labels"].values() for label in labels]
    assert sorted(named) == sorted(r.label for r in rows)
    assert [e["count"] for e in pooled] == [2, 2]
    # The emptiest spec (by share of its target) goes first: RSA is not left for last.
    assert sorted(pooled[0]["labels"]) == ["ec-p256", "rsa-2048"]


class _FillingMeanwhile:
    """tamga-cloud, except that while its first key is generated another worker fills the pool
    (two workers on two nodes, deterministically interleaved)."""

    def __init__(self, token: HSMToken, other: Worker) -> None:
        self.token, self.other = token, other
        self.made: list[str] = []

    def generate_key(self, label: str, spec: KeySpec) -> KeyInfo:
        if not self.made:
            _fill_from(self.other)
        info = self.token.generate_key(label, spec)
        self.made.append(info.label)
        return info

    def destroy_key(self, label: str) -> None:
        self.token.destroy_key(label)


def _fill_from(worker: Worker) -> None:
    while (done := worker.tend_key_pool(Tally())) is not None and done.added:
        pass


def test_two_workers_never_fill_the_pool_past_its_target(ca_api: CaApi) -> None:
    """Both read an empty pool; the second records its keys after the first filled it: its
    keys are surplus, destroyed and journalled, never pooled (with the recount under the lock
    dropped, the pool held 4 keys for a target of 2)."""
    policy = _policy(p256=2, rsa=0)
    from ca.key_pool import tend_key_pool

    token = _FillingMeanwhile(ca_api.runtime.cloud_token, _worker(ca_api, policy))
    done = tend_key_pool(
        ca_api.runtime.transaction, token, now=ca_api.clock.now, actor="test", policy=policy,  # type: ignore[arg-type]
    )  # fmt: skip
    assert done.added == 0 and sorted(done.surplus) == sorted(token.made), done
    assert len(token.made) == 2
    rows = _pool(ca_api)
    assert len(rows) == 2 and not {r.label for r in rows} & set(token.made)
    labels = ca_api.runtime.cloud_token.key_labels()
    assert not set(token.made) & set(labels)  # the surplus keys are gone from the token
    destroyed = _audits(ca_api, "ca.key_pool.destroyed")
    assert [(e["reason"], sorted(e["labels"])) for e in destroyed] == [
        ("surplus", sorted(token.made))
    ]


# ---- issuance takes a pooled key ------------------------------------------------------------


def test_a_cloud_certificate_takes_the_oldest_pooled_key(ca_api: CaApi, tmp_path: Path) -> None:
    """Through the API: the certificate certifies the pooled SPKI, its record names the pooled
    label, the row is gone and the label signs (with the claim dropped, the key was new)."""
    holder = register(ca_api)
    _fill(ca_api, _policy(p256=1, rsa=0))
    ca_api.clock.now += timedelta(minutes=1)
    _fill(ca_api, _policy(p256=2, rsa=0))
    oldest, younger = _pool(ca_api)
    assert oldest.created_at < younger.created_at
    _paid_first(ca_api, holder)
    done = ca_api.post(
        "/api/v1/certificates", {"holder_id": holder, "role": "head", "storage": "cloud"}
    )
    assert done.status_code == 201, done.json
    cert = _verify(tmp_path, done.json)  # openssl verify and pkilint
    assert _spki(cert.public_key()) == oldest.spki_der
    assert [r.label for r in _pool(ca_api)] == [younger.label]
    with ca_api.runtime.transaction() as session:
        row = session.scalars(select(Certificate)).one()
        assert (row.key_label, row.key_spec) == (oldest.label, "ec-p256")
    signing = _audits(ca_api, "ca.certificate.signing")[-1]
    assert (signing["key_label"], signing["key_source"]) == (oldest.label, "pool")
    # The label is what signing uses: the key signs, and the certificate's key verifies it.
    digest = os.urandom(32)
    signature = ca_api.runtime.cloud_token.sign_digest(
        oldest.label, digest, SignatureScheme.ECDSA_SHA256
    )
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    public_key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_without_a_ready_key_of_the_spec_issuance_generates_one(ca_api: CaApi) -> None:
    """A pool of RSA keys does not serve a P-256 request; an exhausted pool is no refusal."""
    holder = _holder_with_balance(ca_api, 3)
    _fill(ca_api, _policy(p256=0, rsa=1))
    (rsa_row,) = _pool(ca_api)
    before = set(ca_api.runtime.cloud_token.key_labels())

    p256 = _issue(ca_api, holder)  # none of its spec: generated
    assert p256.key_label not in before and p256.key_spec == "ec-p256"
    assert [r.label for r in _pool(ca_api)] == [rsa_row.label]
    rsa = _issue(ca_api, holder, key_spec="rsa-2048")  # the pooled one
    assert rsa.key_label == rsa_row.label and _pool(ca_api) == []
    again = _issue(ca_api, holder, key_spec="rsa-2048")  # the pool is empty: generated
    assert again.key_label not in before | {rsa.key_label} and again.status == "active"
    sources = [(e["key_spec"], e["key_source"]) for e in _audits(ca_api, "ca.certificate.signing")]
    assert sources[-3:] == [("ec-p256", "generated"), ("rsa-2048", "pool"),
                            ("rsa-2048", "generated")]  # fmt: skip


# ---- age ------------------------------------------------------------------------------------


def test_expired_keys_are_never_taken_and_the_worker_destroys_them(ca_api: CaApi) -> None:
    """Maximum age one day: a key a second younger is taken; at exactly one day it is not (the
    issuance generates), and the worker's next pass destroys it on the token, removes its row,
    journals it and makes a fresh one."""
    holder = _holder_with_balance(ca_api, 3)
    policy = _policy(p256=2, rsa=0, max_age=timedelta(days=1))
    _fill(ca_api, policy)
    oldest, last = _pool(ca_api)
    made_at = ca_api.clock.now

    ca_api.clock.now = made_at + timedelta(days=1) - timedelta(seconds=1)
    taken = _issue(ca_api, holder, key_pool=policy)
    assert taken.key_label == oldest.label
    ca_api.clock.now = made_at + timedelta(days=1)
    fresh = _issue(ca_api, holder, key_pool=policy)
    assert fresh.key_label != last.label
    assert [r.label for r in _pool(ca_api)] == [last.label]  # expired, still on the token
    assert ca_api.runtime.cloud_token.has_key(last.label)

    done = _worker(ca_api, policy).tend_key_pool(Tally())
    assert done is not None and done.expired == [last.label] and done.errors == [], done
    assert not ca_api.runtime.cloud_token.has_key(last.label)
    rows = _pool(ca_api)
    assert last.label not in {r.label for r in rows}
    assert len(rows) == 2 and {r.created_at for r in rows} == {ca_api.clock.now}  # refilled
    destroyed = _audits(ca_api, "ca.key_pool.destroyed")
    assert [(e["reason"], e["labels"], e["outcome"]) for e in destroyed] == [
        ("expired", [last.label], "success")
    ]
    # The certificates' keys were never touched by the expiry.
    for row in (taken, fresh):
        assert row.key_label is not None and ca_api.runtime.cloud_token.has_key(row.key_label)


# ---- a taken key never returns --------------------------------------------------------------


def test_a_taken_key_is_destroyed_when_its_issuance_fails(ca_api: CaApi) -> None:
    """Refused before the reservation (lint) or failed after it (the CA key unreachable): the
    key taken from the pool is destroyed on the token, not put back, and the journal says so."""
    holder = _holder_with_balance(ca_api, 3)
    _fill(ca_api, _policy(p256=3, rsa=0))
    first, second, third = _pool(ca_api)

    finding = Finding(Severity.ERROR, "test.refused", "certificate", "test", "refused by test")
    with pytest.raises(LintFailed):
        _issue(ca_api, holder, lint=lambda _cert: [finding])
    assert not ca_api.runtime.cloud_token.has_key(first.label)
    assert [r.label for r in _pool(ca_api)] == [second.label, third.label]
    refused = _audits(ca_api, "ca.key_pool.destroyed")
    assert [(e["reason"], e["labels"]) for e in refused] == [("issuance refused", [first.label])]

    with pytest.raises(HSMError):
        _issue(ca_api, holder, ca_token=_BrokenToken(ca_api.runtime.ca_token))
    assert not ca_api.runtime.cloud_token.has_key(second.label)
    assert [r.label for r in _pool(ca_api)] == [third.label]
    with ca_api.runtime.transaction() as session:
        failed = session.scalars(select(Certificate).where(Certificate.status == "failed")).one()
        assert failed.key_label == second.label and failed.key_destroyed_at is not None
    entry = _audits(ca_api, "ca.certificate.failed")[-1]
    assert (entry["key_label"], entry["key_destroyed"]) == (second.label, True)

    done = _issue(ca_api, holder)  # the next issuance takes the next key, never a used one
    assert done.key_label == third.label and _pool(ca_api) == []


# ---- concurrency (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_claims_each_get_their_own_key(ca_api: CaApi) -> None:
    """Ten transactions claim at once and all stay open until every one has its key: with
    SKIP LOCKED each gets another row; with a plain FOR UPDATE (or no lock) the others wait on
    the first one's row and the barrier breaks."""
    _fill(ca_api, _policy(p256=10, rsa=0, per_pass=10))
    pooled = {r.label for r in _pool(ca_api)}
    barrier = threading.Barrier(10, timeout=15)

    def claim(_: int) -> str | None:
        with ca_api.runtime.transaction() as session:
            taken = claim_key(session, P256, now=ca_api.clock.now)
            barrier.wait()  # every transaction holds its row lock here, at the same time
            return taken.label if taken is not None else None

    with ThreadPoolExecutor(10) as pool:
        labels = list(pool.map(claim, range(10)))
    assert None not in labels and len(set(labels)) == 10 and set(labels) == pooled
    assert _pool(ca_api) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_ten_concurrent_issuances_take_ten_distinct_pooled_keys(ca_api: CaApi) -> None:
    """A pool of 10 and 10 issuances in threads: every certificate has a pooled key, no label
    twice, the pool is empty."""
    first = _holder_with_balance(ca_api, 10)
    holders = [first] + [register(ca_api, email=f"h{i}@test.kg") for i in range(9)]
    _fill(ca_api, _policy(p256=10, rsa=0, per_pass=10))
    pooled = {r.label for r in _pool(ca_api)}
    start = threading.Barrier(10, timeout=30)

    def issue(holder: int) -> str | None:
        start.wait()
        return _issue(ca_api, holder).key_label

    with ThreadPoolExecutor(10) as pool:
        labels = list(pool.map(issue, holders))
    assert len(set(labels)) == 10 and set(labels) == pooled
    assert _pool(ca_api) == []
    with ca_api.runtime.transaction() as session:
        rows = session.scalars(
            select(Certificate.key_label).where(Certificate.status == "active")
        ).all()
    assert len(rows) == len(set(rows)) == 11  # the first certificate's key was generated

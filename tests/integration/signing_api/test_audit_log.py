"""Signed checkpoints of the audit journal and the /audit routes (issue #16), real SoftHSM and
both databases: the checkpoint verified by ``openssl dgst`` with the key of ``/ca/audit.crt``,
inclusion and consistency proofs fetched over HTTP and checked by the RFC 9162 verifier of
test_sequencer (written from the RFC, not from db.merkle), refusals as problem+json.
"""

from __future__ import annotations

import base64
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Table, select, text

from ca.audit_log import sign_checkpoint, verify_checkpoint_signatures
from db import AuditChainBroken, AuditCheckpoint, AuditEntry, append, verify_journal
from policies.audit import AUDIT_LOG_POLICY
from policies.ca_profiles import AUDIT_LOG, AUDIT_LOG_POLICY_OID
from signing_api.worker import Worker
from tests.ca_fixtures import CA_NOW, CaApi
from tests.hsm_fixtures import TEST_PINS
from tests.integration.ca.test_dispatch import _assert_sign_only_and_locked, _token_keys
from tests.integration.db.test_sequencer import (
    documented_leaf,
    mth,
    rfc_verify_consistency,
    rfc_verify_inclusion,
)
from tests.pki_tools import pkilint, write_pem

pytestmark = [pytest.mark.hsm, pytest.mark.db]

JOURNAL = cast(Table, AuditEntry.__table__)


def _leaves(api: CaApi) -> list[bytes]:
    with api.runtime.transaction() as session:
        rows = session.execute(
            select(JOURNAL).where(JOURNAL.c.sequence.is_not(None)).order_by(JOURNAL.c.sequence)
        ).all()
    return [documented_leaf(row) for row in rows]


def _activity(api: CaApi, n: int) -> None:
    """``n`` journal entries in one business transaction (sequenced inline at its commit)."""
    with api.runtime.transaction() as session:
        for k in range(n):
            append(session, actor="test", action="test.event", object=f"o:{k}", now=api.clock.now)


def _checkpoint(api: CaApi) -> dict[str, Any]:
    reply = api.get("/audit/checkpoint", who=None)
    assert reply.status_code == 200, reply.json
    body: dict[str, Any] = reply.json
    return body


def _worker_pass(api: CaApi) -> None:
    tally = Worker(api.runtime, mail=False).run_once()
    assert tally.errors == [], tally.errors


def test_no_checkpoint_yet_is_a_404(ca_api: CaApi) -> None:
    reply = ca_api.get("/audit/checkpoint", who=None)
    assert reply.status_code == 404
    assert reply.content_type == "application/problem+json"


def test_the_checkpoint_verifies_with_openssl_and_says_the_trees_root(
    ca_api: CaApi, tmp_path: Path
) -> None:
    _activity(ca_api, 5)
    _worker_pass(ca_api)
    checkpoint = _checkpoint(ca_api)
    leaves = _leaves(ca_api)
    assert checkpoint["tree_size"] == len(leaves) > 5
    assert checkpoint["root_hash"] == mth(leaves).hex()
    origin, size, root, stamp, end = checkpoint["body"].split("\n")
    assert origin == "127.0.0.1:8000/audit"
    assert int(size) == checkpoint["tree_size"]
    assert base64.b64decode(root) == bytes.fromhex(checkpoint["root_hash"])
    assert stamp == "timestamp " + CA_NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert end == ""
    assert checkpoint["certificate_url"] == "http://127.0.0.1:8000/ca/audit.crt"

    der = ca_api.get("/ca/audit.crt", who=None)
    assert der.status_code == 200 and der.content_type == "application/pkix-cert"
    certificate = x509.load_der_x509_certificate(der.data)
    pem = write_pem(tmp_path / "audit.pem", certificate)
    pkilint(pem)
    policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == [AUDIT_LOG_POLICY_OID]
    (tmp_path / "audit.pub").write_bytes(
        certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "body").write_bytes(checkpoint["body"].encode("utf-8"))
    (tmp_path / "sig").write_bytes(base64.b64decode(checkpoint["signature"]))
    verify = ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "audit.pub"), "-signature"]
    done = subprocess.run(
        [*verify, str(tmp_path / "sig"), str(tmp_path / "body")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "Verified OK" in done.stdout, done.stderr
    (tmp_path / "body").write_bytes(checkpoint["body"].replace(size, str(int(size) + 1)).encode())
    forged = subprocess.run(
        [*verify, str(tmp_path / "sig"), str(tmp_path / "body")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert forged.returncode != 0


def test_inclusion_and_consistency_proofs_over_http(ca_api: CaApi) -> None:
    _activity(ca_api, 3)
    _worker_pass(ca_api)
    first = _checkpoint(ca_api)
    _activity(ca_api, 9)
    ca_api.clock.now += AUDIT_LOG_POLICY.checkpoint_interval
    _worker_pass(ca_api)
    second = _checkpoint(ca_api)
    assert second["tree_size"] >= first["tree_size"] + 9  # the pass may journal too
    leaves = _leaves(ca_api)
    m, n = first["tree_size"], second["tree_size"]
    first_root, second_root = bytes.fromhex(first["root_hash"]), bytes.fromhex(second["root_hash"])

    proof = ca_api.get("/audit/consistency", who=None, **{"from": m})
    assert proof.status_code == 200, proof.json
    assert (proof.json["first"], proof.json["second"]) == (m, n)
    path = [bytes.fromhex(h) for h in proof.json["consistency_path"]]
    assert rfc_verify_consistency(m, n, first_root, second_root, path)
    assert not rfc_verify_consistency(m, n, second_root, second_root, path)

    for sequence in (1, m, m + 1, n):
        reply = ca_api.get(f"/audit/proof/{sequence}", who=None)
        assert reply.status_code == 200, reply.json
        assert reply.json["tree_size"] == n and reply.json["leaf_index"] == sequence - 1
        path = [bytes.fromhex(h) for h in reply.json["audit_path"]]
        assert rfc_verify_inclusion(leaves[sequence - 1], sequence - 1, n, path, second_root)
    old = ca_api.get(f"/audit/proof/{m}", who=None, tree_size=m)
    path = [bytes.fromhex(h) for h in old.json["audit_path"]]
    assert rfc_verify_inclusion(leaves[m - 1], m - 1, m, path, first_root)
    assert "Асанов" not in proof.get_data(as_text=True)  # hashes only, never content


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/audit/proof/0", {}, 422),
        ("/audit/proof/99999", {}, 422),
        ("/audit/proof/1", {"tree_size": "999999"}, 422),
        ("/audit/proof/1", {"tree_size": "x"}, 422),
        ("/audit/consistency", {"from": "3", "to": "2"}, 422),
        ("/audit/consistency", {"from": "-1"}, 422),
        ("/audit/consistency", {}, 422),
        ("/audit/consistency", {"from": "1", "to": "999999"}, 422),
    ],
)
def test_proof_refusals_are_problems(
    ca_api: CaApi, path: str, query: dict[str, str], status: int
) -> None:
    _worker_pass(ca_api)
    reply = ca_api.get(path, who=None, **query)
    assert reply.status_code == status, reply.json
    assert reply.content_type == "application/problem+json"


def test_checkpoints_are_signed_when_due(ca_api: CaApi) -> None:
    _worker_pass(ca_api)
    token, url = ca_api.runtime.ca_token, "http://127.0.0.1:8000"

    def sign(now: Any) -> AuditCheckpoint | None:
        with ca_api.runtime.transaction() as session:
            return sign_checkpoint(session, token, public_url=url, now=now)

    now = ca_api.clock.now
    assert sign(now + timedelta(seconds=59)) is None  # nothing new, a minute not yet gone
    _activity(ca_api, 1)
    assert sign(now + timedelta(seconds=30)) is None  # grown, but the interval not gone
    grown = sign(now + AUDIT_LOG_POLICY.checkpoint_interval)
    assert grown is not None
    later = grown.signed_at
    assert sign(later + timedelta(minutes=59)) is None  # unchanged: hourly only
    assert sign(later + AUDIT_LOG_POLICY.checkpoint_max_age) is not None
    with ca_api.runtime.transaction() as session:
        assert verify_checkpoint_signatures(session) == 3
        assert verify_journal(session).checkpoints == 3


def test_a_forged_checkpoint_signature_is_found(ca_api: CaApi) -> None:
    _worker_pass(ca_api)
    engine = ca_api.runtime.engine
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
        else:
            connection.exec_driver_sql("DROP TRIGGER audit_checkpoints_no_update")
        connection.execute(text("UPDATE audit_checkpoints SET body = body || ' '"))
    with ca_api.runtime.transaction() as session, pytest.raises(ValueError, match="checkpoint"):
        verify_checkpoint_signatures(session)


def test_the_audit_key_is_sensitive_and_never_extractable(ca_api: CaApi) -> None:
    _worker_pass(ca_api)
    keys = _token_keys(Path(os.environ["SOFTHSM2_CONF"]), TEST_PINS["tamga-ca"])
    (key,) = [k for k in keys if k["label"] == AUDIT_LOG.key_label]
    _assert_sign_only_and_locked(key)


def test_healthz_reports_the_sequencers_backlog(ca_api: CaApi) -> None:
    _worker_pass(ca_api)
    health = ca_api.get("/healthz", who=None).json["checks"]["audit"]
    assert health["status"] == "ok"
    assert health["pending"] == 0 and health["delay_seconds"] == 0
    assert health["tree_size"] >= health["checkpoint_tree_size"] > 0
    with ca_api.runtime.engine.begin() as connection:  # an entry no sequencer has seen
        connection.execute(
            JOURNAL.insert().values(
                occurred_at=CA_NOW - timedelta(minutes=5), actor="t", action="a", object="o",
                outcome="success", details="{}", content_hash="0" * 64,
            )
        )  # fmt: skip
    health = ca_api.get("/healthz", who=None).json["checks"]["audit"]
    assert health["pending"] == 1 and health["delay_seconds"] == 300
    assert health["status"] == "lagging"
    with pytest.raises(AuditChainBroken, match="changed after it was written"):
        Worker(ca_api.runtime, mail=False).sequence_audit()  # its content hash is wrong


def test_the_worker_polls_fast_only_where_it_is_the_sequencer(ca_api: CaApi) -> None:
    """PostgreSQL (worker mode): every 0.2 s, the bound of the sequencing delay. Where commits
    sequence inline (SQLite), a poll would take the database's write lock five times a second
    for nothing: the worker only sweeps every 5 s."""
    from dataclasses import replace

    runtime = ca_api.runtime
    for mode, poll in (("worker", AUDIT_LOG_POLICY.poll_seconds), ("inline", 5.0)):
        runtime.config = replace(runtime.config, audit_sequencer=mode)
        assert Worker(runtime, mail=False).sequencer_poll == poll
    assert AUDIT_LOG_POLICY.poll_seconds == 0.2

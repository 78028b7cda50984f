"""The cloud key pool (issue #16): ready key pairs in ``tamga-cloud``, taken once by issuance.

Generating a key pair on the token is most of a cloud certificate's issuance time, so the
worker makes them ahead (``tend_key_pool``, one short pass per worker loop) and issuance takes
one (``claim_key``) instead of generating it. The rules are data in :mod:`policies.key_pool`.

- **Made as issuance makes them**: ``HSMToken.generate_key`` (sensitive, never extractable,
  sign-only), labelled ``cloud-<24 hex>`` like a key generated at issuance, so a certificate's
  ``key_label`` says nothing of where its key came from; the journal does.
- **Taken once**: a key is taken by deleting its row in the taker's own short transaction,
  the row chosen ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent issuances in any number
  of processes each get another row, or none) and under SQLite's one writer
  (``BEGIN IMMEDIATE``). A taken key never returns: if the issuance then fails, the issuance's
  failure path destroys it like a key it generated. An empty pool is not an error: issuance
  generates the key as before.
- **Never past the target**: the worker generates keys outside any transaction, then records
  them in one transaction that counts the pool again under a lock (a PostgreSQL advisory lock;
  SQLite has one writer) and destroys what would overfill it, so workers on several nodes do
  not grow the pool beyond its target.
- **Never older than the maximum age**: the claim skips older keys, and the worker removes
  their rows (committed first, so an issuance can never take a key that is being destroyed),
  then destroys them on the token.
- **Journalled**: ``ca.key_pool.pooled`` (one entry per pass, the labels by key spec) and
  ``ca.key_pool.destroyed`` (labels and the reason: ``expired``, ``surplus``, ``issuance
  refused``); a key taken is named by its issuance's ``ca.certificate.signing`` entry
  (``key_label``, ``key_source: pool``).

A process killed between generating a key and recording it, or between taking a key and
reserving its certificate, leaves a key on the token that no row names (as issuance did before
the pool when killed after generating): it can never be certified or used, only found by its
label.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from ca.models import PooledKey
from db import audit
from hsm import HSMError, HSMToken, KeyInfo, KeyNotFound, PublicKey
from policies.key_pool import KEY_POOL, KeyPoolPolicy
from policies.keys import KeySpec

__all__ = [
    "POOL_OBJECT",
    "PoolPass",
    "TakenKey",
    "claim_key",
    "destroy_taken_key",
    "new_cloud_label",
    "pool_sizes",
    "tend_key_pool",
]

Transaction = Callable[[], AbstractContextManager[Session]]

POOL_OBJECT = "cloud-key-pool"  # the audit journal's object of every pool entry
# Key of the PostgreSQL advisory lock held while recording new keys: the count and the inserts
# of two workers must not interleave. Claims do not take it (they lock their row).
_RECORD_LOCK = zlib.crc32(b"tamga.cloud_key_pool")


def new_cloud_label() -> str:
    """A fresh ``tamga-cloud`` key label (96 random bits: never guessed, never reused)."""
    return f"cloud-{secrets.token_hex(12)}"


@dataclass(frozen=True)
class TakenKey:
    """A key taken from the pool: its label on the token and its public half."""

    label: str
    spec: str
    public_key: PublicKey
    created_at: datetime


def claim_key(
    session: Session, spec: KeySpec, *, now: datetime, policy: KeyPoolPolicy = KEY_POOL
) -> TakenKey | None:
    """Take the oldest ready key of ``spec`` out of the pool, or None when there is none.

    Call it in a transaction of its own and commit at once: the row is deleted, so the key is
    the caller's alone, and the lock is held only for this short transaction.
    """
    row = session.execute(
        select(PooledKey.label, PooledKey.spki_der, PooledKey.created_at)
        .where(PooledKey.key_spec == spec.name, PooledKey.created_at > now - policy.max_age)
        .order_by(PooledKey.created_at, PooledKey.label)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).one_or_none()
    if row is None:
        return None
    gone = session.execute(delete(PooledKey).where(PooledKey.label == row.label))
    if gone.rowcount != 1:  # type: ignore[attr-defined]  # pragma: no cover - our row lock
        return None
    public_key = serialization.load_der_public_key(row.spki_der)
    assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)  # noqa: S101
    return TakenKey(row.label, spec.name, public_key, row.created_at)


def destroy_taken_key(
    session: Session, token: HSMToken, label: str, *, reason: str, now: datetime, actor: str
) -> bool:
    """Destroy a key taken from the pool that no certificate will name; journal it. True if gone."""
    try:
        token.destroy_key(label)
        destroyed = True
    except KeyNotFound:
        destroyed = True
    except HSMError:
        destroyed = False
    _journal_destroyed(session, [label] if destroyed else [], [] if destroyed else [label],
                       reason=reason, now=now, actor=actor)  # fmt: skip
    return destroyed


def pool_sizes(
    session: Session, *, now: datetime, policy: KeyPoolPolicy = KEY_POOL
) -> dict[str, int]:
    """Ready (not expired) keys in the pool per key spec name; specs with none are absent."""
    rows = session.execute(
        select(PooledKey.key_spec, func.count())
        .where(PooledKey.created_at > now - policy.max_age)
        .group_by(PooledKey.key_spec)
    )
    return {spec: int(count) for spec, count in rows}


@dataclass
class PoolPass:
    """What one worker pass did to the pool."""

    pooled: dict[str, list[str]] = field(default_factory=dict)  # spec name -> labels added
    expired: list[str] = field(default_factory=list)  # expired keys destroyed
    surplus: list[str] = field(default_factory=list)  # made but not needed: destroyed
    errors: list[str] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(len(labels) for labels in self.pooled.values())


def tend_key_pool(
    transaction: Transaction,
    token: HSMToken,
    *,
    now: datetime,
    actor: str,
    policy: KeyPoolPolicy = KEY_POOL,
) -> PoolPass:
    """One worker pass: destroy expired keys, then generate a few toward the targets.

    Bounded: at most ``policy.expire_batch`` keys destroyed and ``policy.keys_per_pass`` keys
    generated, and no new key started after ``policy.pass_budget``. An HSM error ends the pass
    (reported in ``errors``); what was done before it is recorded.
    """
    done = PoolPass()
    _expire(transaction, token, done, now=now, actor=actor, policy=policy)
    with transaction() as session:
        sizes = pool_sizes(session, now=now, policy=policy)
    made = _generate(token, sizes, done, policy=policy)
    if made:
        _record(transaction, token, made, done, now=now, actor=actor, policy=policy)
    return done


def _expire(
    transaction: Transaction,
    token: HSMToken,
    done: PoolPass,
    *,
    now: datetime,
    actor: str,
    policy: KeyPoolPolicy,
) -> None:
    # The rows go first, in their own transaction: once it commits no issuance can take these
    # keys, so destroying them cannot pull a key from under a certificate being reserved.
    with transaction() as session:
        labels = list(
            session.scalars(
                select(PooledKey.label)
                .where(PooledKey.created_at <= now - policy.max_age)
                .order_by(PooledKey.created_at, PooledKey.label)
                .limit(policy.expire_batch)
                .with_for_update(skip_locked=True)
            )
        )
        if labels:
            session.execute(delete(PooledKey).where(PooledKey.label.in_(labels)))
    if not labels:
        return
    failed = []
    for label in labels:
        try:
            token.destroy_key(label)
        except KeyNotFound:
            pass  # gone already: nothing left to destroy
        except HSMError as ex:
            failed.append(label)
            done.errors.append(f"expired pool key {label} not destroyed: {ex}")
            continue
        done.expired.append(label)
    with transaction() as session:
        _journal_destroyed(session, done.expired, failed, reason="expired", now=now, actor=actor)


def _deficits(sizes: dict[str, int], policy: KeyPoolPolicy) -> Iterator[KeySpec]:
    """Key specs in the order the next keys should be made: emptiest pool (by share) first."""
    counts = {spec.name: sizes.get(spec.name, 0) for spec in policy.specs}
    by_name = {spec.name: spec for spec in policy.specs}
    while True:
        short = [
            (counts[name] / policy.target(name), name)
            for name in counts
            if counts[name] < policy.target(name)
        ]
        if not short:
            return
        name = min(short)[1]
        counts[name] += 1
        yield by_name[name]


def _generate(
    token: HSMToken, sizes: dict[str, int], done: PoolPass, *, policy: KeyPoolPolicy
) -> list[tuple[KeySpec, KeyInfo]]:
    made: list[tuple[KeySpec, KeyInfo]] = []
    started = time.monotonic()
    budget = policy.pass_budget.total_seconds()
    for spec in _deficits(sizes, policy):
        if len(made) >= policy.keys_per_pass or time.monotonic() - started >= budget:
            break
        try:
            made.append((spec, token.generate_key(new_cloud_label(), spec)))
        except HSMError as ex:
            done.errors.append(f"pool key ({spec.name}) not generated: {ex}")
            break
    return made


def _record(
    transaction: Transaction,
    token: HSMToken,
    made: list[tuple[KeySpec, KeyInfo]],
    done: PoolPass,
    *,
    now: datetime,
    actor: str,
    policy: KeyPoolPolicy,
) -> None:
    try:
        with transaction() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _RECORD_LOCK})
            sizes = pool_sizes(session, now=now, policy=policy)
            room = {spec.name: policy.target(spec.name) - sizes.get(spec.name, 0)
                    for spec in policy.specs}  # fmt: skip
            for spec, info in made:
                if room.get(spec.name, 0) <= 0:
                    done.surplus.append(info.label)
                    continue
                room[spec.name] -= 1
                session.add(
                    PooledKey(
                        label=info.label,
                        key_spec=spec.name,
                        spki_der=info.public_key.public_bytes(
                            serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo,
                        ),
                        created_at=now,
                        created_by=actor[:64],
                    )
                )
                done.pooled.setdefault(spec.name, []).append(info.label)
            if done.pooled:
                audit.append(
                    session,
                    actor=actor,
                    action="ca.key_pool.pooled",
                    object=POOL_OBJECT,
                    details={"labels": done.pooled, "count": done.added},
                    now=now,
                )
            if done.surplus:  # another worker filled the pool meanwhile
                _destroy_all(token, done.surplus)
                _journal_destroyed(session, done.surplus, [], reason="surplus", now=now,
                                   actor=actor)  # fmt: skip
    except BaseException:
        # Not recorded, so never to be used: destroy what this pass made.
        _destroy_all(token, [info.label for _, info in made])
        done.pooled.clear()
        raise


def _destroy_all(token: HSMToken, labels: list[str]) -> None:
    for label in labels:
        with contextlib.suppress(HSMError):  # an unrecorded key can never be certified
            token.destroy_key(label)


def _journal_destroyed(
    session: Session,
    destroyed: list[str],
    failed: list[str],
    *,
    reason: str,
    now: datetime,
    actor: str,
) -> None:
    if not destroyed and not failed:
        return
    details: dict[str, object] = {"labels": destroyed, "reason": reason}
    if failed:
        details["not_destroyed"] = failed
    audit.append(
        session,
        actor=actor,
        action="ca.key_pool.destroyed",
        object=POOL_OBJECT,
        outcome="failure" if failed else "success",
        details=details,
        now=now,
    )

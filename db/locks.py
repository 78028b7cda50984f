"""Named transaction-scoped locks, for writers that must serialise without a row to lock.

On PostgreSQL a named lock is ``pg_advisory_xact_lock`` on a 64-bit key derived from the name:
held until the transaction ends, by one transaction at a time cluster-wide. On SQLite every
transaction already holds the database's write lock (``BEGIN IMMEDIATE``, :mod:`db.engine`),
so there is nothing more to take.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["lock_key", "lock_name"]


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` (the first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


def lock_name(session: Session, name: str) -> None:
    """Take the lock called ``name`` until the session's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})

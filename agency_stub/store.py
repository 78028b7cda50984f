"""The stub's state in ``HOME/state.sqlite3``: the reports it received, their receipts (the exact
bytes, so a replay answers the same receipt across restarts) and their check results.

One process owns the file; a lock serialises writers inside it (the server is threaded).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DueResult", "Store"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    document_sha256 TEXT NOT NULL,
    registration_number TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    request_json TEXT NOT NULL,
    receipt BLOB NOT NULL,
    times_received INTEGER NOT NULL DEFAULT 1,
    conflicting_puts INTEGER NOT NULL DEFAULT 0,
    -- the check decided when the report arrived (the controls at that moment)
    check_result TEXT CHECK (check_result IN ('accepted', 'rejected')),
    check_message TEXT NOT NULL DEFAULT '',
    result_copies INTEGER NOT NULL DEFAULT 1,
    -- none: never posted; pending; posted (every copy got a 2xx); gave-up (4xx several times)
    result_status TEXT NOT NULL CHECK (result_status IN ('none', 'pending', 'posted', 'gave-up')),
    next_attempt_at REAL,
    checked_at TEXT,
    result_cms BLOB,
    result_attempts INTEGER NOT NULL DEFAULT 0,
    result_refusals INTEGER NOT NULL DEFAULT 0,
    result_posts INTEGER NOT NULL DEFAULT 0,
    last_result_status INTEGER
);
CREATE TABLE IF NOT EXISTS registration_counters (
    year INTEGER PRIMARY KEY,
    last INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class DueResult:
    report_id: str
    result: str
    message: str
    copies: int
    cms: bytes | None
    attempts: int
    refusals: int
    posts: int


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialised with every other one in this process."""
        with self.lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def find(self, db: sqlite3.Connection, report_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM reports WHERE report_id = ?", (report_id,)
        ).fetchone()
        return row

    def next_registration(self, db: sqlite3.Connection, year: int) -> int:
        db.execute(
            "INSERT INTO registration_counters (year, last) VALUES (?, 1) "
            "ON CONFLICT (year) DO UPDATE SET last = last + 1",
            (year,),
        )
        number: int = db.execute(
            "SELECT last FROM registration_counters WHERE year = ?", (year,)
        ).fetchone()[0]
        return number

    def insert(self, db: sqlite3.Connection, **fields: Any) -> None:
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM reports").fetchone()[0]
        fields = {"seq": seq, **fields}
        columns = ", ".join(fields)  # fixed names from our own code, never from a request
        marks = ", ".join("?" for _ in fields)
        db.execute(f"INSERT INTO reports ({columns}) VALUES ({marks})", tuple(fields.values()))  # noqa: S608

    def count_replay(self, db: sqlite3.Connection, report_id: str) -> None:
        db.execute(
            "UPDATE reports SET times_received = times_received + 1 WHERE report_id = ?",
            (report_id,),
        )

    def count_conflict(self, db: sqlite3.Connection, report_id: str) -> None:
        db.execute(
            "UPDATE reports SET conflicting_puts = conflicting_puts + 1 WHERE report_id = ?",
            (report_id,),
        )

    def reports(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM reports ORDER BY seq").fetchall()
        return [
            {
                "report_id": row["report_id"],
                "document_sha256": row["document_sha256"],
                "registration_number": row["registration_number"],
                "received_at": row["received_at"],
                "times_received": row["times_received"],
                "conflicting_puts": row["conflicting_puts"],
                "check": row["check_result"],
                "check_message": row["check_message"],
                "result_status": row["result_status"],
                "result_posted": row["result_status"] == "posted",
                "result_posts": row["result_posts"],
                "result_attempts": row["result_attempts"],
                "last_result_status": row["last_result_status"],
                "checked_at": row["checked_at"],
            }
            for row in rows
        ]

    def due(self, now: float) -> list[DueResult]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM reports WHERE result_status = 'pending' AND next_attempt_at <= ? "
                "ORDER BY next_attempt_at",
                (now,),
            ).fetchall()
        return [
            DueResult(
                report_id=row["report_id"],
                result=row["check_result"],
                message=row["check_message"],
                copies=row["result_copies"],
                cms=row["result_cms"],
                attempts=row["result_attempts"],
                refusals=row["result_refusals"],
                posts=row["result_posts"],
            )
            for row in rows
        ]

    def save_result_cms(self, report_id: str, cms: bytes, checked_at: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE reports SET result_cms = ?, checked_at = ? "
                "WHERE report_id = ? AND result_cms IS NULL",
                (cms, checked_at, report_id),
            )

    def record_attempt(
        self,
        report_id: str,
        *,
        http_status: int | None,
        posted: bool,
        refused: bool,
        status: str,
        next_attempt_at: float | None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE reports SET result_attempts = result_attempts + 1, "
                "result_posts = result_posts + ?, result_refusals = result_refusals + ?, "
                "last_result_status = ?, result_status = ?, next_attempt_at = ? "
                "WHERE report_id = ?",
                (int(posted), int(refused), http_status, status, next_attempt_at, report_id),
            )

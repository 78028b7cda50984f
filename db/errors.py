"""Errors of the database layer. Messages name the database with its password masked."""

from __future__ import annotations

__all__ = ["AuditChainBroken", "DBError", "DatabaseUnavailable"]


class DBError(Exception):
    """Root of every error raised by ``db``."""


class DatabaseUnavailable(DBError):
    """The database cannot be reached or refused the connection; says which URL and why."""


class AuditChainBroken(DBError):
    """The hash chain of the audit journal is broken: something changed, removed or reordered.

    ``sequence`` is the first journal sequence number that can no longer be trusted (``0`` when
    the fault is in the ``audit_head`` row itself); ``reason`` says what was found there.
    """

    def __init__(self, sequence: int, reason: str) -> None:
        super().__init__(f"audit chain broken at sequence {sequence}: {reason}")
        self.sequence = sequence
        self.reason = reason

    def __reduce__(self) -> tuple[type[AuditChainBroken], tuple[int, str]]:
        # Keep the error picklable (it may cross a process boundary, e.g. multiprocessing).
        return (type(self), (self.sequence, self.reason))

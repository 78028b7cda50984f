"""Database layer: SQLAlchemy base, engines and sessions, migrations, the audit journal.

Imports nothing of Tamga's other packages. Domain packages derive their models from
:class:`Base`, take a :class:`~sqlalchemy.orm.Session` from :func:`make_session_factory`, and
journal security and money events with :func:`append`.
"""

from db.audit import (
    GENESIS_HASH,
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    JournalCheck,
    append,
    verify_chain,
    verify_journal,
)
from db.base import Base, UTCDateTime
from db.engine import check_connection, default_sqlite_url, make_engine, make_session_factory
from db.errors import AuditChainBroken, DatabaseUnavailable, DBError
from db.migrate import current_revision, head_revision, upgrade

__all__ = [
    "GENESIS_HASH",
    "AuditChainBroken",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditHead",
    "Base",
    "DBError",
    "DatabaseUnavailable",
    "JournalCheck",
    "UTCDateTime",
    "append",
    "check_connection",
    "current_revision",
    "default_sqlite_url",
    "head_revision",
    "make_engine",
    "make_session_factory",
    "upgrade",
    "verify_chain",
    "verify_journal",
]

"""Alembic migrations of the Tamga database (hand-written; run them with :func:`db.migrate.upgrade`)."""

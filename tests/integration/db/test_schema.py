"""The schema exists only through migrations, and the migrations match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import billing.bank  # registers bank_statement_lines
import billing.models  # noqa: F401 - registers the billing tables
import ca.models  # noqa: F401 - registers the CA tables on Base.metadata
import crl.models  # noqa: F401 - registers crl_issues
import db.outbox  # noqa: F401 - registers mail_outbox
import filing.models  # noqa: F401 - registers the filing tables
import signing_api.clients
import signing_api.cloud.models  # registers the cloud signing tables
import signing_api.verification.models  # noqa: F401 - registers dispute_cases
from db import Base, current_revision, head_revision

pytestmark = pytest.mark.db


def test_migrated_schema_matches_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"

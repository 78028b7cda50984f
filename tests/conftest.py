"""Shared fixtures: real databases (SQLite and PostgreSQL) and a real SoftHSM2."""

import os

# Every app the tests build checks each JSON answer against its route's declared model
# (signing_api/web/contract.py): the OpenAPI document cannot drift from what routes answer.
os.environ["TAMGA_CHECK_RESPONSES"] = "1"

pytest_plugins = [
    "tests.db_fixtures",
    "tests.hsm_fixtures",
    "tests.tamga_fixtures",
    "tests.ca_fixtures",
    "tests.filing_fixtures",
]

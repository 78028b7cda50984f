"""Shared fixtures: real databases (SQLite and PostgreSQL) and a real SoftHSM2."""

pytest_plugins = [
    "tests.db_fixtures",
    "tests.hsm_fixtures",
    "tests.tamga_fixtures",
    "tests.ca_fixtures",
]

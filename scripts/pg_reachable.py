"""Does a PostgreSQL server answer at a SQLAlchemy-style URL?

    python scripts/pg_reachable.py postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres

Prints one line and exits 0 when a connection succeeds (and ``SELECT 1`` answers), 1 when it
does not (or the URL is unusable). The password is never printed.

``--parts URL`` prints the URL's host, port, user, password and database name, one per line,
for ``scripts/ensure-postgres.sh`` (which needs them to start and configure a local server).
"""

from __future__ import annotations

import re
import sys

import psycopg
from psycopg.conninfo import conninfo_to_dict

USAGE = "usage: pg_reachable.py [--parts] URL"


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://...`` (SQLAlchemy) becomes ``postgresql://...`` (libpq)."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url.strip())


def parts(url: str) -> dict[str, str]:
    params = conninfo_to_dict(libpq_url(url))
    return {
        "host": str(params.get("host") or "localhost"),
        "port": str(params.get("port") or "5432"),
        "user": str(params.get("user") or "postgres"),
        "password": str(params.get("password") or ""),
        "dbname": str(params.get("dbname") or params.get("user") or "postgres"),
    }


def where(url: str) -> str:
    p = parts(url)
    return f"{p['user']}@{p['host']}:{p['port']}/{p['dbname']}"


def check(url: str) -> tuple[bool, str]:
    try:
        label = where(url)
    except psycopg.Error as ex:
        return False, f"PostgreSQL URL is not usable: {type(ex).__name__}"
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1").fetchone()
            version = conn.info.server_version
    except psycopg.Error as ex:
        first = (str(ex).strip().splitlines() or [type(ex).__name__])[0]
        return False, f"PostgreSQL not reachable at {label}: {first}"
    major, minor = divmod(version, 10000)
    return True, f"PostgreSQL {major}.{minor} reachable at {label}"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--parts":
        try:
            p = parts(argv[1])
        except psycopg.Error as ex:
            print(f"PostgreSQL URL is not usable: {type(ex).__name__}", file=sys.stderr)
            return 1
        print("\n".join(p[k] for k in ("host", "port", "user", "password", "dbname")))
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 1
    ok, message = check(argv[0])
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

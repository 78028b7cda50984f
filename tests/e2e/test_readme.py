"""The README's walkthrough, run literally: from a registration request to a cloud signature
that openssl verifies, on real gunicorn with the development mail sink.

The shell block after ``<!-- walkthrough -->`` in README.md is run by bash as it stands; only
the three variables it reads (``TAMGA_BIN``, ``TAMGA_URL``, ``TAMGA_HOME``) point it at this
test's server instead of ``make run``'s.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from signing_api.mail import MailSink
from tests.e2e.serving import free_port, run_dev
from tests.e2e.test_serve import server  # noqa: F401 - the real-gunicorn fixture
from tests.tamga_fixtures import TAMGA, RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    found = re.search(r"<!-- walkthrough -->\n```sh\n(.*?)\n```", README.read_text(), re.S)
    assert found, "README.md has no walkthrough block"
    return found.group(1)


def test_the_readme_walkthrough_ends_with_a_verified_cloud_signature(
    server: tuple[str, Path, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    base, home, database_url = server
    env = tamga_env(home, database_url, TAMGA_BIN=TAMGA, TAMGA_URL=base)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CMS Verification successful" in done.stderr, done.stderr
    assert (tmp_path / "report.p7s").stat().st_size > 1000


def walkthrough_filing() -> str:
    found = re.search(r"<!-- walkthrough: filing -->\n```sh\n(.*?)\n```", README.read_text(), re.S)
    assert found, "README.md has no filing walkthrough block"
    return found.group(1)


def test_the_filing_walkthrough_ends_accepted_with_a_verified_package(
    run_tamga: RunTamga, tmp_path: Path, pg_database_url: str
) -> None:
    """Both blocks, on PostgreSQL, against what ``make run`` starts (``scripts/run-dev.sh``:
    gunicorn, the worker and the agency gateway stub, each its own process)."""
    home = tmp_path / "home"
    run_tamga(home, "init", database_url=pg_database_url)
    port, agency_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    sink = MailSink(home / "mail", "127.0.0.1", free_port())
    env = tamga_env(
        home, pg_database_url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2",
        TAMGA_PUBLIC_URL=base, TAMGA_SMTP_URL=sink.url, TAMGA_AGENCY_PORT=str(agency_port),
        BIN=str(Path(TAMGA).parent),
    )  # fmt: skip
    with sink, run_dev(env, port, tmp_path / "run-dev.log"):
        script = walkthrough() + "\n" + walkthrough_filing()
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path, env={**env, "TAMGA_BIN": TAMGA, "TAMGA_URL": base},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        log = (tmp_path / "run-dev.log").read_text()
    assert done.returncode == 0, done.stdout + done.stderr + log
    assert done.stderr.count("CMS Verification successful") == 5, done.stderr  # 1 + 4
    *_, sent, verdict = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert sent["type"] == "dispatch-confirmation" and sent["office"] == "003"
    assert verdict["type"] == "check-result" and verdict["result"] == "accepted"
    assert verdict["report_id"] == sent["report_id"]
    run_tamga(home, "audit", "verify", database_url=pg_database_url)
    run_tamga(home, "billing", "check", database_url=pg_database_url)

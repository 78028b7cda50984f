"""The README's walkthrough, run literally: from a registration request to a cloud signature
that openssl verifies, on real gunicorn with the development mail sink.

The shell block after ``<!-- walkthrough -->`` in README.md is run by bash as it stands; only
the three variables it reads (``TAMGA_BIN``, ``TAMGA_URL``, ``TAMGA_HOME``) point it at this
test's server instead of ``make run``'s.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_serve import server  # noqa: F401 - the real-gunicorn fixture
from tests.tamga_fixtures import TAMGA, tamga_env

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

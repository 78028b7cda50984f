"""Fixtures that run Tamga as a user would: ``tamga`` subprocesses on their own TAMGA_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from signing_api.config import Config
from signing_api.runtime import Runtime
from tests.hsm_fixtures import PKCS11_MODULE, TEST_PINS

TAMGA = shutil.which("tamga") or str(
    Path(__file__).resolve().parent.parent / ".venv" / "bin" / "tamga"
)

RunTamga = Callable[..., subprocess.CompletedProcess[str]]


def tamga_env(home: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TAMGA_") and k != "SOFTHSM2_CONF"
    }
    env["TAMGA_HOME"] = str(home)
    env["TAMGA_PKCS11_MODULE"] = PKCS11_MODULE
    # Real-time servers must not answer 503 because CI happens to run on a Friday evening.
    env["TAMGA_MAINTENANCE_WINDOW"] = "off"
    if database_url:
        env["TAMGA_DATABASE_URL"] = database_url
    env.update(extra)
    return env


@pytest.fixture
def run_tamga() -> RunTamga:
    """``run_tamga(home, "ca", "export", "root", database_url=..., env={...})``."""

    def run(
        home: Path,
        *args: str,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [TAMGA, *args],
            env=tamga_env(home, database_url, **(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"tamga {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def runtime(hsm_home: Path, database_url: str, engine: Engine) -> Runtime:
    """A Runtime over this process's SoftHSM tokens and a fresh migrated database."""
    config = Config(
        home=hsm_home,
        database_url=database_url,
        pkcs11_module=PKCS11_MODULE,
        public_url="http://127.0.0.1:8000",
        bind="127.0.0.1:0",
        workers=1,
        ca_pin=TEST_PINS["tamga-ca"],
        cloud_pin=TEST_PINS["tamga-cloud"],
        audit_sequencer="inline",  # tests read sequence numbers at once; test_sequencer.py
    )  # has the worker's batched mode
    rt = Runtime(config)
    rt.__dict__["engine"] = engine  # share the fixture's engine (disposed by that fixture)
    return rt

"""Pytest fixtures: a real SoftHSM2 installation per test process, with Tamga's two tokens.

The pytest process loads PKCS#11 once, pointed (SOFTHSM2_CONF) at this session's own
TAMGA_HOME; tests that need another installation run ``tamga`` in a subprocess.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsm import HSMToken
from hsm.softhsm import init_token, write_config
from policies.ca_profiles import CA_TOKEN, CLOUD_TOKEN
from signing_api.config import DEFAULT_PKCS11_MODULE

REPO = Path(__file__).resolve().parent.parent
TEST_PINS = {CA_TOKEN: "ca-test-pin-1234", CLOUD_TOKEN: "cloud-test-pin-5678"}
PKCS11_MODULE = os.environ.get("TAMGA_PKCS11_MODULE", DEFAULT_PKCS11_MODULE)
# The PKCS#11 library reads SOFTHSM2_CONF once per process, when it is first initialised. A
# second pytest session in the same process (mutmut runs its stats session, then the clean run,
# then forks each mutant's session from that process) must keep the first session's
# installation: otherwise a subprocess pointed at SOFTHSM2_CONF (tests/check_token_keys.py)
# looks at a new, empty token directory while the tests' own tokens live in the first one.
_HOMES: list[Path] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``hsm`` every test that reaches SoftHSM2 through a fixture (directly or not), so
    that ``-m hsm`` / ``-m "not hsm"`` select by what a test really uses."""
    for item in items:
        if "hsm_home" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.hsm)


@pytest.fixture(scope="session")
def hsm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TAMGA_HOME whose SoftHSM2 holds initialised ``tamga-ca`` and ``tamga-cloud`` tokens."""
    if not Path(PKCS11_MODULE).exists():
        pytest.fail(
            f"PKCS#11 module {PKCS11_MODULE} is missing: run `make setup` (installs softhsm2)"
        )
    if _HOMES and _HOMES[0].is_dir():
        os.environ["SOFTHSM2_CONF"] = str(_HOMES[0] / "softhsm2.conf")
        return _HOMES[0]
    home = tmp_path_factory.mktemp("tamga-home")
    conf = write_config(REPO / "softhsm.conf", home)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label, pin in TEST_PINS.items():
        init_token(conf, label, pin, "so-" + pin)
    _HOMES.append(home)
    return home


@pytest.fixture(scope="session")
def ca_token(hsm_home: Path) -> HSMToken:
    return HSMToken(PKCS11_MODULE, CA_TOKEN, TEST_PINS[CA_TOKEN])


@pytest.fixture(scope="session")
def cloud_token(hsm_home: Path) -> HSMToken:
    return HSMToken(PKCS11_MODULE, CLOUD_TOKEN, TEST_PINS[CLOUD_TOKEN])


@pytest.fixture
def key_label() -> Iterator[str]:
    """A fresh, unique key label for one test."""
    yield f"test-{uuid.uuid4().hex[:12]}"

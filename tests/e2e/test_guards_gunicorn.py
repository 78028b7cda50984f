"""``tamga serve`` under real gunicorn: PKCS#11 is never initialised in the master.

A PKCS#11 library initialised before fork is not usable in the children (sessions and logins
do not survive fork), so the app is not preloaded and tokens open lazily in each worker. What
the kernel has mapped into each process says whether that holds: after both workers have
signed their health-check challenges, the workers have the PKCS#11 module mapped and the
master does not, nor python-pkcs11's C extension (loaded on the first ``pkcs11.lib()``, whatever
the vendor's module).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pkcs11._pkcs11
import pytest

from tests.e2e.serving import free_port, tamga_serve
from tests.e2e.test_serve import _get
from tests.hsm_fixtures import PKCS11_MODULE
from tests.tamga_fixtures import RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]


@pytest.fixture
def served(
    run_tamga: RunTamga, tmp_path: Path, database_url: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(base URL, the ``tamga serve`` process, which is gunicorn's master) with two workers."""
    home = tmp_path / "home"
    run_tamga(home, "init", database_url=database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = tamga_env(
        home, database_url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2", TAMGA_PUBLIC_URL=base
    )
    with tamga_serve(env, port, tmp_path / "serve.log") as proc:
        yield base, proc


def _maps_module(pid: int, module: Path) -> bool:
    """Whether process ``pid`` has the shared object ``module`` mapped."""
    wanted = {str(module), str(module.resolve())}
    with open(f"/proc/{pid}/maps") as maps:
        return any(line.split()[-1] in wanted for line in maps if len(line.split()) >= 6)


_PYTHON_PKCS11 = Path(pkcs11._pkcs11.__file__)


def _parent(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_pkcs11_is_loaded_in_the_workers_never_in_the_master(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, master = served
    module = Path(PKCS11_MODULE)
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        status, _, body = _get(base + "/healthz")
        report = json.loads(body)
        assert status == 200, report
        for token in ("ca_token", "cloud_token"):
            assert report["checks"][token]["status"] == "ok", report  # signed in the worker
        workers.add(report["worker_pid"])
    assert len(workers) == 2, f"only saw workers {sorted(workers)}"
    assert master.pid not in workers
    for pid in workers:
        assert _parent(pid) == master.pid, f"{pid} is not a child of the master {master.pid}"
        assert _maps_module(pid, module), f"worker {pid} has not loaded {module}"
        assert _maps_module(pid, _PYTHON_PKCS11)
    assert master.poll() is None and os.path.exists(f"/proc/{master.pid}/maps")
    assert not _maps_module(master.pid, module), (
        f"the gunicorn master {master.pid} has {module} mapped: PKCS#11 initialised before fork"
    )
    assert not _maps_module(master.pid, _PYTHON_PKCS11), (
        f"the gunicorn master {master.pid} has loaded python-pkcs11's C extension"
    )

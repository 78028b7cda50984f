"""Schemathesis against ``/openapi.json`` of a live server: the document tells the truth.

``tamga init`` and ``tamga serve`` (gunicorn, two workers) on SQLite; a subscriber, a holder, a
paid certificate and a top-up are seeded over HTTP; then ``schemathesis run`` (every phase,
every check) once with an officer's token and once with a portal's. Each run must end with no
failure and no error: no 5xx, every status and content type and body as documented, every
request the schema refuses refused, every request it admits accepted, except the statuses an
operation declares for rules the schema cannot state (``x-tamga-refusals``, see
``signing_api/web/contract.py``), which the generated configuration admits for that operation
only. The OSMP protocol answers every request with HTTP 200 and a result code in its XML
(docs/osmp.md): negative-data rejection does not apply to it.

``TAMGA_SCHEMATHESIS_EXAMPLES`` (default 10) sets the examples per operation and phase,
``TAMGA_SCHEMATHESIS_SEED`` the seed (default: fixed, so a run is repeatable).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serving import call, free_port, osmp_pay, tamga_serve
from tests.tamga_fixtures import TAMGA, RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(TAMGA).with_name("schemathesis"))
EXAMPLES = int(os.environ.get("TAMGA_SCHEMATHESIS_EXAMPLES", "10"))
SEED = int(os.environ.get("TAMGA_SCHEMATHESIS_SEED", "20261203"))
INN = "01234567890123"
_ROOT = Path(__file__).resolve().parents[2]
# Every check schemathesis has (enabled in the configuration, not with --checks, which would
# override the operations' own settings below).
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
)
# Schemathesis' default for negative_data_rejection (what an invalid request may get), and 414
# (gunicorn's request line) and 413 (the body limits of web/limits.py, documented on every body).
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429"]
REFUSED += ["413", "5xx"]
# Schemathesis' default for positive_data_acceptance: what a valid request may get.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


@pytest.fixture
def live(run_tamga: RunTamga, tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    home = tmp_path / "home"
    database_url = f"sqlite:///{home / 'tamga.db'}"
    run_tamga(home, "init", database_url=database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = tamga_env(
        home, database_url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2",
        TAMGA_PUBLIC_URL=base,
        # Thousands of requests from one address: with the rate limits on, most would be 429
        # (documented on every operation, so not a failure, but no coverage either).
        TAMGA_RATE_LIMITS="off",
        TAMGA_SMTP_URL=f"smtp://127.0.0.1:{free_port()}",  # nobody listens: mail stays queued
    )  # fmt: skip
    with tamga_serve(env, port, tmp_path / "serve.log"):
        yield base, home, database_url


def _seed(base: str, home: Path, database_url: str, run_tamga: RunTamga) -> dict[str, Any]:
    """Two clients, a subscriber in the portal's scope, its holder, a paid certificate and a
    top-up: the identifiers schemathesis is given so that not every route answers 404."""

    def token(name: str, role: str) -> str:
        created = run_tamga(
            home, "clients", "create", "--name", name, "--role", role, database_url=database_url
        )
        return created.stdout.strip().splitlines()[-1]

    officer = token("schemathesis officer", "officer")
    portal = token("schemathesis portal", "portal")
    status, body = call(
        base,
        "/api/v1/subscribers",
        officer,
        {
            "inn": INN,
            "name": 'ОсОО "Ала-Тоо"',
            "legal_form": "ОсОО",
            "locality": "Бишкек",
            "email": "office@alatoo.kg",
        },
    )
    assert status == 201, body
    status, holder = call(
        base,
        "/api/v1/holders",
        officer,
        {
            "inn": INN,
            "full_name": "Асанова Айгуль",
            "position": "Директор",
            "passport_series": "ID1234567",
            "email": "a@alatoo.kg",
            "phone": "+996555123456",
        },
    )
    assert status == 201, holder
    status, checked = call(base, f"/api/v1/holders/{holder['id']}/verify", officer,
        {"document": "office file 1"},
    )  # fmt: skip
    assert status == 200, checked
    grant = ("clients", "grant", "schemathesis portal", "--inn", INN)
    run_tamga(home, *grant, database_url=database_url)
    ask = {"holder_id": holder["id"], "role": "head", "storage": "cloud"}
    status, unpaid = call(base, "/api/v1/certificates", officer, ask)
    assert status == 402, unpaid
    osmp_pay(base, "1", unpaid["payment_account"], "1510.00")
    status, issued = call(base, "/api/v1/certificates", officer, ask)
    assert status == 201, issued
    osmp_pay(base, "2", INN, "50000.00")
    return {
        "officer": officer,
        "portal": portal,
        "holder_id": holder["id"],
        "serial": issued["serial"],
    }


def _config(document: dict[str, Any], seeded: dict[str, Any]) -> str:
    """schemathesis.toml: the seeded identifiers (half of the values drawn), and for each
    operation that declares refusals, those statuses admitted for valid requests."""
    lines = [
        *(f"checks.{name}.enabled = true" for name in CHECKS),
        # The stateful phase builds requests from the links it infers between operations and
        # may drop a required query parameter yet call the request valid (schemathesis issue
        # #2983): there, valid-request acceptance is not checked; the other phases check it.
        "phases.stateful.checks.positive_data_acceptance.enabled = false",
        # gunicorn refuses a request line over 4094 bytes with 414 (documented on every
        # operation): a refusal like the others.
        "checks.negative_data_rejection.expected-statuses = "
        f"[{', '.join(json.dumps(s) for s in REFUSED)}]",
        "",
        "[dictionaries]",
        f"inn = {{ values = [{json.dumps(INN)}] }}",
        f"serial = {{ values = [{json.dumps(seeded['serial'])}] }}",
        f"holder = {{ values = [{seeded['holder_id']}] }}",
        "",
        "[parameters]",
        '"path.inn" = { dictionary = "inn", probability = 0.5 }',
        '"body.inn" = { dictionary = "inn", probability = 0.5 }',
        '"path.serial" = { dictionary = "serial", probability = 0.5 }',
        '"path.holder_id" = { dictionary = "holder", probability = 0.5 }',
        '"query.holder_id" = { dictionary = "holder", probability = 0.5 }',
        '"body.holder_id" = { dictionary = "holder", probability = 0.5 }',
        "",
    ]
    for methods in document["paths"].values():
        for operation in methods.values():
            refusals = operation.get("x-tamga-refusals")
            if not refusals:
                continue
            statuses = ", ".join(json.dumps(s) for s in [*ACCEPTED, *sorted(refusals)])
            lines += [
                "[[operations]]",
                f"include-operation-id = {json.dumps(operation['operationId'])}",
                f"checks.positive_data_acceptance.expected-statuses = [{statuses}]",
                "",
            ]
    for operation_id in ("osmpGet", "osmpPost"):
        lines += [
            "[[operations]]",
            f"include-operation-id = {json.dumps(operation_id)}",
            "checks.negative_data_rejection.enabled = false",
            "",
        ]
    return "\n".join(lines)


_SUMMARY = re.compile(r"(\d+) generated, \d+ (passed|found)[^\n]*")


def _schemathesis(base: str, token: str, config: Path, tmp_path: Path, who: str) -> str:
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        "--output-truncate",
        "false",
        "--report",
        "junit",
        "--report-junit-path",
        str(tmp_path / f"{who}.xml"),
    ]
    started = time.monotonic()
    hooks = {"SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks", "PYTHONPATH": str(_ROOT)}
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, **hooks},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    (tmp_path / f"{who}.txt").write_text(output)
    assert result.returncode == 0, f"schemathesis ({who}) found failures:\n{output}"
    summary = _SUMMARY.search(output)
    return f"{who}: {summary.group(0) if summary else '?'} in {time.monotonic() - started:.0f} s"


def test_the_document_tells_the_truth(
    live: tuple[str, Path, str], run_tamga: RunTamga, tmp_path: Path
) -> None:
    base, home, database_url = live
    seeded = _seed(base, home, database_url, run_tamga)
    with urllib.request.urlopen(base + "/openapi.json", timeout=60) as response:  # noqa: S310
        document = json.loads(response.read())
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(document, seeded))
    runs = [
        _schemathesis(base, seeded[who], config, tmp_path, who) for who in ("officer", "portal")
    ]
    print("\n".join(runs))  # the numbers docs/testing.md quotes (pytest -s)

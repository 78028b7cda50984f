"""``tamga serve``: real gunicorn, two workers, each with its own PKCS#11 initialisation."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing_api.mail import MailSink
from tests.e2e.serving import free_port, tamga_serve
from tests.tamga_fixtures import RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own test server
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as ex:
        return ex.code, dict(ex.headers), ex.read()


@pytest.fixture
def server(
    run_tamga: RunTamga, tmp_path: Path, database_url: str
) -> Iterator[tuple[str, Path, str]]:
    home = tmp_path / "home"
    run_tamga(home, "init", database_url=database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sink = MailSink(home / "mail", "127.0.0.1", free_port())  # the holder's mailbox
    env = tamga_env(
        home, database_url, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2",
        TAMGA_PUBLIC_URL=base, TAMGA_SMTP_URL=sink.url,
    )  # fmt: skip
    with sink, tamga_serve(env, port, tmp_path / "serve.log"):
        yield base, home, database_url


def _check_selftest(check: dict[str, Any]) -> None:
    """Verify the worker's challenge signature ourselves, with the key it reports."""
    public = serialization.load_der_public_key(base64.b64decode(check["public_key"]))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        base64.b64decode(check["signature"]),
        base64.b64decode(check["challenge"]),
        ec.ECDSA(hashes.SHA256()),
    )


def test_two_workers_each_sign(server: tuple[str, Path, str], run_tamga: RunTamga) -> None:
    base, home, database_url = server
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(seen) < 2 and time.monotonic() < deadline:
        status, headers, body = _get(base + "/healthz")
        assert status == 200, body
        assert headers["Content-Type"].startswith("application/json")
        report = json.loads(body)
        seen[report["worker_pid"]] = report
    assert len(seen) == 2, f"only saw workers {sorted(seen)}"
    for report in seen.values():
        assert report["checks"]["database"]["status"] == "ok"
        for token in ("ca_token", "cloud_token"):
            _check_selftest(report["checks"][token])

    status, headers, body = _get(base + "/ca/issuing.crt")
    assert status == 200 and headers["Content-Type"] == "application/pkix-cert"
    exported = run_tamga(home, "ca", "export", "issuing", database_url=database_url).stdout
    assert x509.load_der_x509_certificate(body) == x509.load_pem_x509_certificate(exported.encode())
    status, _, body = _get(base + "/ca/root.crt")
    assert (
        status == 200
        and x509.load_der_x509_certificate(body).subject
        == x509.load_der_x509_certificate(body).issuer
    )

    status, headers, body = _get(base + "/no/such/thing")
    assert status == 404 and headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["status"] == 404
    status, _, body = _get(base + "/openapi.json")
    assert status == 200 and json.loads(body)["openapi"].startswith("3.")

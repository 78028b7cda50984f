"""``openssl ocsp -url`` against real gunicorn (``tamga serve``), real time, real SoftHSM2.

``tamga init`` makes the responder; an officer issues a RuToken certificate, suspends, resumes
and revokes it from the console (another process: no hook into OCSP), and after each change
openssl asks the live server, with and without a nonce, verifying the answer against root +
issuing. GET answers carry RFC 5019 caching headers; ``tamga ca export ocsp`` and ``/ca/ocsp.crt``
give the same responder certificate.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests.e2e.serving import free_port, tamga_serve
from tests.e2e.test_ca_cli import INN, _csr, _pay
from tests.tamga_fixtures import RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]


def test_openssl_asks_a_live_responder(run_tamga: RunTamga, tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def tamga(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(home, *args, check=check, env={"TAMGA_PUBLIC_URL": base})

    init = tamga("init")
    assert "ocsp certificate" in init.stdout, init.stdout
    tamga("ca", "subscriber", "add", "--inn", INN, "--name", 'ОсОО "Тест"', "--legal-form",
          "ОсОО", "--locality", "Бишкек", "--email", "office@test.kg")  # fmt: skip
    holder = json.loads(
        tamga(
            "ca",
            "holder",
            "add",
            "--inn",
            INN,
            "--full-name",
            "Асанова Айгуль",
            "--position",
            "Главный бухгалтер",
            "--passport-series",
            "ID1234567",
            "--email",
            "acc@test.kg",
            "--phone",
            "+996555123456",
            "--identity-document",
            "office file 2026/7",
            "--json",
        ).stdout
    )["id"]
    csr = tmp_path / "token.csr"
    csr.write_bytes(_csr(ec.generate_private_key(ec.SECP256R1())))
    issue = ["ca", "issue", "--holder", str(holder), "--role", "accountant", "--storage",
             "rutoken", "--csr", str(csr)]  # fmt: skip
    unpaid = tamga(*issue, check=False)
    _pay(home, unpaid.stderr.split("payment account ")[1][:16], 1200_00)
    cert_pem = tmp_path / "cert.pem"
    serial = json.loads(tamga(*issue, "-o", str(cert_pem), "--json").stdout)["serial"]
    issuing = tmp_path / "issuing.pem"
    issuing.write_text(tamga("ca", "export", "issuing").stdout)
    chain = tmp_path / "chain.pem"
    chain.write_text(tamga("ca", "export", "root").stdout + issuing.read_text())
    responder = tmp_path / "ocsp.pem"
    assert (
        "wrote the ocsp certificate"
        in tamga("ca", "export", "ocsp", "--out", str(responder)).stdout
    )

    def ask(*target: str, nonce: bool = True) -> str:
        done = subprocess.run(
            ["openssl", "ocsp", "-issuer", str(issuing), *target, "-url", f"{base}/ocsp",
             "-CAfile", str(chain), "-resp_text", "-nonce" if nonce else "-no_nonce"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "Response verify OK" in out, out
        assert "WARNING" not in out and "Nonce Verify error" not in out, out
        return out

    env = tamga_env(home, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2", TAMGA_PUBLIC_URL=base)
    with tamga_serve(env, port, tmp_path / "serve.log"):
        for nonce in (True, False):
            assert f"{cert_pem}: good" in ask("-cert", str(cert_pem), nonce=nonce)
        assert "suspended" in tamga("ca", "suspend", serial, "--note", "проверка").stdout
        held = ask("-cert", str(cert_pem))
        assert f"{cert_pem}: revoked" in held and "Reason: certificateHold" in held, held
        assert "active" in tamga("ca", "resume", serial).stdout
        assert f"{cert_pem}: good" in ask("-cert", str(cert_pem), nonce=False)
        tamga("ca", "revoke", serial, "--reason", "keyCompromise")
        for nonce in (True, False):
            revoked = ask("-cert", str(cert_pem), nonce=nonce)
            assert f"{cert_pem}: revoked" in revoked and "Reason: keyCompromise" in revoked
        assert ": unknown" in ask("-serial", f"0x{int(serial, 16) + 2:x}")

        # GET (RFC 6960 A.1.1) through a plain HTTP client: cacheable per RFC 5019 §6.2.
        issuing_cert = x509.load_pem_x509_certificate(issuing.read_bytes())
        cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuing_cert, hashes.SHA256())
        der = request.build().public_bytes(serialization.Encoding.DER)
        path = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
        with urllib.request.urlopen(f"{base}/ocsp/{path}", timeout=30) as answer:  # noqa: S310
            body = answer.read()
            headers = answer.headers
        assert headers["Content-Type"] == "application/ocsp-response"
        control = headers["Cache-Control"]
        for word in ("public", "no-transform", "must-revalidate", "max-age="):
            assert word in control, control
        assert headers["ETag"] and headers["Last-Modified"] and headers["Expires"]
        response = ocsp.load_der_ocsp_response(body)
        assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
        with urllib.request.urlopen(f"{base}/ca/ocsp.crt", timeout=30) as served:  # noqa: S310
            published = x509.load_der_x509_certificate(served.read())
        assert published == x509.load_pem_x509_certificate(responder.read_bytes())
        assert response.certificates == [published]

    # A worker pass: nothing due yet (answers last 24 hours), the responder has 30 days left.
    passed = tamga("worker", "--once", "--no-mail").stdout
    assert "OCSP answers re-signed 0" in passed and "renewed" not in passed, passed

"""A thousand OCSP requests at once on real gunicorn while certificates are revoked and suspended.

Issue #15: 1,000 concurrent OCSP requests during a revocation burst. Four RuToken certificates;
50 client threads ask ``POST /ocsp`` about them (a mix of stored-answer lookups and nonce
answers) until at least 1,000 answers are in and the burst is over. Meanwhile two officers'
consoles, at the same time, revoke two certificates and suspend a third (other processes, each
change in its own transaction with its delta CRL and OCSP answer). Then:

- every answer is a successful OCSPResponse signed by the delegated responder (checked with the
  responder certificate, which the issuing CA certified), never a 5xx, 429 or tryLater;
- an answer to a request *sent after* a change's command returned says what the change did
  (revoked with its reason, or certificateHold): the change is never hidden by a stored answer;
- the untouched certificate is good in every answer;
- the journal's chain still verifies (``tamga audit verify``).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests.e2e.serving import free_port, tamga_serve
from tests.e2e.test_ca_cli import INN, _csr, _pay
from tests.tamga_fixtures import TAMGA, RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

THREADS = 50
AT_LEAST = 1000


@dataclass(frozen=True)
class Asked:
    serial: int
    sent: float  # time.monotonic() when the request left
    status: int  # HTTP status
    body: bytes


def _holders(tamga: Callable[..., subprocess.CompletedProcess[str]], count: int) -> list[int]:
    ids = []
    for i in range(count):
        added = tamga("ca", "holder", "add", "--inn", INN, "--full-name", f"Держатель {i}",
                      "--position", "Бухгалтер", "--passport-series", f"ID100000{i}",
                      "--email", f"h{i}@test.kg", "--phone", f"+99655512345{i}",
                      "--identity-document", f"office file 2026/{i}", "--json")  # fmt: skip
        ids.append(json.loads(added.stdout)["id"])
    return ids


def _verify(response: ocsp.OCSPResponse, issuing: x509.Certificate) -> None:
    """Signed by a responder certificate that the issuing CA certified for OCSP signing."""
    [responder] = response.certificates
    responder.verify_directly_issued_by(issuing)
    usage = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in usage
    key = responder.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(
        response.signature,
        response.tbs_response_bytes,
        ec.ECDSA(response.signature_hash_algorithm),
    )


def test_a_thousand_concurrent_requests_during_a_revocation_burst(
    run_tamga: RunTamga, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def tamga(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(home, *args, check=check, env={"TAMGA_PUBLIC_URL": base})

    tamga("init")
    tamga("ca", "subscriber", "add", "--inn", INN, "--name", 'ОсОО "Тест"', "--legal-form",
          "ОсОО", "--locality", "Бишкек", "--email", "office@test.kg")  # fmt: skip
    certs: list[x509.Certificate] = []
    for i, holder in enumerate(_holders(tamga, 4)):
        csr = tmp_path / f"token{i}.csr"
        csr.write_bytes(_csr(ec.generate_private_key(ec.SECP256R1())))
        issue = ["ca", "issue", "--holder", str(holder), "--role", "accountant", "--storage",
                 "rutoken", "--csr", str(csr)]  # fmt: skip
        if i == 0:  # the first certificate is paid on its payment account, then the balance
            unpaid = tamga(*issue, check=False)
            _pay(home, unpaid.stderr.split("payment account ")[1][:16], 1200_00)
        else:
            _pay(home, INN, 1200_00, f"К-{i + 1}")
        pem = tmp_path / f"cert{i}.pem"
        tamga(*issue, "-o", str(pem))
        certs.append(x509.load_pem_x509_certificate(pem.read_bytes()))
    issuing = x509.load_pem_x509_certificate(tamga("ca", "export", "issuing").stdout.encode())
    requests = {
        (c.serial_number, nonce): _request(c, issuing, nonce) for c in certs for nonce in (0, 1)
    }
    revoked, held, good = certs[0].serial_number, certs[1].serial_number, certs[3].serial_number
    also_revoked = certs[2].serial_number

    env = tamga_env(home, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="2",
                    TAMGA_PUBLIC_URL=base, TAMGA_LIMIT_PUBLIC="100000/minute")  # fmt: skip
    asked: list[Asked] = []
    lock = threading.Lock()
    burst_over = threading.Event()

    def client(number: int) -> None:
        i = number
        while True:
            with lock:
                if burst_over.is_set() and len(asked) >= AT_LEAST:
                    return
            cert = certs[i % len(certs)]
            nonce = int(i % 5 == 0)  # one request in five carries a nonce: signed each time
            i += THREADS
            post = urllib.request.Request(  # noqa: S310 - our own test server
                f"{base}/ocsp",
                data=requests[(cert.serial_number, nonce)],
                headers={"Content-Type": "application/ocsp-request"},
            )
            sent = time.monotonic()
            try:
                with urllib.request.urlopen(post, timeout=60) as answer:  # noqa: S310
                    status, body = answer.status, answer.read()
            except urllib.error.HTTPError as ex:
                status, body = ex.code, ex.read()
            with lock:
                asked.append(Asked(cert.serial_number, sent, status, body))

    changes: dict[int, float] = {}

    def change(*args: str) -> None:
        done = subprocess.run([TAMGA, "ca", *args], env=env, capture_output=True, text=True,
                              check=False, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        changes[int(args[1], 16)] = time.monotonic()  # the change is committed by now

    with tamga_serve(env, port, tmp_path / "serve.log"):
        clients = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
        for thread in clients:
            thread.start()
        time.sleep(0.5)  # the burst is under way
        officers = [
            threading.Thread(target=change, args=("revoke", f"{revoked:x}", "--reason",
                                                  "keyCompromise")),
            threading.Thread(target=change, args=("suspend", f"{held:x}")),
            threading.Thread(target=change, args=("revoke", f"{also_revoked:x}", "--reason",
                                                  "superseded")),
        ]  # fmt: skip
        for thread in officers:
            thread.start()
        for thread in officers:
            thread.join()
        burst_over.set()
        for thread in clients:
            thread.join()

    assert len(changes) == 3, changes
    assert len(asked) >= AT_LEAST
    expected = {
        revoked: x509.ReasonFlags.key_compromise,
        held: x509.ReasonFlags.certificate_hold,
        also_revoked: x509.ReasonFlags.superseded,
    }
    after = 0
    for answer in asked:
        assert answer.status == 200, (answer.status, answer.body[:300])
        response = ocsp.load_der_ocsp_response(answer.body)
        assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert response.serial_number == answer.serial
        _verify(response, issuing)
        if answer.serial == good:
            assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
        elif answer.sent > changes[answer.serial]:
            after += 1
            assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED, answer
            assert response.revocation_reason is expected[answer.serial]
    assert after > 0, "no request was sent after a change: the burst ended too early"
    assert "audit journal intact" in tamga("audit", "verify").stdout


def _request(cert: x509.Certificate, issuing: x509.Certificate, nonce: int) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        cert,
        issuing,
        hashes.SHA1(),  # noqa: S303 - RFC 5019's CertID hash, as openssl sends
    )
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)

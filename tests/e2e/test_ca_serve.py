"""The README's certificate walkthrough against real gunicorn (two workers, each with PKCS#11).

Register, ask for a certificate (402 naming the payment account), pay it through OSMP, ask again
— ten times at once with one Idempotency-Key, across both workers: one certificate, one charge —
then revoke it and find it in the CRL both over HTTP and in the published file; openssl verifies
the certificate against the chain, then refuses it with ``-crl_check``.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.test_serve import server  # noqa: F401 - the real-gunicorn fixture
from tests.tamga_fixtures import RunTamga

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

INN = "01234567890123"


def _call(
    base: str,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - our own test server
        base + path,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


def test_certificate_walkthrough_on_gunicorn(
    server: tuple[str, Path, str],  # noqa: F811
    run_tamga: RunTamga,
    tmp_path: Path,
) -> None:
    base, home, database_url = server
    created = run_tamga(
        home,
        "clients",
        "create",
        "--name",
        "front office",
        "--role",
        "officer",
        database_url=database_url,
    )
    token = created.stdout.strip().splitlines()[-1]
    status, _ = _call(
        base,
        "POST",
        "/api/v1/subscribers",
        token,
        {
            "inn": INN,
            "name": 'ОсОО "Ала-Тоо"',
            "legal_form": "ОсОО",
            "locality": "Бишкек",
            "email": "office@alatoo.kg",
        },
    )
    assert status == 201
    status, holder = _call(
        base,
        "POST",
        "/api/v1/holders",
        token,
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
    ask = {"holder_id": holder["id"], "role": "head", "storage": "cloud"}
    # No certificate before the registration authority verified the person (§3.3).
    status, refused = _call(base, "POST", "/api/v1/certificates", token, ask)
    assert status == 409 and refused["type"].endswith("identity-not-verified"), refused
    verify = f"/api/v1/holders/{holder['id']}/verify"
    status, checked = _call(base, "POST", verify, token, {"document": "office file 2026/1"})
    assert status == 200 and checked["identity_verified"], checked
    status, unpaid = _call(base, "POST", "/api/v1/certificates", token, ask)
    assert status == 402 and unpaid["amount_due"] == 151000, unpaid
    query = urllib.parse.urlencode(
        {
            "command": "pay",
            "txn_id": "1002",
            "account": unpaid["payment_account"],
            "sum": "1510.00",
            "txn_date": time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 6 * 3600)),
        }
    )
    with urllib.request.urlopen(f"{base}/payments/osmp/megapay?{query}", timeout=60) as paid:  # noqa: S310
        assert b"<result>0</result>" in paid.read()

    key = {"Idempotency-Key": "walkthrough-1"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(
                lambda _: _call(base, "POST", "/api/v1/certificates", token, ask, key), range(10)
            )
        )
    issued = [body for status, body in answers if status in (200, 201)]
    assert issued, answers
    # Concurrent duplicates either get the certificate or "being processed" (409), never another.
    assert all(status in (200, 201, 409) for status, _ in answers), answers
    assert len({body["serial"] for body in issued}) == 1
    status, listed = _call(base, "GET", "/api/v1/certificates", token)
    assert listed["count"] == 1
    serial = issued[0]["serial"]

    chain = x509.load_pem_x509_certificates(issued[0]["chain_pem"].encode())
    files = {name: tmp_path / f"{name}.pem" for name in ("leaf", "issuing", "root", "crl")}
    files["leaf"].write_text(issued[0]["certificate_pem"])
    for name, cert in zip(("issuing", "root"), chain, strict=True):
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "openssl",
                "verify",
                "-x509_strict",
                *extra,
                "-CAfile",
                str(files["root"]),
                "-untrusted",
                str(files["issuing"]),
                str(files["leaf"]),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    assert verify().returncode == 0
    status, revoked = _call(
        base, "POST", f"/api/v1/certificates/{serial}/revoke", token, {"reason": "superseded"}
    )
    assert status == 200 and revoked["status"] == "revoked", revoked
    with urllib.request.urlopen(f"{base}/crl/issuing.crl", timeout=60) as response:  # noqa: S310
        crl = x509.load_der_x509_crl(response.read())
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    published = x509.load_der_x509_crl((home / "publish" / "crl" / "issuing.crl").read_bytes())
    assert published.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    files["crl"].write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    refused = verify("-crl_check", "-CRLfile", str(files["crl"]))
    assert refused.returncode != 0 and "certificate revoked" in refused.stdout + refused.stderr

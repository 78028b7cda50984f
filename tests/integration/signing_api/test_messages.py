"""Refusals that say what is wrong (issue #12 finding 14), through the API.

A SHA-1-signed CSR was refused as "no proof of possession"; a power of attorney with two bad
fields named one; "a agency client", "a accountant certificate".
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from signing_api.clients import create_client
from tests.ca_fixtures import CA_NOW, CaApi, register
from tests.integration.ca.test_issuance import _paid_first
from tests.integration.signing_api.test_registry_api import POWERS, TAXPAYER

pytestmark = [pytest.mark.hsm, pytest.mark.db]


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = json.loads(response.data)
    return body


def test_a_sha1_csr_is_refused_for_its_algorithm(ca_api: CaApi, tmp_path: Path) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder, role="accountant")
    # pyca refuses to make one; openssl still does, as an old token's software would.
    made = subprocess.run(
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout",
         str(tmp_path / "k.pem"), "-subj", "/CN=token", "-sha1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    pem = made.stdout
    assert x509.load_pem_x509_csr(pem.encode()).signature_hash_algorithm.name == "sha1"
    body = {"holder_id": holder, "role": "accountant", "storage": "rutoken", "csr_pem": pem}
    detail = _problem(ca_api.post("/api/v1/certificates", body), 422)["detail"]
    assert "sha1WithRSAEncryption" in detail and "not accepted" in detail, detail
    assert "proof of possession" not in detail


def test_a_power_of_attorney_names_every_bad_field(ca_api: CaApi) -> None:
    holder = register(ca_api)
    bad = {**TAXPAYER, "valid_from": "2027-01-10", "valid_until": "2027-01-01",
           "issued_on": "2027-02-01"}  # fmt: skip
    refused = _problem(ca_api.post(POWERS, {"holder_id": holder, **bad}), 422)
    assert {e["field"] for e in refused["errors"]} == {"valid_until", "issued_on"}, refused


def test_articles_before_vowels(ca_api: CaApi) -> None:
    with ca_api.runtime.transaction() as session:
        agency = create_client(session, name="sti", role="agency", now=CA_NOW, actor="test")
    ca_api.tokens["agency"] = agency.token
    refused = _problem(ca_api.get("/api/v1/certificates", who="agency"), 403)
    assert refused["detail"] == "an agency client may not call this", refused

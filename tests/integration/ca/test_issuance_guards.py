"""Issuance guarantees (docs/certificates.md) that mutation testing (``make mutation``, area
``issuance``) found unproved, through the API on SQLite and PostgreSQL with SoftHSM: a public
key belongs to one holder, who may have it certified again, but a key revoked as compromised is
refused for good, for its own holder too."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.ca_fixtures import CaApi, register
from tests.integration.ca.test_issuance import INN, RUTOKEN, _csr, _issue, _paid_first, _problem

pytestmark = [pytest.mark.hsm, pytest.mark.db]

URL = "/api/v1/certificates"


def test_a_key_revoked_as_compromised_is_dead_for_its_own_holder_too(ca_api: CaApi) -> None:
    holder = register(ca_api, position="Главный бухгалтер")
    _paid_first(ca_api, holder, role="accountant")
    _issue(ca_api, holder, role="accountant")  # the first certificate (cloud) is paid for
    ca_api.pay(INN, 10 * RUTOKEN)
    csr = _csr(ec.generate_private_key(ec.SECP256R1()))

    def ask() -> Any:
        body = {"holder_id": holder, "role": "accountant", "storage": "rutoken", "csr_pem": csr}
        return ca_api.post(URL, body)

    first = ask()
    assert first.status_code == 201, first.json
    again = ask()  # the same holder may have its key certified again
    assert again.status_code == 201, again.json
    for done in (first, again):
        revoked = ca_api.post(f"{URL}/{done.json['serial']}/revoke", {"reason": "keyCompromise"})
        assert revoked.status_code == 200, revoked.json
    refused = _problem(ask(), 422, "certificate-refused")
    assert "compromised" in refused["detail"]

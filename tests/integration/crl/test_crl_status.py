"""``crl.status_at``: a certificate's status at any moment, from its append-only history.

Driven through the real API (issue, suspend, resume, revoke) with the test clock; the answer
at each moment must agree with the CRL the CA published then, and a later change must never
rewrite what the status was earlier (§8.3: revoked after the signing time does not count).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from crl import Status, status_at
from tests.ca_fixtures import CA_NOW, CaApi, register
from tests.integration.ca.test_issuance import _paid_first

pytestmark = [pytest.mark.hsm, pytest.mark.db]

URL = "/api/v1/certificates"


def test_status_at_follows_the_history_and_agrees_with_the_crl(ca_api: CaApi) -> None:
    head = register(ca_api)
    _paid_first(ca_api, head)
    issued = ca_api.post(URL, {"holder_id": head, "role": "head", "storage": "cloud"})
    assert issued.status_code == 201, issued.json
    serial_hex = issued.json["serial"]
    serial = int(serial_hex, 16)
    moments = {}

    def step(action: str, body: dict[str, str]) -> None:
        ca_api.clock.now += timedelta(hours=1)
        done = ca_api.post(f"{URL}/{serial_hex}/{action}", body, who="officer")
        assert done.status_code == 200, done.json
        moments[action] = ca_api.clock.now

    def crl_lists() -> x509.RevokedCertificate | None:
        crl = x509.load_der_x509_crl(ca_api.client.get("/crl/issuing.crl").data)
        return crl.get_revoked_certificate_by_serial_number(serial)

    def now_status() -> Status:
        with ca_api.runtime.transaction() as session:
            return status_at(session, serial, ca_api.clock.now).status

    assert now_status() is Status.GOOD and crl_lists() is None
    step("suspend", {})
    assert now_status() is Status.ON_HOLD and crl_lists() is not None
    step("resume", {})
    assert now_status() is Status.GOOD and crl_lists() is None
    step("revoke", {"reason": "keyCompromise"})
    assert now_status() is Status.REVOKED and crl_lists() is not None

    with ca_api.runtime.transaction() as session:
        before_issue = CA_NOW - timedelta(days=1)
        assert status_at(session, serial, moments["suspend"] - timedelta(minutes=1)).status is (
            Status.GOOD
        )
        held = status_at(session, serial, moments["suspend"] + timedelta(minutes=1))
        assert (held.status, held.reason, held.since) == (
            Status.ON_HOLD,
            "certificate_hold",
            moments["suspend"],
        )
        resumed = status_at(session, serial, moments["resume"] + timedelta(minutes=1))
        assert resumed.status is Status.GOOD and resumed.since is None
        revoked = status_at(session, serial, moments["revoke"])
        assert (revoked.status, revoked.reason, revoked.since) == (
            Status.REVOKED,
            "key_compromise",
            moments["revoke"],
        )
        # Revocation is final: still revoked a year on, though the certificate has expired.
        later = status_at(session, serial, CA_NOW + timedelta(days=400))
        assert later.status is Status.REVOKED and not later.in_validity_period
        assert status_at(session, serial, before_issue).in_validity_period is False
        assert status_at(session, serial + 1, CA_NOW).status is Status.UNKNOWN

"""Terminating a subscriber's contract revokes its certificates (issue #12, finding 8), through
the real interface (Flask test client as an officer, real database on SQLite and PostgreSQL, real
SoftHSM): cessationOfOperation, their cloud keys destroyed, and the published CRL file, read by
``openssl crl``, says so at once. The database rows and the audit journal are checked too.
"""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import select

from ca.models import Certificate, CertificateEvent
from tests.ca_fixtures import CaApi, register
from tests.integration.signing_api.test_trust_model import (
    CERTIFICATES,
    INN,
    _audit,
    _issue_paid,
    _problem,
)

pytestmark = [pytest.mark.hsm, pytest.mark.db]


def test_terminating_a_contract_revokes_its_certificates_and_the_crl_says_so(
    ca_api: CaApi, tmp_path: Path
) -> None:
    head = register(ca_api)
    accountant = register(ca_api, full_name="Бухгалтерова Айым", email="acc@test.kg",
                          passport_series="ID2222222")  # fmt: skip
    serial = _issue_paid(ca_api, head)
    ca_api.pay(INN, 5000_00)
    body = {"holder_id": accountant, "role": "accountant", "storage": "cloud"}
    second = ca_api.post(CERTIFICATES, body)
    assert second.status_code == 201, second.json
    other = str(second.json["serial"])
    suspended = ca_api.post(f"{CERTIFICATES}/{other}/suspend", {"note": "on leave"})
    assert suspended.status_code == 200
    with ca_api.runtime.transaction() as session:
        labels = [
            c.key_label for c in session.scalars(select(Certificate).order_by(Certificate.id))
        ]
    assert all(ca_api.runtime.cloud_token.has_key(label) for label in labels if label)

    _problem(ca_api.post(f"/api/v1/accounts/{INN}/termination", {"reason": "x"}, who="portal"),
             403, "forbidden")  # fmt: skip
    ca_api.clock.now += timedelta(minutes=5)  # the suspension's CRL is older
    ended = ca_api.post(f"/api/v1/accounts/{INN}/termination", {"reason": "закрытие компании"})
    assert ended.status_code == 201, ended.json

    with ca_api.runtime.transaction() as session:
        rows = session.scalars(select(Certificate).order_by(Certificate.id)).all()
        assert [(r.serial, r.status, r.revocation_reason) for r in rows] == [
            (serial, "revoked", "cessation_of_operation"),
            (other, "revoked", "cessation_of_operation"),
        ]
        assert all(r.key_destroyed_at is not None for r in rows)
        events = session.scalars(
            select(CertificateEvent.action).where(CertificateEvent.action == "revoked")
        ).all()
        assert len(events) == 2
    assert not any(ca_api.runtime.cloud_token.has_key(label) for label in labels if label)
    revoked = _audit(ca_api, "ca.certificate.revoked")
    assert sorted(r["serial"] for r in revoked) == sorted([serial, other])
    assert {r["reason"] for r in revoked} == {"cessation_of_operation"}
    assert len(_audit(ca_api, "ca.key.destroyed")) == 2
    # The portal sees them revoked at once.
    shown = ca_api.get(f"{CERTIFICATES}/{serial}", who="portal").json
    assert shown["state"] == "revoked"

    # The published CRL file, read by openssl, lists both with the reason.
    published = ca_api.runtime.config.crl_publish_dir / "issuing.crl"
    dump = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(published), "-noout", "-text"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    listed = {int(n, 16) for n in re.findall(r"Serial Number: ([0-9A-F]+)", dump)}
    assert listed == {int(serial, 16), int(other, 16)}, dump
    assert dump.count("Cessation Of Operation") == 2, dump
    crl = x509.load_der_x509_crl(published.read_bytes())
    assert {entry.serial_number for entry in crl} == {int(serial, 16), int(other, 16)}

    # A replay of the termination revokes nothing twice.
    again = ca_api.post(f"/api/v1/accounts/{INN}/termination", {"reason": "закрытие компании"})
    assert again.status_code == 200
    assert len(_audit(ca_api, "ca.certificate.revoked")) == 2

"""Suspend, resume and revoke through the API; the CRL agencies fetch follows (issue #4).

The published CRL is fetched over HTTP after each change and handed to ``openssl verify
-crl_check`` and pkilint's ``lint_crl``: a suspended certificate fails, a resumed one passes
again, a revoked one fails for good; CRL numbers increase; a repeated conditional fetch is 304.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import select

from ca.models import Certificate, CertificateEvent
from db import AuditEntry
from tests.ca_fixtures import CA_NOW, CaApi, register
from tests.integration.ca.test_issuance import _paid_first, _problem
from tests.pki_tools import _VENV_BIN

pytestmark = [pytest.mark.hsm, pytest.mark.db]

URL = "/api/v1/certificates"


def _issue(api: CaApi, holder: int, role: str = "head") -> str:
    done = api.post(URL, {"holder_id": holder, "role": role, "storage": "cloud"})
    assert done.status_code == 201, done.json
    return str(done.json["serial"])


class _Checker:
    """Fetches the CRL over HTTP and runs openssl verify -crl_check on one certificate."""

    def __init__(self, api: CaApi, tmp_path: Path, serial: str) -> None:
        self.api, self.tmp = api, tmp_path
        self.numbers: list[int] = []
        self.last = tmp_path / "none.pem"
        shown = api.get(f"{URL}/{serial}").json
        issuing, root = x509.load_pem_x509_certificates(shown["chain_pem"].encode())
        self.leaf = tmp_path / "leaf.pem"
        self.leaf.write_text(shown["certificate_pem"])
        (tmp_path / "root.pem").write_text(root.public_bytes(_pem()).decode())
        (tmp_path / "issuing.pem").write_text(issuing.public_bytes(_pem()).decode())

    def crl(self) -> x509.CertificateRevocationList:
        fetched = self.api.client.get("/crl/issuing.crl")
        assert fetched.status_code == 200 and fetched.mimetype == "application/pkix-crl"
        again = self.api.client.get(
            "/crl/issuing.crl", headers={"If-None-Match": fetched.headers["ETag"]}
        )
        assert again.status_code == 304
        der = self.tmp / f"issuing-{len(self.numbers)}.crl"
        der.write_bytes(fetched.data)
        lint = shutil.which("lint_crl") or str(_VENV_BIN / "lint_crl")
        result = subprocess.run([lint, "lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR", str(der)],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout
        crl = x509.load_der_x509_crl(fetched.data)
        self.last = der.with_suffix(".pem")
        self.last.write_bytes(crl.public_bytes(_pem()))
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        assert not self.numbers or number > self.numbers[-1]
        self.numbers.append(number)
        return crl

    def verify(self) -> subprocess.CompletedProcess[str]:
        self.current = self.crl()
        at = str(int((self.api.clock.now + timedelta(minutes=1)).timestamp()))
        return subprocess.run(
            ["openssl", "verify", "-attime", at, "-crl_check", "-CRLfile", str(self.last),
             "-CAfile", str(self.tmp / "root.pem"),
             "-untrusted", str(self.tmp / "issuing.pem"), str(self.leaf)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip


def _pem() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def test_suspend_resume_revoke_and_the_crl(ca_api: CaApi, tmp_path: Path) -> None:
    head = register(ca_api)
    accountant = register(ca_api, full_name="Счетова Анна", position="Главный бухгалтер",
                          email="acc@test.kg", passport_series="ID7654321")  # fmt: skip
    _paid_first(ca_api, head)
    head_serial = _issue(ca_api, head)
    ca_api.pay("01234567890123", 100_000_00)
    serial = _issue(ca_api, accountant, role="accountant")
    check = _Checker(ca_api, tmp_path, serial)

    clean = check.verify()
    assert clean.returncode == 0 and "OK" in clean.stdout, clean.stdout + clean.stderr

    # Who may: not a portal without an acting holder, not another portal at all.
    path = f"{URL}/{serial}"
    _problem(ca_api.post(f"{path}/suspend", {}, who="portal"), 403, "forbidden")
    _problem(
        ca_api.post(f"{path}/suspend", {}, who="portal_b", holder=accountant), 404, "not-found"
    )
    stranger = register(ca_api, inn="98765432109876", name="Другая", grant_to="portal_b")
    _problem(ca_api.post(f"{path}/suspend", {}, who="portal_b", holder=stranger), 404, "not-found")
    # The accountant may not touch the head's certificate.
    _problem(ca_api.post(f"{URL}/{head_serial}/suspend", {}, who="portal", holder=accountant),
             403, "forbidden")  # fmt: skip

    ca_api.clock.now = CA_NOW + timedelta(hours=1)
    suspended = ca_api.post(f"{path}/suspend", {"note": "на время отпуска"}, who="portal",
                            holder=accountant)  # fmt: skip
    assert suspended.status_code == 200, suspended.json
    assert (suspended.json["status"], suspended.json["state"]) == ("suspended", "suspended")
    held = check.verify()
    assert held.returncode != 0 and "certificate revoked" in held.stdout + held.stderr
    entry = check.current.get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.certificate_hold
    )
    _problem(ca_api.post(f"{path}/suspend", {}), 409, "conflict")

    ca_api.clock.now = CA_NOW + timedelta(hours=2)
    resumed = ca_api.post(f"{path}/resume", {}, who="portal", holder=accountant)
    assert resumed.status_code == 200 and resumed.json["state"] == "valid"
    ok = check.verify()
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr

    # The company's head revokes the accountant's certificate: key compromise, 3 hours ago.
    ca_api.clock.now = CA_NOW + timedelta(hours=3)
    bad = {"reason": "keyCompromise", "invalidity_date": "yesterday"}
    refused = _problem(ca_api.post(f"{path}/revoke", bad, who="portal", holder=head), 422,
                       "validation-failed")  # fmt: skip
    assert {e["field"] for e in refused["errors"]} == {"invalidity_date"}
    _problem(ca_api.post(f"{path}/revoke", {"reason": "certificateHold"}), 422, "validation-failed")
    _problem(ca_api.post(f"{path}/revoke", {"reason": "whim"}), 422, "validation-failed")
    body = {"reason": "keyCompromise", "invalidity_date": "2026-11-23T06:30:00Z"}
    revoked = ca_api.post(f"{path}/revoke", body, who="portal", holder=head)
    assert revoked.status_code == 200, revoked.json
    assert (revoked.json["status"], revoked.json["revocation_reason"]) == (
        "revoked",
        "key_compromise",
    )
    assert revoked.json["key_destroyed_at"] is not None
    final = check.verify()
    assert final.returncode != 0 and "certificate revoked" in final.stdout + final.stderr
    entry = check.current.get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    invalid = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert reason is x509.ReasonFlags.key_compromise
    assert invalid.invalidity_date_utc == CA_NOW + timedelta(minutes=30)
    _problem(ca_api.post(f"{path}/resume", {}), 409, "conflict")
    _problem(ca_api.post(f"{path}/revoke", {"reason": "superseded"}), 409, "conflict")
    assert len(check.numbers) == len(set(check.numbers))

    with ca_api.runtime.transaction() as session:
        row = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        assert row.key_label is not None
        label = row.key_label
        events = session.scalars(
            select(CertificateEvent.action)
            .where(CertificateEvent.certificate_id == row.id)
            .order_by(CertificateEvent.id)
        ).all()
        assert list(events) == ["issued", "suspended", "resumed", "revoked"]
        journal = set(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.object == f"certificate:{serial}")
            )
        )
        assert {"ca.certificate.revoked", "ca.key.destroyed"} <= journal
    assert not ca_api.runtime.cloud_token.has_key(label)  # the revoked key is gone

    # The CRL is also written for static serving.
    published = ca_api.runtime.config.crl_publish_dir / "issuing.crl"
    assert published.exists()
    assert x509.load_der_x509_crl(published.read_bytes()).get_revoked_certificate_by_serial_number(
        int(serial, 16)
    )


def test_officer_revokes_and_expired_entries_leave_the_crl(ca_api: CaApi) -> None:
    head = register(ca_api)
    _paid_first(ca_api, head)
    serial = _issue(ca_api, head)
    done = ca_api.post(f"{URL}/{serial}/revoke", {"reason": "cessationOfOperation"})
    assert done.status_code == 200 and done.json["revocation_reason"] == "cessation_of_operation"
    crl = x509.load_der_x509_crl(ca_api.client.get("/crl/issuing.crl").data)
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    ca_api.clock.now = CA_NOW + timedelta(days=366)  # the certificate has expired
    later = x509.load_der_x509_crl(ca_api.client.get("/crl/issuing.crl").data)
    assert later.get_revoked_certificate_by_serial_number(int(serial, 16)) is None


def test_crl_freshness_is_compared_at_one_precision(ca_api: CaApi) -> None:
    """Issue #12 finding 11: status-change times (microseconds) were compared with thisUpdate
    (whole seconds). A change in the first part of a second made every later fetch in that
    second reissue the CRL, and a client holding a CRL of that second got 304 for
    ``If-Modified-Since`` although a fresher CRL, with a new suspension, existed."""
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    serial = _issue(ca_api, holder)

    def number(response: Any) -> int:
        crl = x509.load_der_x509_crl(response.data)
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)

    ca_api.clock.now = CA_NOW.replace(hour=7, microsecond=200_000)  # 07:00:00.2
    first = ca_api.client.get("/crl/issuing.crl")
    assert first.status_code == 200
    stamp = first.headers["Last-Modified"]
    ca_api.clock.now = CA_NOW.replace(hour=7, microsecond=500_000)  # a suspension, same second
    done = ca_api.post(f"{URL}/{serial}/suspend", {"note": "проверка"})
    assert done.status_code == 200, done.json
    ca_api.clock.now = CA_NOW.replace(hour=7, microsecond=900_000)
    fresh = ca_api.client.get("/crl/issuing.crl", headers={"If-Modified-Since": stamp})
    assert fresh.status_code == 200, "304 although a newer CRL lists a new suspension"
    assert fresh.headers["Last-Modified"] == stamp  # the same second: HTTP cannot tell them apart
    listed = x509.load_der_x509_crl(fresh.data)
    assert listed.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    # No redundant CRLs: later fetches in this second and the next return the same one.
    for moment in (CA_NOW.replace(hour=7, microsecond=950_000), CA_NOW.replace(hour=7, second=5)):
        ca_api.clock.now = moment
        assert number(ca_api.client.get("/crl/issuing.crl")) == number(fresh)
    # The ETag still tells them apart, and a later second's date gets its 304.
    etag = ca_api.client.get("/crl/issuing.crl", headers={"If-None-Match": fresh.headers["ETag"]})
    assert etag.status_code == 304
    later = "Mon, 23 Nov 2026 07:00:01 GMT"
    assert (
        ca_api.client.get("/crl/issuing.crl", headers={"If-Modified-Since": later}).status_code
        == 304
    )
    with ca_api.runtime.transaction() as session:
        crls = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "crl.issued", AuditEntry.object == "crl:issuing")
            .order_by(AuditEntry.id)
        ).all()
    # One per number (base and delta CRLs share the sequence): nothing issued for nothing.
    numbers = sorted(entry.details_dict()["number"] for entry in crls)
    assert numbers == list(range(1, len(crls) + 1)) and number(fresh) in numbers
    kinds = [entry.details_dict()["kind"] for entry in crls]
    # the first fetch's full CRL; the suspension's delta (in its transaction), the full CRL
    # reissued after the commit and a delta relative to it
    assert kinds == ["full", "delta", "full", "delta"]

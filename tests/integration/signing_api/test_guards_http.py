"""Guarantees of the HTTP routes, each through the Flask test client on SQLite and PostgreSQL.

* OSMP terminals are admitted by the TCP peer's address; ``X-Forwarded-For`` (and its cousins)
  is never trusted (docs/osmp.md).
* A revocation or suspension through the API publishes the issuing CA's CRL at once: the stored
  CRL (the newest ``crl_issues`` row) and the file written for static serving list the serial
  before anybody fetches ``/crl/issuing.crl``.
* ``issue_certificate``'s default linter is pkilint: an HTTP issuance, which injects no linter,
  is refused when pkilint finds an error, and nothing is issued, kept or charged.
"""

from __future__ import annotations

import dataclasses
import inspect
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from flask.testing import FlaskClient
from sqlalchemy import func, select

import billing
from ca.issuance import issue_certificate
from ca.models import Certificate
from ca.profiles import lint_certificate
from crl.models import CRLIssue
from db import AuditEntry
from signing_api.runtime import Runtime
from tests.ca_fixtures import SUBSCRIBER, CaApi, register
from tests.integration.ca.test_issuance import _cloud_keys, _paid_first
from tests.integration.signing_api.test_osmp import (
    DATE,
    INN,
    NOW,
    _app,
    _call,
    _parse,
    _posted,
    _problem,
    _refusals,
    _written,
)

pytestmark = [pytest.mark.hsm, pytest.mark.db]

# --- OSMP: X-Forwarded-For is never trusted -------------------------------------------------------

_SPOOFS = (
    {"X-Forwarded-For": "127.0.0.1"},
    {"X-Forwarded-For": "127.0.0.1, 10.9.9.9"},
    {"X-Real-IP": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1"},
)


@pytest.fixture
def osmp(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """The app with INN's balance open, and the default (loopback) allow-lists."""
    monkeypatch.delenv("TAMGA_OSMP_ALLOW", raising=False)
    runtime.clock = lambda: NOW  # txn_date must be near now
    with runtime.transaction() as s:
        billing.open_account(s, inn=INN, name=SUBSCRIBER["name"], now=NOW, actor="test")
    return _app(runtime).test_client()


def _spoofed_pay(
    http: FlaskClient, provider: str, remote: str, headers: dict[str, str], txn_id: str
) -> Any:
    path = f"/payments/osmp/{provider}"
    query = {"command": "pay", "txn_id": txn_id, "account": INN, "sum": "100.00", "txn_date": DATE}
    environ = {"REMOTE_ADDR": remote}
    return http.get(path, query_string=query, headers=headers, environ_base=environ)


@pytest.mark.parametrize("headers", _SPOOFS, ids=["xff", "xff-list", "x-real-ip", "forwarded"])
def test_osmp_forwarded_headers_do_not_admit_a_stranger(
    osmp: FlaskClient,
    runtime: Runtime,
    headers: dict[str, str],
) -> None:
    """A peer outside the (loopback) allow-list naming an allowed address in a header is refused."""
    before = _written(runtime)
    response = _spoofed_pay(osmp, "quickpay", "10.9.9.9", headers, "77")
    body = _problem(response, 403)
    assert body["type"] == "urn:tamga:problem:forbidden"
    assert "10.9.9.9" in body["detail"]
    assert _posted(runtime) == (0, 0)  # nothing credited
    journal, receipts, audit = _written(runtime)
    assert (journal, receipts) == before[:2]  # no ledger transaction, no receipt
    assert audit == before[2] + 1  # only the refusal
    [entry] = _refusals(runtime)
    assert entry.actor == "ip:10.9.9.9"  # the peer, not the header's address
    assert entry.details_dict()["address"] == "10.9.9.9"


def test_osmp_forwarded_headers_do_not_shut_out_an_allowed_peer(
    osmp: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other way round: an allowed peer is admitted whatever address the header claims, and
    an allowed address in the header does not admit another peer (allow-list from the
    environment)."""
    monkeypatch.setenv("TAMGA_OSMP_ALLOW", "megapay=10.9.9.0/24")
    client = _app(runtime).test_client()  # the allow-lists are read when the app is made
    refused = _spoofed_pay(client, "megapay", "192.0.2.50", {"X-Forwarded-For": "10.9.9.9"}, "1")
    _problem(refused, 403)
    assert _posted(runtime) == (0, 0)
    admitted = _spoofed_pay(client, "megapay", "10.9.9.9", {"X-Forwarded-For": "192.0.2.50"}, "2")
    answer = _parse(admitted)
    assert answer.result == 0, answer.comment
    assert _posted(runtime) == (100_00, 0)
    [entry] = _refusals(runtime)
    assert entry.actor == "ip:192.0.2.50"
    # And the plain helper still sees the peer: loopback is refused for megapay now.
    _problem(_call(client, "megapay", command="check", txn_id="3", account=INN), 403)


# --- the CRL is published at once on the API's revocation path ------------------------------------

URL = "/api/v1/certificates"


def _stored(api: CaApi, kind: str = "full") -> tuple[int, bytes]:
    """(number, DER) of the newest issuing-CA CRL of ``kind`` (full or delta) in the database."""
    with api.runtime.transaction() as session:
        row = session.scalars(
            select(CRLIssue)
            .where(CRLIssue.issuer == "issuing", CRLIssue.kind == kind)
            .order_by(CRLIssue.number.desc())
            .limit(1)
        ).one()
        return row.number, row.der


def _published(api: CaApi, kind: str = "full") -> tuple[int, bytes, x509.CertificateRevocationList]:
    """The stored CRL, checked to be the very file written for static serving."""
    number, der = _stored(api, kind)
    name = "issuing-delta.crl" if kind == "delta" else "issuing.crl"
    on_disk = (api.runtime.config.crl_publish_dir / name).read_bytes()
    assert on_disk == der, "the file for static serving is not the newest stored CRL"
    return number, der, x509.load_der_x509_crl(der)


def _reason(crl: x509.CertificateRevocationList, serial: str) -> x509.ReasonFlags | str | None:
    """The entry's reasonCode, None without one, "absent" when the serial is not listed."""
    entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    if entry is None:
        return "absent"
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def test_revocation_api_publishes_the_crl_before_any_fetch(ca_api: CaApi) -> None:
    head = register(ca_api)
    _paid_first(ca_api, head)
    done = ca_api.post(URL, {"holder_id": head, "role": "head", "storage": "cloud"})
    assert done.status_code == 201, done.json
    serial = done.json["serial"]
    # A CRL is in force (and its file written) before the change: one fetch, the only one.
    assert ca_api.client.get("/crl/issuing.crl").status_code == 200
    number, _, crl = _published(ca_api)
    assert _reason(crl, serial) == "absent"

    steps: tuple[tuple[str, dict[str, str], object, object], ...] = (
        ("suspend", {}, x509.ReasonFlags.certificate_hold, x509.ReasonFlags.certificate_hold),
        ("resume", {}, "absent", x509.ReasonFlags.remove_from_crl),
        ("revoke", {"reason": "keyCompromise"}, x509.ReasonFlags.key_compromise,
         x509.ReasonFlags.key_compromise),
    )  # fmt: skip
    for action, body, expected, in_delta in steps:
        ca_api.clock.now += timedelta(minutes=1)
        changed = ca_api.post(f"{URL}/{serial}/{action}", body)
        assert changed.status_code == 200, changed.json
        # No GET /crl/... here: what agencies and the CDN read must already say it — the full
        # CRL (reissued after the change while it is small) and the delta CRL relative to it.
        later, _, crl = _published(ca_api)
        assert later > number, f"{action}: no new CRL was published"
        assert _reason(crl, serial) == expected, action
        assert crl.last_update_utc == ca_api.clock.now.replace(microsecond=0)
        delta_number, _, delta = _published(ca_api, "delta")
        assert delta_number > later, f"{action}: no delta relative to the new CRL"
        indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        assert indicator.value.crl_number == later
        assert _reason(delta, serial) == in_delta, action
        number = delta_number


# --- the default linter is pkilint ----------------------------------------------------------------


def test_issue_certificate_lints_with_pkilint_by_default() -> None:
    default = inspect.signature(issue_certificate).parameters["lint"].default
    assert default is lint_certificate


def test_http_issuance_is_refused_by_pkilint(ca_api: CaApi) -> None:
    """The route injects no linter; a URL pkilint rejects (a space in it) must stop issuance."""
    holder = register(ca_api)
    _paid_first(ca_api, holder)  # the first certificate's price is paid, so only lint can refuse
    ca_api.runtime.config = dataclasses.replace(
        ca_api.runtime.config, public_url="http://ca.example.kg/tamga ca"
    )
    keys = _cloud_keys(ca_api)
    with ca_api.runtime.transaction() as session:
        money = billing.balance(session, SUBSCRIBER["inn"])
    response = ca_api.post(URL, {"holder_id": holder, "role": "head", "storage": "cloud"})
    assert response.status_code == 422, response.json
    assert response.json["type"] == "urn:tamga:problem:certificate-refused"
    findings = response.json["lint_findings"]
    assert findings and all(f.startswith(("ERROR ", "FATAL ")) for f in findings), findings
    assert any("pkix.invalid_uri_syntax" in f for f in findings), findings
    assert _cloud_keys(ca_api) == keys  # the key generated for it was destroyed
    with ca_api.runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Certificate)) == 0
        assert billing.balance(session, SUBSCRIBER["inn"]) == money
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "ca.certificate.refused")
        ).all()
        assert refused and "LintFailed" in refused[-1].details

"""The OCSP responder (issue #15) on real SoftHSM2 and both databases, through the Flask app.

Certificates are issued, suspended, resumed and revoked through the HTTP API; the answers are
read with pyca, checked by ``openssl ocsp`` (requests made by openssl with ``-reqout``, answers
verified with ``-respin`` against root + issuing, nonce included) and linted by pkilint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
import urllib.parse
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select, text

from ca import active_certificate, ensure_hierarchy
from ca.ocsp_responder import ensure_ocsp_responder
from crl import OCSPResponseRow, refresh_responses, sign_statuses
from db import AuditEntry
from policies.ocsp import OCSP
from signing_api.app import create_app
from signing_api.runtime import Runtime
from signing_api.worker import Worker
from tests.ca_fixtures import CA_NOW, CA_URL, CaApi, register
from tests.hsm_fixtures import TEST_PINS
from tests.integration.ca.test_dispatch import _assert_sign_only_and_locked, _token_keys
from tests.integration.ca.test_issuance import _paid_first
from tests.pki_tools import pkilint, write_pem

pytestmark = [pytest.mark.hsm, pytest.mark.db]

CERTS = "/api/v1/certificates"
OCSP_REQUEST = "application/ocsp-request"
# RFC 5019 §2.1.1 CertIDs and RFC 6960 ResponderID byKey are SHA-1: openssl's default too.
SHA1 = hashes.SHA1()  # noqa: S303


# --- helpers ---------------------------------------------------------------------------------


def _issue(api: CaApi, inn: str = "01234567890123") -> x509.Certificate:
    head = register(api, inn=inn)
    _paid_first(api, head)
    issued = api.post(CERTS, {"holder_id": head, "role": "head", "storage": "cloud"})
    assert issued.status_code == 201, issued.json
    return x509.load_pem_x509_certificate(issued.json["certificate_pem"].encode())


def _chain(api: CaApi) -> tuple[x509.Certificate, x509.Certificate]:
    with api.runtime.transaction() as session:
        return active_certificate(session, "root"), active_certificate(session, "issuing")


def _request(
    cert: x509.Certificate | None,
    issuer: x509.Certificate,
    *,
    serial: int | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    algorithm = algorithm or SHA1
    builder = ocsp.OCSPRequestBuilder()
    if cert is not None:
        builder = builder.add_certificate(cert, issuer, algorithm)
    else:
        assert serial is not None
        name = hashlib.new(algorithm.name, issuer.subject.public_bytes()).digest()
        template = ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, algorithm).build()
        builder = builder.add_certificate_by_hash(name, template.issuer_key_hash, serial, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _post(api: CaApi, der: bytes) -> Any:
    return api.client.post("/ocsp", data=der, headers={"Content-Type": OCSP_REQUEST})


def _get(api: CaApi, der: bytes, **headers: str) -> Any:
    encoded = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    return api.client.get(f"/ocsp/{encoded}", headers=headers)


def _answer(reply: Any) -> ocsp.OCSPResponse:
    assert reply.status_code == 200, reply.data
    assert reply.mimetype == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(reply.data)


def _verified(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    """The signature checks with ``signer``'s key, and the responder ID names it."""
    key = signer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(
        response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm)
    )
    key_hash = ocsp.OCSPRequestBuilder().add_certificate(signer, signer, SHA1).build()
    assert response.responder_key_hash == key_hash.issuer_key_hash  # byKey: SHA-1 of its key


def _rows(api: CaApi) -> list[tuple[str, str, str, datetime, bytes]]:
    with api.runtime.transaction() as session:
        return [
            (r.serial, r.hash_algorithm, r.status, r.produced_at, r.der)
            for r in session.scalars(select(OCSPResponseRow).order_by(OCSPResponseRow.serial))
        ]


def _journal(api: CaApi, action: str = "ocsp.signed") -> int:
    with api.runtime.transaction() as session:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        return int(session.scalar(query) or 0)


@pytest.fixture
def ocsp_api(ca_api: CaApi) -> CaApi:
    with ca_api.runtime.transaction() as session:
        ensure_ocsp_responder(
            session, ca_api.runtime.ca_token, public_url=CA_URL, now=CA_NOW, actor="test"
        )
    return ca_api


def _responder(api: CaApi) -> x509.Certificate:
    with api.runtime.transaction() as session:
        return active_certificate(session, OCSP.name)


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


class OpenSSL:
    """``openssl ocsp`` makes the requests (``-reqout``) and checks the answers (``-respin``)
    that the app gave through its test client, at the test clock's time (``-attime``)."""

    def __init__(self, api: CaApi, directory: Path) -> None:
        self.api, self.dir = api, directory
        root, issuing = _chain(api)
        self.issuing = write_pem(directory / "issuing.pem", issuing)
        self.chain = write_pem(directory / "chain.pem", root, issuing)
        self.root = write_pem(directory / "root.pem", root)

    def _times(self) -> list[str]:
        # The answers' thisUpdate is the test clock's; openssl would compare it with today.
        moment = int(self.api.clock.now.timestamp())
        return ["-attime", str(moment), "-validity_period", str(10 * 365 * 86400)]

    def ask(
        self,
        target: list[str],
        *,
        nonce: bool,
        issuer: Path | None = None,
        ca_file: Path | None = None,
        get: bool = False,
    ) -> str:
        """openssl's verdict on the app's answer: the -resp_text dump and the summary line."""
        issuer, ca_file = issuer or self.issuing, ca_file or self.chain
        request = self.dir / "req.der"
        made = _openssl(
            "ocsp", "-issuer", str(issuer), *target, "-reqout", str(request),
            "-nonce" if nonce else "-no_nonce",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        der = request.read_bytes()
        reply = _get(self.api, der) if get else _post(self.api, der)
        assert reply.status_code == 200 and reply.mimetype == "application/ocsp-response"
        response = self.dir / "resp.der"
        response.write_bytes(reply.data)
        # 1. the answer to *that* request: signature, chain, nonce (checked when both have one)
        checked = _openssl(
            "ocsp", "-reqin", str(request), "-respin", str(response), "-CAfile", str(ca_file),
            "-resp_text", *self._times(),
        )  # fmt: skip
        out = checked.stdout + checked.stderr
        assert checked.returncode == 0 and "Response verify OK" in out, out
        assert "Nonce Verify error" not in out and "no nonce in response" not in out, out
        assert ("OCSP Nonce" in out) is nonce, out
        # 2. the status openssl reads for the certificate asked about
        summary = _openssl(
            "ocsp", "-issuer", str(issuer), *target, "-respin", str(response), "-no_nonce",
            "-CAfile", str(ca_file), *self._times(),
        )  # fmt: skip
        assert summary.returncode == 0, summary.stdout + summary.stderr
        return out + summary.stdout


# --- tests -----------------------------------------------------------------------------------


def test_statuses_follow_the_api_and_openssl_agrees(ocsp_api: CaApi, tmp_path: Path) -> None:
    """good → suspend (certificateHold) → resume (good) → revoke (keyCompromise, its time),
    each change made through the HTTP API, whose transaction re-signs the stored answers of
    every CertID hash already asked for (crl.status_changed). openssl checks every answer, with
    and without a nonce, POST and GET."""
    api = ocsp_api
    cert = _issue(api)
    serial = format(cert.serial_number, "x")
    check = OpenSSL(api, tmp_path)
    pem = write_pem(tmp_path / "cert.pem", cert)
    responder = _responder(api)
    _, issuing = _chain(api)

    def status(**options: Any) -> ocsp.OCSPResponse:
        response = _answer(_post(api, _request(cert, issuing, **options)))
        assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert response.serial_number == cert.serial_number
        assert response.certificates == [responder]
        _verified(response, responder)
        return response

    assert status().certificate_status is ocsp.OCSPCertStatus.GOOD
    for nonce in (False, True):
        for get in (False, True):
            seen = check.ask(["-cert", str(pem)], nonce=nonce, get=get)
            assert f"{pem}: good" in seen, seen

    def step(action: str, body: dict[str, str]) -> datetime:
        api.clock.now += timedelta(hours=1)
        done = api.post(f"{CERTS}/{serial}/{action}", body)
        assert done.status_code == 200, done.json
        return api.clock.now

    held_at = step("suspend", {})
    held = status()
    assert held.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert held.revocation_reason is x509.ReasonFlags.certificate_hold
    assert held.revocation_time_utc == held_at.replace(microsecond=0)
    assert status(algorithm=hashes.SHA256()).revocation_reason is x509.ReasonFlags.certificate_hold
    seen = check.ask(["-cert", str(pem)], nonce=True)
    assert f"{pem}: revoked" in seen and "Reason: certificateHold" in seen, seen

    step("resume", {})
    resumed = status()
    assert resumed.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert f"{pem}: good" in check.ask(["-cert", str(pem)], nonce=False, get=True)

    revoked_at = step("revoke", {"reason": "keyCompromise"})
    revoked = status()
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
    assert revoked.revocation_time_utc == revoked_at.replace(microsecond=0)
    for nonce in (False, True):
        seen = check.ask(["-cert", str(pem)], nonce=nonce)
        assert f"{pem}: revoked" in seen and "Reason: keyCompromise" in seen, seen
        stamp = revoked_at.strftime("%b %e %H:%M:%S %Y GMT")
        assert f"Revocation Time: {stamp}" in seen, seen

    # A serial the issuing CA never issued: unknown (not stored: no cache of invented serials).
    rows_before = len(_rows(api))
    seen = check.ask(["-serial", f"0x{cert.serial_number + 2:x}"], nonce=False)
    assert "unknown" in seen, seen
    assert status(nonce=b"n" * 16).certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert len(_rows(api)) == rows_before
    # The SHA-256 row, last asked for while on hold, was re-signed by the revocation itself.
    assert {r[1]: r[2] for r in _rows(api)} == {"sha1": "revoked", "sha256": "revoked"}
    assert status(algorithm=hashes.SHA256()).revocation_reason is x509.ReasonFlags.key_compromise
    # Stored: the revoked answer for SHA-1 and SHA-256 CertIDs, nothing else.
    assert {(r[0], r[1], r[2]) for r in _rows(api)} == {
        (serial, "sha1", "revoked"),
        (serial, "sha256", "revoked"),
    }


def test_a_fresh_stored_answer_is_a_lookup_with_rfc5019_caching(ocsp_api: CaApi) -> None:
    """Asked again, the same bytes come back: no new row, no new producedAt, no journal entry
    (no signing, hence no HSM call). GET carries RFC 5019 §6.2 headers and honours
    If-None-Match; a nonce gets an answer of its own, echoed, not stored, not cacheable."""
    api = ocsp_api
    cert = _issue(api)
    _, issuing = _chain(api)
    der = _request(cert, issuing)
    first = _get(api, der)
    _answer(first)
    rows, signed = _rows(api), _journal(api)
    assert len(rows) == 1 and signed == 1
    api.clock.now += timedelta(hours=3)
    again = _get(api, der)
    assert again.data == first.data
    assert _post(api, der).data == first.data
    assert _rows(api) == rows and _journal(api) == signed

    response = _answer(again)
    assert again.headers["ETag"] == f'"{hashlib.sha256(again.data).hexdigest()}"'
    assert again.last_modified == response.this_update_utc
    assert again.expires == response.next_update_utc
    assert response.next_update_utc == response.this_update_utc + OCSP.response_validity
    control = again.cache_control
    assert control.public and control.no_transform and control.must_revalidate
    left = (response.next_update_utc - api.clock.now).total_seconds()
    assert control.max_age == int(left) and left == pytest.approx(21 * 3600)
    not_modified = _get(api, der, **{"If-None-Match": again.headers["ETag"]})
    assert not_modified.status_code == 304 and not not_modified.data
    since = _get(api, der, **{"If-Modified-Since": again.headers["Last-Modified"]})
    assert since.status_code == 304
    # Base64 with raw slashes and without its padding is the same request.
    raw = base64.b64encode(der).decode().rstrip("=")
    assert api.client.get(f"/ocsp/{raw}").data == first.data
    assert _post(api, der).cache_control.no_store  # POST answers are not HTTP-cached

    nonce = b"\x01" * 32
    with_nonce = _get(api, _request(cert, issuing, nonce=nonce))
    answer = _answer(with_nonce)
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert with_nonce.data != first.data and "ETag" not in with_nonce.headers
    assert with_nonce.cache_control.no_store and with_nonce.cache_control.max_age is None
    assert _rows(api) == rows and _journal(api) == signed  # signed, neither stored nor journalled

    # Past its nextUpdate the stored answer is stale: re-signed on the next request.
    api.clock.now = response.next_update_utc
    renewed = _answer(_get(api, der))
    assert renewed.this_update_utc == api.clock.now.replace(microsecond=0)
    assert _journal(api) == signed + 1 and len(_rows(api)) == 1


def test_a_status_change_stores_its_answers_so_the_next_request_is_a_lookup(
    ocsp_api: CaApi,
) -> None:
    api = ocsp_api
    cert = _issue(api)
    serial = format(cert.serial_number, "x")
    _, issuing = _chain(api)
    api.clock.now += timedelta(minutes=5)
    journal = _journal(api)
    done = api.post(f"{CERTS}/{serial}/revoke", {"reason": "superseded"})
    assert done.status_code == 200, done.json
    # The revocation's own transaction stored the answers (SHA-1 and SHA-256 CertIDs), signed
    # at the change's moment, and journalled them once: before any OCSP request.
    rows = _rows(api)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (serial, "sha1", "revoked"),
        (serial, "sha256", "revoked"),
    ]
    moment = api.clock.now.replace(microsecond=0)
    assert all(ocsp.load_der_ocsp_response(r[4]).this_update_utc == moment for r in rows)
    assert _journal(api) == journal + 1
    journal = _journal(api)
    for algorithm in (SHA1, hashes.SHA256()):
        answer = _answer(_post(api, _request(cert, issuing, algorithm=algorithm)))
        assert answer.revocation_reason is x509.ReasonFlags.superseded
    assert _rows(api) == rows and _journal(api) == journal  # lookups only
    with api.runtime.transaction() as session:  # a serial never issued: nothing to sign
        assert sign_statuses(
            session, serials=[cert.serial_number + 2], token=api.runtime.ca_token,
            now=api.clock.now, actor="test",
        ) == 0  # fmt: skip

    # The worker's refresh: nothing due now; within the margin before nextUpdate, all of them.
    with api.runtime.transaction() as session:
        assert refresh_responses(
            session, token=api.runtime.ca_token, now=api.clock.now, actor="test"
        ) == 0  # fmt: skip
    api.clock.now += OCSP.response_validity - OCSP.refresh_margin
    tally = Worker(api.runtime, mail=False).run_once()
    assert tally.ocsp_signed == 2 and not tally.ocsp_renewed
    fresh = _rows(api)
    assert [r[:3] for r in fresh] == [r[:3] for r in rows] and fresh != rows
    journal = _journal(api)
    _answer(_post(api, _request(cert, issuing)))
    assert _rows(api) == fresh and _journal(api) == journal


def test_refusals_are_ocsp_responses_or_http_envelope_errors(
    ocsp_api: CaApi, tmp_path: Path
) -> None:
    api = ocsp_api
    cert = _issue(api)
    other = _issue(api, inn="01234567890124")
    _, issuing = _chain(api)

    def status(reply: Any) -> ocsp.OCSPResponseStatus:
        return _answer(reply).response_status

    malformed, unauthorized = (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        ocsp.OCSPResponseStatus.UNAUTHORIZED,
    )
    assert status(_post(api, b"")) is malformed
    assert api.client.get("/ocsp/").status_code == 404  # no request at all: no resource
    for garbage in (b"garbage", b"\x30\x03\x02\x01\x01", b"\x30" + b"\xff" * 40):
        assert status(_post(api, garbage)) is malformed
        assert status(_get(api, garbage)) is malformed
    assert status(api.client.get("/ocsp/not*base64!")) is malformed
    assert status(api.client.get("/ocsp/QUJD%")) is malformed
    # "//" is base64 too: routed as it is (no slash merging, no redirect).
    assert status(api.client.get("/ocsp/MA//MA==")) is malformed
    # RFC 8954 §2.1: at most 32 octets of nonce.
    assert status(_post(api, _request(cert, issuing, nonce=b"x" * 33))) is malformed
    # RFC 5019 §2.1.1: one CertID per request (openssl makes one with two).
    two = tmp_path / "two.der"
    write_pem(tmp_path / "i.pem", issuing)
    write_pem(tmp_path / "a.pem", cert)
    write_pem(tmp_path / "b.pem", other)
    made = _openssl(
        "ocsp", "-issuer", str(tmp_path / "i.pem"), "-cert", str(tmp_path / "a.pem"),
        "-cert", str(tmp_path / "b.pem"), "-reqout", str(two), "-no_nonce",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert status(_post(api, two.read_bytes())) is malformed

    # Another issuer's CertID: a CA that is not ours, with our certificate's serial.
    foreign_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another CA")])
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(foreign_key.public_key())
        .serial_number(1)
        .not_valid_before(CA_NOW)
        .not_valid_after(CA_NOW + timedelta(days=1))
        .sign(foreign_key, hashes.SHA256())
    )
    assert status(_post(api, _request(None, foreign, serial=cert.serial_number))) is unauthorized
    assert status(_post(api, _request(cert, issuing, algorithm=hashes.SHA224()))) is unauthorized

    # The HTTP envelope: 415 for another media type, 413 above 64 KiB — problem+json.
    wrong = api.client.post("/ocsp", data=_request(cert, issuing), content_type="text/plain")
    assert wrong.status_code == 415 and wrong.mimetype == "application/problem+json"
    big = api.client.post("/ocsp", data=b"0" * (OCSP.max_request_bytes + 1),
                          content_type=OCSP_REQUEST)  # fmt: skip
    assert big.status_code == 413 and big.mimetype == "application/problem+json"
    assert _rows(api) == []


def test_the_root_answers_for_the_issuing_ca_with_its_own_key(
    ocsp_api: CaApi, tmp_path: Path
) -> None:
    api = ocsp_api
    root, issuing = _chain(api)
    answer = _answer(_post(api, _request(issuing, root)))
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    # The root's own certificate rides along: openssl looks for a byKey signer there only.
    assert answer.certificates == [root]
    key = root.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and answer.signature_hash_algorithm
    key.verify(
        answer.signature, answer.tbs_response_bytes, ec.ECDSA(answer.signature_hash_algorithm)
    )
    check = OpenSSL(api, tmp_path)
    seen = check.ask(
        ["-cert", str(check.issuing)], nonce=True, issuer=check.root, ca_file=check.root
    )
    assert f"{check.issuing}: good" in seen, seen
    # A serial the root never issued: unknown, signed by the root too.
    unknown = _answer(_post(api, _request(None, root, serial=issuing.serial_number + 1)))
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    # The operator's own certificates, issued by the issuing CA: good.
    responder = _responder(api)
    operator = _answer(_post(api, _request(responder, issuing)))
    assert operator.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_responder_certificate_aia_and_pkilint(ocsp_api: CaApi, tmp_path: Path) -> None:
    api = ocsp_api
    responder = _responder(api)
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert responder.not_valid_after_utc - responder.not_valid_before_utc == OCSP.validity
    aia = responder.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_method for d in aia] == [AuthorityInformationAccessOID.CA_ISSUERS]
    assert responder.public_key() == api.runtime.ca_token.public_key(OCSP.key_label)
    pkilint(write_pem(tmp_path / "responder.pem", responder))
    served = api.client.get("/ca/ocsp.crt")
    assert served.status_code == 200 and served.data == responder.public_bytes(
        serialization.Encoding.DER
    )
    # Newly issued certificates name the responder beside caIssuers (and pkilint stays clean).
    cert = _issue(api)
    _, issuing = _chain(api)
    for issued in (cert, issuing):
        aia = issued.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ocsp_urls = [
            d.access_location.value
            for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
        ]
        assert ocsp_urls == [f"{CA_URL}/ocsp"]
    pkilint(write_pem(tmp_path / "cert.pem", cert))
    # pkilint's RFC 6960 response linter: good, revoked, unknown.
    serial = format(cert.serial_number, "x")
    for name, der in (
        ("good", _request(cert, issuing)),
        ("unknown", _request(None, issuing, serial=cert.serial_number + 2)),
    ):
        path = tmp_path / f"{name}.der"
        path.write_bytes(_post(api, der).data)
        pkilint(path, "lint_ocsp_response")
    api.clock.now += timedelta(minutes=1)
    assert api.post(f"{CERTS}/{serial}/revoke", {"reason": "keyCompromise"}).status_code == 200
    path = tmp_path / "revoked.der"
    path.write_bytes(_post(api, _request(cert, issuing, nonce=b"r" * 16)).data)
    pkilint(path, "lint_ocsp_response")


def test_the_worker_renews_the_responder_certificate_and_answers_follow(
    ocsp_api: CaApi,
) -> None:
    api = ocsp_api
    old = _responder(api)
    cert = _issue(api)
    _, issuing = _chain(api)
    _answer(_post(api, _request(cert, issuing)))
    worker = Worker(api.runtime, mail=False)
    assert not worker.run_once().ocsp_renewed  # 30 days left: nothing to do
    # Less than a third left: renewed on the next pass, same key, journalled.
    api.clock.now = old.not_valid_after_utc - OCSP.renew_before + timedelta(minutes=1)
    tally = worker.run_once()
    assert tally.ocsp_renewed and tally.ocsp_signed == 1, tally
    new = _responder(api)
    assert new.serial_number != old.serial_number and new.public_key() == old.public_key()
    assert new.not_valid_before_utc == api.clock.now.replace(microsecond=0)
    with api.runtime.transaction() as session:
        entry = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "certificate.issued", AuditEntry.object == "ca:ocsp")
            .order_by(AuditEntry.id.desc())
        ).first()
    assert entry is not None
    assert json.loads(entry.details)["renews"] == format(old.serial_number, "x")
    answer = _answer(_post(api, _request(cert, issuing)))
    assert answer.certificates == [new]
    _verified(answer, new)
    # tamga init's path renews too (idempotent once renewed).
    with api.runtime.transaction() as session:
        again = ensure_ocsp_responder(
            session, api.runtime.ca_token, public_url=CA_URL, now=api.clock.now, actor="test"
        )
    assert again == new


def test_no_valid_responder_certificate_is_try_later(ocsp_api: CaApi) -> None:
    """Past the responder certificate's notAfter with no worker to renew it: 503 tryLater for
    anything that must be signed, never an answer from an expired responder."""
    api = ocsp_api
    cert = _issue(api)
    _, issuing = _chain(api)
    api.clock.now = _responder(api).not_valid_after_utc + timedelta(seconds=1)
    reply = api.client.post("/ocsp", data=_request(cert, issuing),
                            headers={"Content-Type": OCSP_REQUEST})  # fmt: skip
    assert reply.status_code == 503 and reply.mimetype == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(reply.data)
    assert answer.response_status is ocsp.OCSPResponseStatus.TRY_LATER
    # The revoking transaction's pre-signing does not fail the revocation: it signs nothing.
    serial = format(cert.serial_number, "x")
    assert api.post(f"{CERTS}/{serial}/revoke", {"reason": "keyCompromise"}).status_code == 200
    with api.runtime.transaction() as session:
        assert sign_statuses(
            session, serials=[serial], token=api.runtime.ca_token, now=api.clock.now, actor="t"
        ) == 0  # fmt: skip
    assert _rows(api) == []


def test_an_external_national_root_is_not_answered_for(runtime: Runtime) -> None:
    """With TAMGA_ROOT_CERT the root's key is not ours: a CertID naming it is unauthorized."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test National Root")])
    national = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(CA_NOW - timedelta(days=1))
        .not_valid_after(CA_NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    with runtime.transaction() as session:
        ensure_hierarchy(
            session, runtime.ca_token, public_url=CA_URL, now=CA_NOW, external_root=national
        )
    app = create_app(runtime.config)
    app.extensions["tamga"] = runtime
    reply = app.test_client().post(
        "/ocsp", data=_request(None, national, serial=12345), content_type=OCSP_REQUEST
    )
    assert _answer(reply).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_the_responder_key_is_sensitive_and_never_extractable(ocsp_api: CaApi) -> None:
    keys = _token_keys(Path(os.environ["SOFTHSM2_CONF"]), TEST_PINS["tamga-ca"])
    (key,) = [k for k in keys if k["label"] == OCSP.key_label]
    _assert_sign_only_and_locked(key)


def _waiting_on_a_lock(api: CaApi) -> list[str]:
    """The statements of this database's sessions waiting for a lock (PostgreSQL)."""
    with api.runtime.engine.connect() as conn:
        query = text(
            "SELECT query FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return list(conn.execute(query).scalars())


def test_workers_share_the_refresh_queue(ocsp_api: CaApi) -> None:
    """Two workers refreshing at once never re-sign the same stored answer: on PostgreSQL the
    second skips the rows the first holds (FOR UPDATE SKIP LOCKED) and takes the rest; on
    SQLite (one writer at a time) the second finds only what the first left."""
    api = ocsp_api
    serials = [format(_issue(api, inn=f"0123456789012{n}").serial_number, "x") for n in (3, 4)]
    with api.runtime.transaction() as session:
        assert sign_statuses(
            session, serials=serials, token=api.runtime.ca_token, now=api.clock.now, actor="t"
        ) == 4  # fmt: skip
    due = api.clock.now + OCSP.response_validity
    token = api.runtime.ca_token
    if api.runtime.engine.dialect.name == "postgresql":
        done: list[int] = []

        def second_worker() -> None:
            with api.runtime.transaction() as second:
                done.append(refresh_responses(second, token=token, now=due, actor="w2", limit=10))

        with api.runtime.transaction() as first:
            taken = refresh_responses(first, token=token, now=due, actor="w1", limit=1)
            worker = threading.Thread(target=second_worker)
            worker.start()
            # The second worker finishes while the first still holds its row: it skipped it
            # (SKIP LOCKED) rather than wait, and nothing else is shared (appends to the audit
            # journal lock nothing since issue #16).
            worker.join(20)
            assert not worker.is_alive() and not _waiting_on_a_lock(api)
        worker.join(60)
        rest = done[0]
    else:
        with api.runtime.transaction() as first:
            taken = refresh_responses(first, token=token, now=due, actor="w1", limit=1)
        with api.runtime.transaction() as second:
            # what the first re-signed is no longer due at `due`: its nextUpdate moved on
            rest = refresh_responses(second, token=token, now=due, actor="w2", limit=10)
    assert (taken, rest) == (1, 3)
    assert all(r[3] for r in _rows(api))
    with api.runtime.transaction() as session:
        assert refresh_responses(session, token=token, now=due, actor="w3") == 0


def test_ocsp_is_limited_per_address_with_the_public_routes(runtime: Runtime) -> None:
    app = create_app(replace(runtime.config, limit_public="3/minute"))
    app.extensions["tamga"] = runtime
    client = app.test_client()

    def ask(address: str) -> int:
        reply = client.post("/ocsp", data=b"garbage", content_type=OCSP_REQUEST,
                            environ_base={"REMOTE_ADDR": address})  # fmt: skip
        return int(reply.status_code)

    assert [ask("198.51.100.7") for _ in range(4)] == [200, 200, 200, 429]
    assert ask("192.0.2.44") == 200


def test_a_change_made_without_the_hook_is_never_hidden_by_a_stored_answer(
    ocsp_api: CaApi,
) -> None:
    """Defence in depth: a status change committed by code that does not call
    crl.status_changed (a future path, a repair by hand) leaves a stored 'good' answer behind;
    the responder sees it no longer says what status_at says and re-signs it."""
    from ca.issuance import get_certificate
    from ca.revocation import Actor, revoke

    api = ocsp_api
    cert = _issue(api)
    _, issuing = _chain(api)
    der = _request(cert, issuing)
    assert _answer(_post(api, der)).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert [r[2] for r in _rows(api)] == ["good"]
    api.clock.now += timedelta(minutes=1)
    with api.runtime.transaction() as session:
        row = get_certificate(session, format(cert.serial_number, "x"))
        revoke(
            session, row, reason="keyCompromise", now=api.clock.now, who=Actor("test", officer=True)
        )
    assert [r[2] for r in _rows(api)] == ["good"]  # nothing re-signed it

    answer = _answer(_post(api, der))

    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise
    assert [r[2] for r in _rows(api)] == ["revoked"]

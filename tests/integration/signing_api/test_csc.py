"""The CSC API for the portal: holder-only activation, SADs, per-role enforcement (issue #5).

Real database (SQLite and PostgreSQL), real SoftHSM: the TOTP codes are computed here from the
``otpauth://`` URI the holder received, as an authenticator app would; the token computes them
on the server side. Every refusal checks that no signature was produced (no evidence row, and
the journal has no ``csc.signature.*`` entry: ``_signatures`` checks that the journal lists
exactly the hashes of the evidence rows).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from cryptography.hazmat.primitives.hashes import SHA256 as Sha256
from sqlalchemy import func, select

from db import AuditEntry
from signing_api.cloud import CloudSignature
from tests.ca_fixtures import CA_NOW, SUBSCRIBER, CaApi, register
from tests.integration.ca.test_issuance import _paid_first

pytestmark = [pytest.mark.hsm, pytest.mark.db]

INN = SUBSCRIBER["inn"]
PIN = "482913"
SHA256 = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
RSA_SHA256 = "1.2.840.113549.1.1.11"


def totp(uri: str, at: datetime, offset: int = 0) -> str:
    """RFC 6238 code for the seed in ``uri`` at ``at`` (30 s steps, 6 digits, SHA-1)."""
    query = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
    secret = query["secret"][0]
    seed = base64.b32decode(secret + "=" * (-len(secret) % 8))
    step = int(at.timestamp()) // 30 + offset
    mac = hmac.digest(seed, step.to_bytes(8, "big"), "sha1")
    start = mac[-1] & 0x0F
    return f"{(int.from_bytes(mac[start : start + 4], 'big') & 0x7FFFFFFF) % 10**6:06d}"


class Holder:
    """A holder with a cloud certificate and its authenticator."""

    def __init__(self, api: CaApi, holder: int, role: str = "head", key_spec: str | None = None):
        body: dict[str, Any] = {"holder_id": holder, "role": role, "storage": "cloud"}
        if key_spec:
            body["key_spec"] = key_spec
        done = api.post("/api/v1/certificates", body, who="portal")
        assert done.status_code == 201, done.json
        self.api, self.id, self.serial = api, holder, done.json["serial"]
        self.uri: str = api.activate(self.serial, PIN)
        self.cert = x509.load_pem_x509_certificate(done.json["certificate_pem"].encode())
        self.step = 0

    def otp(self) -> str:
        """The next unused code (each code is accepted once: move the clock a step)."""
        self.api.clock.now += timedelta(seconds=30)
        return totp(self.uri, self.api.clock.now)


def _csc(api: CaApi, method: str, body: dict[str, Any], who: str | None = "portal") -> Any:
    return api.post(f"/csc/v1/{method}", body, who=who)


def _error(response: Any, code: str, status: int = 400) -> str:
    assert response.status_code == status, response.json
    assert response.json["error"] == code, response.json
    return str(response.json["error_description"])


def _hash(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _client_data(inn: str = INN, role: str = "head") -> str:
    return json.dumps({"inn": inn, "role": role, "userIP": "203.0.113.7"})


def _authorize(api: CaApi, h: Holder, hashes: list[str], who: str = "portal", **over: Any) -> Any:
    body = {
        "credentialID": h.serial,
        "numSignatures": len(hashes),
        "hash": hashes,
        "PIN": PIN,
        "OTP": h.otp(),
        "clientData": _client_data(),
    } | over
    return _csc(api, "credentials/authorize", body, who)


def _sign(api: CaApi, h: Holder, sad: str, hashes: list[str], who: str = "portal") -> Any:
    body = {
        "credentialID": h.serial,
        "SAD": sad,
        "hash": hashes,
        "hashAlgo": SHA256,
        "signAlgo": ECDSA_SHA256,
    }
    return _csc(api, "signatures/signHash", body, who)


def _signatures(api: CaApi) -> int:
    """Signatures produced: the evidence rows, which the journal's ``csc.signature.*`` entries
    (one per signing call, listing every hash) must name exactly: a refusal leaves neither."""
    with api.runtime.transaction() as session:
        rows = sorted(session.scalars(select(CloudSignature.document_hash)))
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action.startswith("csc.signature."))
        ).all()
        journalled = sorted(h for e in entries for h in e.details_dict()["hashes"])
    assert journalled == rows, (journalled, rows)
    assert len(entries) <= len(rows)
    return len(rows)


def _setup(api: CaApi) -> Holder:
    holder = register(api)
    _paid_first(api, holder)  # the payment account pays the first; the next ones the balance
    api.pay(INN, 100_000_00)
    return Holder(api, holder)


def test_info_list_and_credential_info(ca_api: CaApi) -> None:
    h = _setup(ca_api)
    info = _csc(ca_api, "info", {}).json
    assert info["specs"] == "1.0.4.0" and "signatures/signHash" in info["methods"]
    listed = _csc(ca_api, "credentials/list", {"userID": str(h.id)}).json
    assert h.serial in listed["credentialIDs"]
    shown = _csc(
        ca_api,
        "credentials/info",
        {"credentialID": h.serial, "certificates": "chain", "certInfo": True},
    ).json
    assert shown["authMode"] == "explicit" and shown["SCAL"] == "2"
    assert shown["PIN"]["presence"] == "true" and shown["OTP"]["presence"] == "true"
    assert shown["key"]["status"] == "enabled" and ECDSA_SHA256 in shown["key"]["algo"]
    assert shown["cert"]["status"] == "valid" and len(shown["cert"]["certificates"]) == 3
    first = x509.load_der_x509_certificate(base64.b64decode(shown["cert"]["certificates"][0]))
    assert first == h.cert  # end-entity first
    # Another portal sees nothing of this company.
    _error(_csc(ca_api, "credentials/list", {"userID": str(h.id)}, "portal_b"), "invalid_request")
    _error(
        _csc(ca_api, "credentials/info", {"credentialID": h.serial}, "portal_b"), "invalid_request"
    )
    _error(_csc(ca_api, "credentials/info", {"credentialID": h.serial}, None), "invalid_token", 401)


def test_sign_hash_once_with_pin_and_otp(ca_api: CaApi) -> None:
    h = _setup(ca_api)
    documents = [b"report 1", b"report 2"]
    hashes = [_hash(d) for d in documents]
    granted = _authorize(ca_api, h, hashes)
    assert granted.status_code == 200, granted.json
    assert granted.json["expiresIn"] == 300
    sad = granted.json["SAD"]
    signed = _sign(ca_api, h, sad, hashes)
    assert signed.status_code == 200, signed.json
    public = h.cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for document, signature in zip(documents, signed.json["signatures"], strict=True):
        public.verify(
            base64.b64decode(signature),
            hashlib.sha256(document).digest(),
            ec.ECDSA(utils.Prehashed(Sha256())),
        )
    assert _signatures(ca_api) == 2
    # The SAD is used: a second use produces nothing.
    assert "used" in _error(_sign(ca_api, h, sad, hashes), "invalid_request")
    assert _signatures(ca_api) == 2
    with ca_api.runtime.transaction() as session:
        evidence = session.scalars(select(CloudSignature).order_by(CloudSignature.id)).all()
        assert [e.document_hash for e in evidence] == [
            hashlib.sha256(d).hexdigest() for d in documents
        ]
        assert {(e.inn, e.role, e.end_user_ip) for e in evidence} == {(INN, "head", "203.0.113.7")}


def test_rsa_credential(ca_api: CaApi) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    ca_api.pay(INN, 100_000_00)
    h = Holder(ca_api, holder, key_spec="rsa-2048")
    hashes = [_hash(b"rsa report")]
    sad = _authorize(ca_api, h, hashes).json["SAD"]
    body = {
        "credentialID": h.serial,
        "SAD": sad,
        "hash": hashes,
        "hashAlgo": SHA256,
        "signAlgo": RSA_SHA256,
    }
    signed = _csc(ca_api, "signatures/signHash", body)
    assert signed.status_code == 200, signed.json
    public = h.cert.public_key()
    public.verify(
        base64.b64decode(signed.json["signatures"][0]),  # type: ignore[union-attr]
        hashlib.sha256(b"rsa report").digest(),
        padding.PKCS1v15(),  # type: ignore[call-arg]
        utils.Prehashed(Sha256()),
    )


def test_sad_bindings_refuse_and_sign_nothing(ca_api: CaApi) -> None:
    h = _setup(ca_api)
    other = Holder(
        ca_api, register(ca_api, full_name="Второй Держатель", email="b@test.kg"), role="accountant"
    )
    with ca_api.runtime.transaction() as session:  # portal_b also serves this company now
        from signing_api.clients import ClientSubscriber

        session.add(
            ClientSubscriber(
                client_id=ca_api.client_ids["portal_b"],
                inn=INN,
                granted_at=CA_NOW,
                granted_by="test",
            )
        )
    wanted, forged = [_hash(b"H")], [_hash(b"H-prime")]
    sad = _authorize(ca_api, h, wanted).json["SAD"]
    assert "other hashes" in _error(_sign(ca_api, h, sad, forged), "invalid_request")
    _error(_sign(ca_api, other, sad, wanted), "invalid_request")  # another credential
    _error(_sign(ca_api, h, sad, wanted, who="portal_b"), "invalid_request")  # another client
    _error(_sign(ca_api, h, "not-a-sad", wanted), "invalid_request")
    ca_api.clock.now += timedelta(minutes=5, seconds=1)
    assert "expired" in _error(_sign(ca_api, h, sad, wanted), "invalid_request")
    assert _signatures(ca_api) == 0


def test_wrong_pin_and_otp_lock_the_credential(ca_api: CaApi) -> None:
    h = _setup(ca_api)
    hashes = [_hash(b"x")]
    _error(_authorize(ca_api, h, hashes, PIN="000000"), "invalid_pin")
    _error(_authorize(ca_api, h, hashes, OTP="123456"), "invalid_otp")
    # A code is accepted once: replaying the one just used fails.
    code = h.otp()
    assert _authorize(ca_api, h, hashes, OTP=code).status_code == 200
    _error(_authorize(ca_api, h, hashes, OTP=code), "invalid_otp")
    for _ in range(4):  # with the one above: five wrong attempts in a row
        _error(_authorize(ca_api, h, hashes, PIN="999999"), "invalid_pin")
    locked = _error(_authorize(ca_api, h, hashes), "invalid_request")
    assert "locked" in locked
    ca_api.clock.now += timedelta(minutes=15)
    assert _authorize(ca_api, h, hashes).status_code == 200  # unlocked after 15 minutes
    with ca_api.runtime.transaction() as session:
        journal = " ".join(f"{e.details}" for e in session.scalars(select(AuditEntry)))
        refused = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "csc.authorize.refused")
        )
    assert refused == 8
    assert PIN not in journal and "999999" not in journal and code not in journal
    assert _signatures(ca_api) == 0


def test_roles_companies_and_states(ca_api: CaApi) -> None:
    h = _setup(ca_api)  # a head certificate
    hashes = [_hash(b"r")]
    as_accountant = _authorize(ca_api, h, hashes, clientData=_client_data(role="accountant"))
    assert "does not sign as accountant" in _error(as_accountant, "invalid_request")
    elsewhere = _authorize(ca_api, h, hashes, clientData=_client_data(inn="98765432109876"))
    assert "own company" in _error(elsewhere, "invalid_request")
    _error(_authorize(ca_api, h, hashes, clientData="{}"), "invalid_request")
    # Suspended: nothing signs, even with a SAD obtained before.
    sad = _authorize(ca_api, h, hashes).json["SAD"]
    assert ca_api.post(f"/api/v1/certificates/{h.serial}/suspend", {}).status_code == 200
    assert "suspended" in _error(_sign(ca_api, h, sad, hashes), "invalid_request")
    assert "suspended" in _error(_authorize(ca_api, h, hashes), "invalid_request")
    assert _signatures(ca_api) == 0


def test_complex_certificate_needs_a_power_of_attorney(ca_api: CaApi) -> None:
    holder = register(ca_api, position="Налоговый представитель")
    _paid_first(ca_api, holder)
    ca_api.pay(INN, 100_000_00)
    Holder(ca_api, holder)  # the first certificate (head) used the payment account
    rep = Holder(ca_api, holder, role="complex_5")
    client = INN[:-1] + "9"
    hashes = [_hash(b"c")]
    no_poa = _authorize(ca_api, rep, hashes, clientData=_client_data(inn=client))
    assert "power of attorney" in _error(no_poa, "invalid_request")
    poa = ca_api.post(
        "/api/v1/powers-of-attorney",
        {
            "holder_id": holder,
            "taxpayer_inn": client,
            "taxpayer_name": "ОсОО Клиент",
            "taxpayer_legal_form": "ОсОО",
            "taxpayer_locality": "Ош",
            "document_number": "Д-1",
            "issued_on": "2026-11-01",
            "valid_from": "2026-11-01",
            "valid_until": "2027-11-01",
        },
    )
    assert poa.status_code == 201, poa.json
    granted = _authorize(
        ca_api, rep, hashes, clientData=_client_data(inn=client, role="accountant")
    )
    assert granted.status_code == 200, granted.json
    signed = _sign(ca_api, rep, granted.json["SAD"], hashes)
    assert signed.status_code == 200, signed.json
    public = rep.cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        base64.b64decode(signed.json["signatures"][0]),
        hashlib.sha256(b"c").digest(),
        ec.ECDSA(utils.Prehashed(Sha256())),
    )
    assert _signatures(ca_api) == 1
    with ca_api.runtime.transaction() as session:
        evidence = session.scalars(select(CloudSignature)).one()
        assert (evidence.serial, evidence.inn, evidence.role) == (rep.serial, client, "accountant")
        assert evidence.document_hash == hashlib.sha256(b"c").hexdigest()
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "csc.signature.hash")
        ).one()
        details = entry.details_dict()
        assert (details["serial"], details["inn"], details["role"]) == (
            rep.serial,
            client,
            "accountant",
        )


def test_maintenance_window_answers_503(ca_api: CaApi) -> None:
    h = _setup(ca_api)
    ca_api.clock.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # Friday 18:00 in Bishkek
    refused = _authorize(ca_api, h, [_hash(b"m")])
    _error(refused, "temporarily_unavailable", 503)
    assert refused.headers["Retry-After"] == str(150 * 60 - 30)  # the OTP step moved the clock


def test_cades_signature_with_timestamp_verifies_with_openssl(ca_api: CaApi, tmp_path: Any) -> None:
    import subprocess

    from asn1crypto import cms as asn1_cms
    from cryptography.hazmat.primitives import serialization

    h = _setup(ca_api)
    document = "Налоговая декларация, 4 квартал 2026".encode()
    digest = [_hash(document)]
    sad = _authorize(ca_api, h, digest).json["SAD"]
    forged = {
        "credentialID": h.serial,
        "SAD": sad,
        "document": base64.b64encode(b"another report").decode(),
    }
    refused = ca_api.post("/api/v1/signatures", forged, who="portal")
    assert refused.status_code == 422 and _signatures(ca_api) == 0
    body = {"credentialID": h.serial, "SAD": sad, "document": base64.b64encode(document).decode()}
    start = ca_api.clock.now

    class Ticking:  # the real clock moves while the HSM signs: a second per reading here
        def __call__(self) -> datetime:
            ca_api.clock.now += timedelta(seconds=1)
            return ca_api.clock.now

    ca_api.runtime.clock = Ticking()
    try:
        done = ca_api.post("/api/v1/signatures", body, who="portal")
    finally:
        ca_api.runtime.clock = ca_api.clock
    assert done.status_code == 201, done.json
    evidence = done.json
    assert evidence["kind"] == "cms" and evidence["tst_serial"]
    assert evidence["document_hash"] == hashlib.sha256(document).hexdigest()
    again = ca_api.post("/api/v1/signatures", body, who="portal")
    assert again.status_code == 422  # the SAD is used

    chain = ca_api.get(f"/api/v1/certificates/{h.serial}").json["chain_pem"]
    _issuing, root = x509.load_pem_x509_certificates(chain.encode())
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "chain.pem").write_text(chain)
    (tmp_path / "doc.txt").write_bytes(document)
    der = base64.b64decode(evidence["signature"])
    (tmp_path / "sig.der").write_bytes(der)
    verified = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "sig.der"),
            "-content",
            str(tmp_path / "doc.txt"),
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0 and "Verification successful" in verified.stderr, (
        verified.stderr
    )
    signer = asn1_cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    names = [a["type"].native for a in signer["signed_attrs"]]
    assert {"content_type", "message_digest", "signing_time", "signing_certificate_v2"} <= set(
        names
    )
    token = signer["unsigned_attrs"][0]["values"][0]
    (tmp_path / "token.der").write_bytes(token.dump())
    # Issue #12 finding 12: the time-stamp is taken after the signature, on the TSA's clock.
    signing_time = next(
        a["values"][0].native for a in signer["signed_attrs"] if a["type"].native == "signing_time"
    )
    tst_info = token["content"]["encap_content_info"]["content"].parsed
    gen_time = tst_info["gen_time"].native
    assert start < signing_time < gen_time <= ca_api.clock.now, (signing_time, gen_time)
    imprint = hashlib.sha256(signer["signature"].native).hexdigest()
    stamped = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-token_in",
            "-in",
            str(tmp_path / "token.der"),
            "-digest",
            imprint,
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-untrusted",
            str(tmp_path / "chain.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Verification: OK" in stamped.stdout, stamped.stdout + stamped.stderr

    shown = ca_api.get(f"/api/v1/signatures/{evidence['id']}", who="portal")
    assert shown.status_code == 200 and shown.json["sad_id"] == evidence["sad_id"]
    assert ca_api.get(f"/api/v1/signatures/{evidence['id']}").status_code == 200  # officer
    assert ca_api.get(f"/api/v1/signatures/{evidence['id']}", who="portal_b").status_code == 404


def test_evidence_is_append_only(ca_api: CaApi) -> None:
    import pytest
    from sqlalchemy import update
    from sqlalchemy.exc import DBAPIError

    h = _setup(ca_api)
    hashes = [_hash(b"kept")]
    assert _sign(ca_api, h, _authorize(ca_api, h, hashes).json["SAD"], hashes).status_code == 200
    with pytest.raises(DBAPIError), ca_api.runtime.transaction() as session:
        session.execute(update(CloudSignature).values(inn="00000000000000"))


def test_csc_timestamp(ca_api: CaApi) -> None:
    from asn1crypto import cms as asn1_cms

    _setup(ca_api)
    digest = hashlib.sha256(b"stamp me").digest()
    body = {"hash": base64.b64encode(digest).decode(), "hashAlgo": SHA256, "nonce": "0a1b"}
    done = _csc(ca_api, "signatures/timestamp", body)
    assert done.status_code == 200, done.json
    token = asn1_cms.ContentInfo.load(base64.b64decode(done.json["timestamp"]))
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest
    assert info["nonce"].native == 0x0A1B
    _error(
        _csc(ca_api, "signatures/timestamp", body | {"hashAlgo": "1.3.14.3.2.26"}),
        "invalid_request",
    )


def test_from_abroad_only_from_a_registered_static_ip(ca_api: CaApi) -> None:
    h = _setup(ca_api)
    hashes = [_hash(b"abroad")]
    away = json.dumps({"inn": INN, "role": "head", "userIP": "198.51.100.20", "abroad": True})
    refused = _authorize(ca_api, h, hashes, clientData=away)
    assert "static IP" in _error(refused, "access_denied", 403)
    path = f"/api/v1/subscribers/{INN}/foreign-access"
    entry = {
        "address": "198.51.100.20",
        "location": "Алматы, Казахстан",
        "valid_from": "2026-11-01",
        "valid_until": "2026-12-31",
    }
    bad = ca_api.post(path, entry | {"address": "198.51.100.0/24"})
    assert bad.status_code == 422
    assert ca_api.post(path, entry, who="portal").status_code == 403
    assert ca_api.post(path, entry).status_code == 201
    assert ca_api.get(path, who="portal").json["foreign_access"][0]["address"] == "198.51.100.20"
    assert _authorize(ca_api, h, hashes, clientData=away).status_code == 200
    elsewhere = away.replace("198.51.100.20", "198.51.100.21")
    _error(_authorize(ca_api, h, hashes, clientData=elsewhere), "access_denied", 403)
    assert _signatures(ca_api) == 0


def test_complex_certificate_over_its_company_limit(ca_api: CaApi) -> None:
    holder = register(ca_api, position="Налоговый представитель")
    _paid_first(ca_api, holder)
    ca_api.pay(INN, 100_000_00)
    Holder(ca_api, holder)  # the first certificate (head) used the payment account
    clients = [f"0223456789{n:04d}" for n in range(6)]
    for n, client in enumerate(clients):  # six companies before the complex_5 certificate exists
        made = ca_api.post(
            "/api/v1/powers-of-attorney",
            {
                "holder_id": holder,
                "taxpayer_inn": client,
                "taxpayer_name": f"ОсОО Клиент {n}",
                "taxpayer_legal_form": "ОсОО",
                "taxpayer_locality": "Ош",
                "document_number": f"Д-{n}",
                "issued_on": "2026-11-01",
                "valid_from": "2026-11-01",
                "valid_until": "2027-11-01",
            },
        )
        assert made.status_code == 201, made.json
    rep = Holder(ca_api, holder, role="complex_5")
    over = _authorize(ca_api, rep, [_hash(b"o")], clientData=_client_data(inn=clients[0]))
    assert "at most 5" in _error(over, "invalid_request")
    assert _signatures(ca_api) == 0

"""``crl.check_signature``: the §8 check of a detached CMS signature, on real signatures.

Real database (SQLite and PostgreSQL), real SoftHSM: cloud CAdES-B-T signatures come from
``POST /api/v1/signatures`` (the real signing path, time-stamped by our TSA); RuToken-style
signatures from ``openssl cms -sign`` with a key that never was in the HSM, its certificate
issued from a CSR. ``openssl`` puts the wall clock into the signing-time attribute, so the
RuToken tests move the CA's clock to the wall clock before issuing.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session, sessionmaker

from ca.cms import sign_detached
from ca.hierarchy import active_certificate
from ca.tsa import timestamp_token
from crl import SignatureCheck, Step, check_signature
from tests.ca_fixtures import CaApi, register
from tests.integration.ca.test_issuance import _csr, _issue, _paid_first
from tests.integration.signing_api.test_csc import INN, Holder, _authorize, _hash, _setup

URL = "/api/v1/certificates"
CLAUSES = ("8.2.1", "8.2.2", "8.2.3", "8.2.4", "8.2.5", "8.2.6", "8.2.7")
DOCUMENT = "Отчёт по подоходному налогу, ноябрь 2026".encode()


# --- helpers ---------------------------------------------------------------------------------


def _check(api: CaApi, der: bytes, document: bytes = DOCUMENT, **kw: Any) -> SignatureCheck:
    """The check with the content and with its digest: both forms must say the same."""
    now = kw.pop("now", api.clock.now)
    with api.runtime.transaction() as session:
        by_content = check_signature(session, der, content=document, now=now)
        by_digest = check_signature(session, der, digest=hashlib.sha256(document).digest(), now=now)
    assert by_content == by_digest
    assert tuple(s.clause for s in by_content.steps) == CLAUSES
    assert by_content.ok == (not by_content.problems)
    return by_content


def _failed(check: SignatureCheck) -> set[str]:
    return {s.clause for s in check.steps if not s.ok}


def _cloud_signature(api: CaApi, document: bytes = DOCUMENT) -> tuple[bytes, Holder]:
    """A CAdES-B-T signature from ``POST /api/v1/signatures`` with a new head's cloud key."""
    h = _setup(api)
    sad = _authorize(api, h, [_hash(document)]).json["SAD"]
    body = {"credentialID": h.serial, "SAD": sad, "document": base64.b64encode(document).decode()}
    done = api.post("/api/v1/signatures", body, who="portal")
    assert done.status_code == 201, done.json
    return base64.b64decode(done.json["signature"]), h


def _token(der: bytes) -> Any:
    signer = asn1_cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    return signer["unsigned_attrs"][0]["values"][0]


def _rutoken(api: CaApi) -> tuple[dict[str, Any], ec.EllipticCurvePrivateKey]:
    """A head's RuToken certificate (key made here, never in the HSM) issued from its CSR."""
    holder = register(api)
    _paid_first(api, holder)
    _issue(api, holder)  # the first certificate is a cloud one
    api.pay(INN, 100_000_00)
    key = ec.generate_private_key(ec.SECP256R1())
    made = api.post(
        URL, {"holder_id": holder, "role": "head", "storage": "rutoken", "csr_pem": _csr(key)}
    )
    assert made.status_code == 201, made.json
    return made.json, key


def _openssl_sign(tmp_path: Path, document: bytes, cert_pem: str, key: Any, *extra: str) -> bytes:
    (tmp_path / "doc.bin").write_bytes(document)
    (tmp_path / "cert.pem").write_text(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signed = subprocess.run(
        [
            *("openssl", "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER"),
            *("-in", str(tmp_path / "doc.bin"), "-signer", str(tmp_path / "cert.pem")),
            *("-inkey", str(tmp_path / "key.pem"), *extra),
        ],
        capture_output=True,
        check=False,
    )
    assert signed.returncode == 0, signed.stderr
    return signed.stdout


def _change(api: CaApi, serial: str, action: str, **body: str) -> datetime:
    """Suspend, resume or revoke ``serial`` an hour on; the moment it happened."""
    api.clock.now += timedelta(hours=1)
    done = api.post(f"{URL}/{serial}/{action}", body)
    assert done.status_code == 200, done.json
    return api.clock.now


def _wall_clock(api: CaApi) -> None:
    """openssl signs with the wall clock: the CA's clock starts a minute before it."""
    api.clock.now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


# --- cloud CAdES-B-T -------------------------------------------------------------------------


@pytest.mark.hsm
@pytest.mark.db
def test_cloud_cades_b_t_signature_is_ok_at_its_time_stamp(ca_api: CaApi) -> None:
    der, h = _cloud_signature(ca_api)
    check = _check(ca_api, der)
    assert check.ok, check.problems
    assert all(s.ok for s in check.steps) and check.problems == ()
    info = _token(der)["content"]["encap_content_info"]["content"].parsed
    assert check.time_source == "signature-time-stamp"
    assert check.signed_at == info["gen_time"].native
    assert check.tst_serial == info["serial_number"].native
    assert check.claimed_signing_time is not None
    assert check.claimed_signing_time <= check.signed_at
    assert check.serial == int(h.serial, 16) == h.cert.serial_number
    with ca_api.runtime.transaction() as session:
        from ca.models import Certificate

        row = session.query(Certificate).filter_by(serial=h.serial).one()
        assert (check.certificate_id, check.holder_id) == (row.id, row.holder_id)
    assert (check.subscriber_inn, check.certificate_role) == (INN, "head")
    assert check.document_sha256 == hashlib.sha256(DOCUMENT).hexdigest()
    assert "time-stamped by our TSA" in check.step("8.2.3").detail
    assert "Root CA" in check.step("8.2.4").detail
    with pytest.raises(FrozenInstanceError):
        check.ok = False  # type: ignore[misc]
    assert isinstance(check.steps[0], Step) and check.step("8.2.5").required is False


@pytest.mark.hsm
@pytest.mark.db
def test_one_byte_changed_fails_the_signature_step(ca_api: CaApi) -> None:
    der, _h = _cloud_signature(ca_api)
    changed = bytearray(DOCUMENT)
    changed[-1] ^= 0x01
    check = _check(ca_api, der, bytes(changed))
    assert not check.ok and _failed(check) == {"8.2.2"}
    assert "message digest mismatch" in check.step("8.2.2").detail
    assert check.problems == (f"§8.2.2 {check.step('8.2.2').detail}",)
    assert check.document_sha256 == hashlib.sha256(bytes(changed)).hexdigest()


@pytest.mark.hsm
@pytest.mark.db
def test_revoked_after_the_time_stamp_still_ok_and_expiry_now_is_informational(
    ca_api: CaApi,
) -> None:
    der, h = _cloud_signature(ca_api)
    revoked_at = _change(ca_api, h.serial, "revoke", reason="keyCompromise")
    check = _check(ca_api, der)
    assert check.ok, check.problems  # §8.3: the signature predates the revocation
    assert check.signed_at < revoked_at
    assert f"revoked later, at {revoked_at.isoformat()}" in check.step("8.2.7").detail

    years_later = h.cert.not_valid_after_utc + timedelta(days=30)
    later = _check(ca_api, der, now=years_later)
    assert later.ok and _failed(later) == {"8.2.5"}  # expired now: informational only
    assert "expired now" in later.step("8.2.5").detail and later.problems == ()


@pytest.mark.hsm
@pytest.mark.db
def test_an_altered_time_stamp_fails_the_signing_time_step(ca_api: CaApi) -> None:
    der, _h = _cloud_signature(ca_api)
    token_signature = _token(der)["content"]["signer_infos"][0]["signature"].native
    at = der.index(token_signature)
    tampered = bytearray(der)
    tampered[at + len(token_signature) - 1] ^= 0x01  # the TSA's ECDSA s value, off by one bit
    check = _check(ca_api, bytes(tampered))
    assert not check.ok and "8.2.3" in _failed(check)
    assert "does not verify with our TSA's key" in check.step("8.2.3").detail
    assert check.step("8.2.2").ok  # the signer's own signature is intact


# --- RuToken, openssl ------------------------------------------------------------------------


@pytest.mark.hsm
@pytest.mark.db
def test_rutoken_signature_by_openssl_is_checked_at_intake(ca_api: CaApi, tmp_path: Path) -> None:
    _wall_clock(ca_api)
    made, key = _rutoken(ca_api)
    serial = made["serial"]
    der = _openssl_sign(tmp_path, DOCUMENT, made["certificate_pem"], key)
    ca_api.clock.now = datetime.now(UTC) + timedelta(seconds=1)
    check = _check(ca_api, der)
    assert check.ok, check.problems
    assert (check.time_source, check.signed_at) == ("intake", ca_api.clock.now)
    assert check.tst_serial is None and check.claimed_signing_time is not None
    assert check.claimed_signing_time <= ca_api.clock.now
    assert check.serial == int(serial, 16) and check.certificate_role == "head"
    assert "no signature-time-stamp" in check.step("8.2.3").detail

    # Without the certificate in the CMS, it is found in our registry by issuer and serial.
    bare = _openssl_sign(tmp_path, DOCUMENT, made["certificate_pem"], key, "-nocerts")
    found = _check(ca_api, bare)
    assert found.ok and "carries no certificate" in found.step("8.2.1").detail

    # Checked long after its certificate expired: at intake, it is expired at signing time.
    not_after = datetime.fromisoformat(made["not_after"])
    expired = _check(ca_api, der, now=not_after + timedelta(days=1))
    assert not expired.ok and _failed(expired) == {"8.2.5", "8.2.6"}
    assert "expired at the signing time" in expired.step("8.2.6").detail

    # A signing time claimed well after the intake time fails §8.2.3.
    early = _check(ca_api, der, now=check.claimed_signing_time - timedelta(minutes=6))
    assert not early.ok and "8.2.3" in _failed(early)
    assert "after the intake time" in early.step("8.2.3").detail


@pytest.mark.hsm
@pytest.mark.db
def test_suspended_or_revoked_before_signing_fails(ca_api: CaApi, tmp_path: Path) -> None:
    _wall_clock(ca_api)
    made, key = _rutoken(ca_api)
    serial = made["serial"]
    suspended_at = _change(ca_api, serial, "suspend")
    der = _openssl_sign(tmp_path, DOCUMENT, made["certificate_pem"], key)
    held = _check(ca_api, der)
    assert not held.ok and _failed(held) == {"8.2.7"}
    assert f"suspended at {suspended_at.isoformat()}" in held.step("8.2.7").detail

    _change(ca_api, serial, "resume")
    assert _check(ca_api, der).ok

    revoked_at = _change(ca_api, serial, "revoke", reason="keyCompromise")
    revoked = _check(ca_api, der)
    assert not revoked.ok and _failed(revoked) == {"8.2.7"}
    assert f"revoked at {revoked_at.isoformat()}" in revoked.step("8.2.7").detail
    assert revoked.problems == (f"§8.2.7 {revoked.step('8.2.7').detail}",)


@pytest.mark.hsm
@pytest.mark.db
def test_time_stamped_after_expiry_fails_validity_at_signing_time(ca_api: CaApi) -> None:
    """A RuToken key's CAdES-B-T from our TSA: the token's time is the signing time."""
    made, key = _rutoken(ca_api)
    cert = x509.load_pem_x509_certificate(made["certificate_pem"].encode())
    moment = cert.not_valid_after_utc + timedelta(days=2)
    rt = ca_api.runtime
    with rt.transaction() as session:
        chain = [active_certificate(session, n) for n in ("issuing", "root")]

        def stamp(imprint: bytes, hash_name: str) -> bytes:
            return timestamp_token(
                session, rt.tsa_signer, imprint, hash_name, now=moment, actor="test"
            )

        der = sign_detached(DOCUMENT, cert, key, chain, signing_time=moment, timestamper=stamp)
    check = _check(ca_api, der, now=moment + timedelta(days=1))
    assert check.time_source == "signature-time-stamp" and check.signed_at == moment
    assert not check.ok and _failed(check) == {"8.2.5", "8.2.6"}
    assert "expired at the signing time" in check.step("8.2.6").detail

    in_time = cert.not_valid_after_utc - timedelta(days=2)
    with rt.transaction() as session:

        def stamp_in_time(imprint: bytes, hash_name: str) -> bytes:
            return timestamp_token(
                session, rt.tsa_signer, imprint, hash_name, now=in_time, actor="test"
            )

        good = sign_detached(
            DOCUMENT, cert, key, chain, signing_time=in_time, timestamper=stamp_in_time
        )
    assert _check(ca_api, good, now=moment + timedelta(days=1)).ok  # made while valid


# --- identification ----------------------------------------------------------------------------


def _foreign_ca(like: x509.Certificate) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Another CA, even with our issuing CA's very name."""
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(like.subject)
        .issuer_name(like.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(like.not_valid_before_utc)
        .not_valid_after(like.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA384())
    )
    return cert, key


def _forged_leaf(
    ours: x509.Certificate, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Our certificate's subject and serial, signed by ``issuer``, for a key of its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(ours.subject)
        .issuer_name(issuer[0].subject)
        .public_key(key.public_key())
        .serial_number(ours.serial_number)
        .not_valid_before(ours.not_valid_before_utc)
        .not_valid_after(ours.not_valid_after_utc)
        .sign(issuer[1], hashes.SHA384())
    )
    return cert, key


@pytest.mark.hsm
@pytest.mark.db
def test_a_certificate_of_another_ca_with_our_serial_fails_identification(
    ca_api: CaApi,
) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    issued = _issue(ca_api, holder)
    ours = x509.load_der_x509_certificate(issued.certificate.der)
    with ca_api.runtime.transaction() as session:
        issuing = active_certificate(session, "issuing")
    foreign = _foreign_ca(issuing)
    forged, key = _forged_leaf(ours, foreign)
    der = sign_detached(DOCUMENT, forged, key, [foreign[0]], signing_time=ca_api.clock.now)
    check = _check(ca_api, der)
    assert not check.ok and _failed(check) == set(CLAUSES) - {"8.2.3"}
    assert "not one this CA issued" in check.step("8.2.1").detail
    assert check.serial == ours.serial_number and check.certificate_id is None
    assert check.subscriber_inn is None and check.holder_id is None
    assert check.step("8.2.4").detail.startswith("not checked")
    assert check.problems == (f"§8.2.1 {check.step('8.2.1').detail}",)  # the cause only

    # Our genuine certificate carried beside the forged one: identified as ours, but the
    # signing-certificate-v2 attribute names the forged one.
    mixed = sign_detached(DOCUMENT, forged, key, [ours, foreign[0]], signing_time=ca_api.clock.now)
    check = _check(ca_api, mixed)
    assert check.step("8.2.1").ok and check.certificate_id == issued.certificate.id
    assert not check.ok and _failed(check) == {"8.2.2"}
    assert "signing-certificate-v2 attribute names another" in check.step("8.2.2").detail


# --- malformed input and wrong calls -----------------------------------------------------------


def _self_signed_cms() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Nobody")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return sign_detached(DOCUMENT, cert, key, signing_time=now)


@pytest.mark.db
def test_malformed_der_is_a_failed_check_with_a_message(
    session_factory: sessionmaker[Session],
) -> None:
    now = datetime.now(UTC)
    stranger = _self_signed_cms()
    cases = {
        b"": "it is empty",
        b"not DER at all": "malformed CMS signature",
        stranger[: len(stranger) // 2]: "malformed CMS signature",
        b"\x30\x03\x02\x01\x01": "malformed CMS signature",
        asn1_cms.ContentInfo({"content_type": "data", "content": b"x"}).dump(): "not a CMS",
    }
    with session_factory() as session:
        for der, message in cases.items():
            check = check_signature(session, der, content=DOCUMENT, now=now)
            assert not check.ok and check.serial is None, der
            assert tuple(s.clause for s in check.steps) == CLAUSES
            assert message in check.step("8.2.1").detail, (der, check.step("8.2.1"))
            assert check.problems == (f"§8.2.1 {check.step('8.2.1').detail}",)
            assert all(s.detail.startswith("not checked") for s in check.steps[1:])
        unknown = check_signature(session, stranger, content=DOCUMENT, now=now)
        assert not unknown.ok and "issued" in unknown.step("8.2.1").detail
        assert unknown.step("8.2.3").ok  # the signing time is read even so

        digest = hashlib.sha256(DOCUMENT).digest()
        with pytest.raises(ValueError, match="exactly one"):
            check_signature(session, stranger, content=DOCUMENT, digest=digest, now=now)
        with pytest.raises(ValueError, match="exactly one"):
            check_signature(session, stranger, now=now)
        with pytest.raises(ValueError, match="SHA-256"):
            check_signature(session, stranger, digest=digest[:31], now=now)
        with pytest.raises(ValueError, match="timezone"):
            check_signature(session, stranger, content=DOCUMENT, now=now.replace(tzinfo=None))


# --- altered signatures ------------------------------------------------------------------------


def _resigned(
    der: bytes, key: ec.EllipticCurvePrivateKey, change: Callable[[list[Any]], Any]
) -> bytes:
    """``der`` with its signed attributes changed by ``change`` and signed again by ``key``."""
    info = asn1_cms.ContentInfo.load(der)
    signer = info["content"]["signer_infos"][0]
    attributes = [a for a in signer["signed_attrs"]]
    attributes = change(attributes) or attributes
    signed_attrs = asn1_cms.CMSAttributes(attributes)
    signer["signed_attrs"] = signed_attrs
    signer["signature"] = key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
    resigned: bytes = info.dump(force=True)
    return resigned


def _replace(name: str, *values: Any) -> Callable[[list[Any]], list[Any]]:
    def change(attributes: list[Any]) -> list[Any]:
        kept = [a for a in attributes if a["type"].native != name]
        return [*kept, asn1_cms.CMSAttribute({"type": name, "values": list(values)})]

    return change


@pytest.mark.hsm
@pytest.mark.db
def test_altered_signatures_fail_the_signature_step(ca_api: CaApi) -> None:
    made, key = _rutoken(ca_api)
    cert = x509.load_pem_x509_certificate(made["certificate_pem"].encode())
    der = sign_detached(DOCUMENT, cert, key, signing_time=ca_api.clock.now)
    assert _check(ca_api, der).ok  # as made; each alteration below is signed again
    other = hashlib.sha256(b"another document").digest()
    digest = hashlib.sha256(DOCUMENT).digest()
    cases = {
        "the content-type attribute is not id-data": _replace("content_type", "tst_info"),
        "message digest mismatch": _replace("message_digest", other),
        "message-digest must have exactly one value": _replace("message_digest", digest, other),
        "the signed attribute content-type is missing": lambda attributes: [
            a for a in attributes if a["type"].native != "content_type"
        ],
    }
    for message, change in cases.items():
        check = _check(ca_api, _resigned(der, key, change))
        assert _failed(check) == {"8.2.2"} and message in check.step("8.2.2").detail, check

    # The signature value itself altered, nothing signed again.
    info = asn1_cms.ContentInfo.load(der)
    signer = info["content"]["signer_infos"][0]
    value = bytearray(signer["signature"].native)
    value[-1] ^= 0x01
    signer["signature"] = bytes(value)
    check = _check(ca_api, info.dump(force=True))
    assert _failed(check) == {"8.2.2"} and "bad signature" in check.step("8.2.2").detail

    # A content carried inside: a detached signature is expected.
    attached = asn1_cms.ContentInfo.load(der)
    attached["content"]["encap_content_info"]["content"] = DOCUMENT
    check = _check(ca_api, attached.dump(force=True))
    assert "carries its own content" in check.step("8.2.2").detail


@pytest.mark.hsm
@pytest.mark.db
def test_a_time_stamp_of_another_signature_fails_the_signing_time_step(ca_api: CaApi) -> None:
    made, key = _rutoken(ca_api)
    cert = x509.load_pem_x509_certificate(made["certificate_pem"].encode())
    rt = ca_api.runtime
    with rt.transaction() as session:

        def stamp(imprint: bytes, hash_name: str) -> bytes:
            return timestamp_token(
                session, rt.tsa_signer, imprint, hash_name, now=ca_api.clock.now, actor="test"
            )

        first = sign_detached(DOCUMENT, cert, key, signing_time=ca_api.clock.now, timestamper=stamp)
        second = sign_detached(
            DOCUMENT, cert, key, signing_time=ca_api.clock.now, timestamper=stamp
        )
    assert _check(ca_api, first).time_source == "signature-time-stamp"
    swapped = asn1_cms.ContentInfo.load(first)
    swapped["content"]["signer_infos"][0]["unsigned_attrs"] = asn1_cms.ContentInfo.load(second)[
        "content"
    ]["signer_infos"][0]["unsigned_attrs"]
    check = _check(ca_api, swapped.dump(force=True))
    assert not check.ok and _failed(check) == {"8.2.3", "8.2.6", "8.2.7"}
    assert "not over this signature's value" in check.step("8.2.3").detail
    assert check.step("8.2.6").detail.startswith("not checked")

"""Encapsulated (attached) CMS signatures: ``sign_encapsulated`` and ``verify_encapsulated``.

No HSM, no database: software keys and the tiny CA of ``test_cms``. What we make is checked by
``openssl cms -verify``; what others make (pyca's ``PKCS7SignatureBuilder``, as an agency's
receipt software does, and ``openssl cms -sign -nodetach``) goes through our verifier.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from ca.cms import (
    CMSInvalid,
    sign_detached,
    sign_detached_digest,
    sign_encapsulated,
    verify_detached,
    verify_encapsulated,
)
from tests.pki_tools import write_pem
from tests.unit.ca.test_cms import make_ca, make_key, make_leaf, openssl_cms_sign

SIGNED_AT = datetime(2026, 12, 3, 9, 15, 42, tzinfo=UTC)
CONTENT = (
    b'{"agency":"tax","document_sha256":"' + b"ab" * 32 + b'","report_id":"r-1",'
    b'"type":"dispatch-confirmation"}'
)
Pair = tuple[x509.Certificate, Any]


@pytest.fixture(scope="module")
def ca() -> Pair:
    return make_ca()


@pytest.fixture(scope="module")
def signer(ca: Pair) -> Pair:
    key = make_key("ec-p256")
    return make_leaf(ca, key.public_key(), "Tamga dispatch confirmations"), key


@pytest.fixture(scope="module")
def signature(ca: Pair, signer: Pair) -> bytes:
    return sign_encapsulated(CONTENT, signer[0], signer[1], [ca[0]], signing_time=SIGNED_AT)


def _signed_data(der: bytes) -> Any:
    return cms.ContentInfo.load(der, strict=True)["content"]


def _pyca(content: bytes, signer: Pair, options: list[pkcs7.PKCS7Options]) -> bytes:
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(signer[0], signer[1], hashes.SHA256())
        .sign(serialization.Encoding.DER, options)
    )


def openssl_cms_print(tmp_path: Path, signature: bytes, *ca_certs: x509.Certificate) -> bytes:
    """``openssl cms -verify -inform DER -CAfile ... -purpose any``: the content it prints."""
    (tmp_path / "attached.der").write_bytes(signature)
    write_pem(tmp_path / "cafile.pem", *ca_certs)
    result = subprocess.run(
        [
            *("openssl", "cms", "-verify", "-inform", "DER", "-binary"),
            *("-in", str(tmp_path / "attached.der"), "-CAfile", str(tmp_path / "cafile.pem")),
            *("-purpose", "any"),
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, f"openssl cms -verify refused: {result.stderr.decode()}"
    assert b"Verification successful" in result.stderr
    return result.stdout


# --- what we make ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "digest", "signature_algorithm"),
    [
        ("ec-p256", "sha256", "sha256_ecdsa"),
        ("ec-p384", "sha384", "sha384_ecdsa"),
        ("rsa-2048", "sha256", "sha256_rsa"),
    ],
)
def test_round_trip_with_us_and_openssl(
    tmp_path: Path, ca: Pair, kind: str, digest: str, signature_algorithm: str
) -> None:
    key = make_key(kind)
    cert = make_leaf(ca, key.public_key())
    der = sign_encapsulated(CONTENT, cert, key, [ca[0]], signing_time=SIGNED_AT)

    assert verify_encapsulated(der, cert) == (CONTENT, SIGNED_AT)
    assert openssl_cms_print(tmp_path, der, ca[0]) == CONTENT

    signed_data = _signed_data(der)
    assert signed_data["version"].native == "v1"
    encap = signed_data["encap_content_info"]
    assert encap["content_type"].native == "data"
    assert encap["content"].native == CONTENT  # attached
    certs = {c.chosen.dump() for c in signed_data["certificates"]}
    assert certs == {c.public_bytes(serialization.Encoding.DER) for c in (cert, ca[0])}
    info = signed_data["signer_infos"][0]
    assert info["sid"].name == "issuer_and_serial_number"
    assert info["digest_algorithm"]["algorithm"].native == digest
    assert info["signature_algorithm"]["algorithm"].native == signature_algorithm
    attributes = {a["type"].native: a["values"][0] for a in info["signed_attrs"]}
    assert set(attributes) == {
        "content_type",
        "message_digest",
        "signing_time",
        "signing_certificate_v2",
    }
    assert attributes["message_digest"].native == hashlib.new(digest, CONTENT).digest()
    assert info["unsigned_attrs"].native is None


def test_same_signer_info_as_detached(signer: Pair, signature: bytes) -> None:
    """Encapsulated and detached differ only in the eContent: the SignerInfo is byte-equal
    (ECDSA is randomised, so the signature value is left out of the comparison)."""
    detached = sign_detached(CONTENT, signer[0], signer[1], signing_time=SIGNED_AT)
    ours, theirs = (_signed_data(d)["signer_infos"][0] for d in (signature, detached))
    for field in ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm"):
        assert ours[field].dump() == theirs[field].dump(), field
    assert verify_detached(CONTENT, detached, signer[0]) == SIGNED_AT


def test_signature_time_stamp_is_an_unsigned_attribute(ca: Pair, signer: Pair) -> None:
    asked: list[tuple[bytes, str]] = []
    token = cms.ContentInfo({"content_type": "data", "content": b"a token"}).dump()

    def stamp(digest: bytes, hash_name: str) -> bytes:
        asked.append((digest, hash_name))
        return token

    der = sign_encapsulated(
        CONTENT, signer[0], signer[1], signing_time=SIGNED_AT, timestamper=stamp
    )
    info = _signed_data(der)["signer_infos"][0]
    value = info["signature"].native
    assert asked == [(hashlib.sha256(value).digest(), "sha256")]
    (attribute,) = info["unsigned_attrs"]
    assert attribute["type"].native == "signature_time_stamp_token"
    assert attribute["values"][0].dump() == token
    assert verify_encapsulated(der, signer[0]) == (CONTENT, SIGNED_AT)
    # The detached signature time-stamps the same way (one shared code path).
    detached = sign_detached_digest(
        hashlib.sha256(CONTENT).digest(),
        signer[0],
        signer[1],
        signing_time=SIGNED_AT,
        timestamper=stamp,
    )
    attrs = _signed_data(detached)["signer_infos"][0]["unsigned_attrs"]
    assert attrs[0]["values"][0].dump() == token


def test_empty_content_round_trips(signer: Pair) -> None:
    der = sign_encapsulated(b"", signer[0], signer[1], signing_time=SIGNED_AT)
    assert verify_encapsulated(der, signer[0]) == (b"", SIGNED_AT)


def test_signing_is_refused_for_naive_time_or_a_foreign_key(signer: Pair) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_encapsulated(CONTENT, signer[0], signer[1], signing_time=datetime(2026, 12, 3))
    with pytest.raises(ValueError, match="does not match"):
        sign_encapsulated(CONTENT, signer[0], make_key("ec-p256"), signing_time=SIGNED_AT)


def test_pem_is_accepted(signature: bytes, signer: Pair) -> None:
    from asn1crypto import pem

    assert verify_encapsulated(pem.armor("CMS", signature), signer[0]) == (CONTENT, SIGNED_AT)


# --- what others make: an agency's receipts ------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [[], [pkcs7.PKCS7Options.NoCapabilities], [pkcs7.PKCS7Options.Binary]],
    ids=["default", "no_capabilities", "binary"],
)
@pytest.mark.parametrize("kind", ["ec-p256", "rsa-2048"])
def test_pyca_attached_signature_verifies(
    ca: Pair, kind: str, options: list[pkcs7.PKCS7Options]
) -> None:
    key = make_key(kind)
    cert = make_leaf(ca, key.public_key(), "Agency receipts")
    before = datetime.now(UTC).replace(microsecond=0)
    der = _pyca(CONTENT, (cert, key), options)
    attribute_types = {
        a["type"].native for a in _signed_data(der)["signer_infos"][0]["signed_attrs"]
    }
    assert "signing_certificate_v2" not in attribute_types
    assert ("smime_capabilities" in attribute_types) is (
        pkcs7.PKCS7Options.NoCapabilities not in options
    )
    content, signed_at = verify_encapsulated(der, cert)
    assert content == CONTENT  # no newline in it: S/MIME canonicalisation changes nothing
    assert before <= signed_at <= datetime.now(UTC)


def test_pyca_canonicalises_newlines_and_we_return_what_was_signed(signer: Pair) -> None:
    """Without ``Binary``, pyca signs the text with CRLF line ends: the eContent is that."""
    der = _pyca(b'{"a":"b"}\n', signer, [])
    assert verify_encapsulated(der, signer[0])[0] == b'{"a":"b"}\r\n'


def test_openssl_attached_subject_key_identifier_signature_verifies(
    tmp_path: Path, ca: Pair, signer: Pair
) -> None:
    der = openssl_cms_sign(tmp_path, CONTENT, signer[0], signer[1], "-nodetach", "-keyid")
    assert _signed_data(der)["signer_infos"][0]["sid"].name == "subject_key_identifier"
    assert verify_encapsulated(der, signer[0])[0] == CONTENT
    with pytest.raises(CMSInvalid, match="wrong signer"):
        verify_encapsulated(der, make_leaf(ca, make_key("ec-p256").public_key()))


# --- what must be refused --------------------------------------------------------------------


def test_another_certificate_is_refused(ca: Pair, signer: Pair, signature: bytes) -> None:
    other = make_leaf(ca, make_key("ec-p256").public_key())
    with pytest.raises(CMSInvalid, match="wrong signer"):
        verify_encapsulated(signature, other)
    with pytest.raises(CMSInvalid, match="wrong signer"):
        verify_encapsulated(signature, ca[0])
    # Same issuer and serial, another key: our signing-certificate-v2 tells them apart ...
    twin = make_leaf(ca, make_key("ec-p256").public_key(), serial=signer[0].serial_number)
    with pytest.raises(CMSInvalid, match="signing-certificate-v2"):
        verify_encapsulated(signature, twin)
    # ... and without it (pyca's receipts) the signature does not verify with the twin's key.
    with pytest.raises(CMSInvalid, match="bad signature"):
        verify_encapsulated(_pyca(CONTENT, signer, []), twin)


@pytest.mark.parametrize("maker", ["ours", "pyca"])
def test_changed_content_is_refused(
    tmp_path: Path, ca: Pair, signer: Pair, signature: bytes, maker: str
) -> None:
    der = signature if maker == "ours" else _pyca(CONTENT, signer, [])
    assert der.count(b'"report_id":"r-1"') == 1
    changed = der.replace(b'"report_id":"r-1"', b'"report_id":"r-2"')
    with pytest.raises(CMSInvalid, match="digest mismatch"):
        verify_encapsulated(changed, signer[0])
    (tmp_path / "changed.der").write_bytes(changed)
    write_pem(tmp_path / "ca.pem", ca[0])
    refused = subprocess.run(
        [
            *("openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "changed.der")),
            *("-CAfile", str(tmp_path / "ca.pem"), "-purpose", "any", "-out", os.devnull),
        ],
        capture_output=True,
        check=False,
    )
    assert refused.returncode != 0


def test_detached_signature_is_refused(signer: Pair) -> None:
    detached = sign_detached(CONTENT, signer[0], signer[1], signing_time=SIGNED_AT)
    with pytest.raises(CMSInvalid, match="detached"):
        verify_encapsulated(detached, signer[0])
    pyca_detached = _pyca(CONTENT, signer, [pkcs7.PKCS7Options.DetachedSignature])
    with pytest.raises(CMSInvalid, match="detached"):
        verify_encapsulated(pyca_detached, signer[0])


def test_verify_detached_still_refuses_an_attached_one(signature: bytes, signer: Pair) -> None:
    with pytest.raises(CMSInvalid, match="not detached"):
        verify_detached(CONTENT, signature, signer[0])


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"garbage",
        b"\x30\x03\x02\x01\x01",
        b"-----BEGIN CMS-----\n!!\n-----END CMS-----\n",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
    ],
)
def test_garbage_is_refused(blob: bytes, signer: Pair) -> None:
    with pytest.raises(CMSInvalid):
        verify_encapsulated(blob, signer[0])


def test_truncated_padded_and_other_structures_are_refused(signature: bytes, signer: Pair) -> None:
    for blob in (signature[:-10], signature[: len(signature) // 2], signature + b"\x00"):
        with pytest.raises(CMSInvalid, match="malformed"):
            verify_encapsulated(blob, signer[0])
    with pytest.raises(CMSInvalid):
        verify_encapsulated(signer[0].public_bytes(serialization.Encoding.DER), signer[0])
    # eContentType other than id-data (a time-stamp token's, say) is not a receipt.
    content_info = cms.ContentInfo.load(signature)
    content_info["content"]["encap_content_info"] = {
        "content_type": "tst_info",
        "content": core.ParsableOctetString(CONTENT),
    }
    with pytest.raises(CMSInvalid, match="not id-data"):
        verify_encapsulated(content_info.dump(force=True), signer[0])


def test_a_signer_without_signed_attributes_is_refused(tmp_path: Path, signer: Pair) -> None:
    der = openssl_cms_sign(tmp_path, CONTENT, signer[0], signer[1], "-nodetach", "-noattr")
    with pytest.raises(CMSInvalid, match="no signed attributes"):
        verify_encapsulated(der, signer[0])


def test_subject_key_identifier_names_the_signer(signature: bytes, signer: Pair) -> None:
    content_info = cms.ContentInfo.load(signature)
    info = content_info["content"]["signer_infos"][0]
    ski = signer[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    info["sid"] = cms.SignerIdentifier({"subject_key_identifier": ski})
    by_ski = content_info.dump(force=True)
    assert verify_encapsulated(by_ski, signer[0]) == (CONTENT, SIGNED_AT)
    info["sid"] = cms.SignerIdentifier({"subject_key_identifier": b"\x01" * 20})
    with pytest.raises(CMSInvalid, match="wrong signer"):
        verify_encapsulated(content_info.dump(force=True), signer[0])

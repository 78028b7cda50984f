"""Detached CMS signatures (ca/cms.py) and the renewal request text (ca/renewal_text.py).

No HSM, no database: software keys made by pyca/cryptography and a tiny CA made here. Our
signatures are checked with ``openssl cms -verify``, and ours verifies openssl's.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from ca.cms import CMSInvalid, sign_detached, verify_detached
from ca.errors import InvalidField
from ca.renewal_text import REQUISITE_LABELS, parse_requisites, renewal_request_text
from tests.pki_tools import write_pem

SIGNED_AT = datetime(2026, 3, 22, 10, 30, 15, tzinfo=UTC)
CONTENT = "ЗАЯВКА НА ПРОДЛЕНИЕ ЭЦП\nтекст заявки\r\n\x00 binary-safe\n".encode()


# --- a tiny PKI: a CA and leaves, all software keys ----------------------------------------


def make_key(kind: str) -> Any:
    """A fresh software private key: ``ec-p256``, ``ec-p384`` or ``rsa-2048``."""
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    assert kind == "rsa-2048"
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tamga test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca() -> tuple[x509.Certificate, Any]:
    """A self-signed EC P-256 CA certificate and its key, valid around now."""
    key = make_key("ec-p256")
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Tamga test CA"))
        .issuer_name(_name("Tamga test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(
    ca: tuple[x509.Certificate, Any],
    public_key: Any,
    common_name: str = "Проверкина Проверка",
    serial: int | None = None,
) -> x509.Certificate:
    """A signing certificate for ``public_key`` issued by ``ca``."""
    ca_cert, ca_key = ca
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=20))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def openssl_cms_verify(
    tmp_path: Path, content: bytes, signature: bytes, ca_cert: x509.Certificate
) -> subprocess.CompletedProcess[str]:
    """Run ``openssl cms -verify`` on a detached DER signature; the caller checks the result."""
    (tmp_path / "content.bin").write_bytes(content)
    (tmp_path / "signature.der").write_bytes(signature)
    write_pem(tmp_path / "ca.pem", ca_cert)
    return subprocess.run(
        [
            *("openssl", "cms", "-verify", "-binary", "-inform", "DER"),
            *("-in", str(tmp_path / "signature.der"), "-content", str(tmp_path / "content.bin")),
            *("-CAfile", str(tmp_path / "ca.pem"), "-purpose", "any", "-out", os.devnull),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def assert_openssl_accepts(
    tmp_path: Path, content: bytes, signature: bytes, ca_cert: x509.Certificate
) -> None:
    result = openssl_cms_verify(tmp_path, content, signature, ca_cert)
    assert result.returncode == 0, f"openssl cms -verify refused: {result.stderr}"
    assert "Verification successful" in result.stderr


def openssl_cms_sign(
    tmp_path: Path, content: bytes, cert: x509.Certificate, key: Any, *extra: str
) -> bytes:
    (tmp_path / "in.bin").write_bytes(content)
    write_pem(tmp_path / "signer.pem", cert)
    (tmp_path / "signer.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out = tmp_path / "openssl.der"
    subprocess.run(
        [
            *("openssl", "cms", "-sign", "-binary", "-outform", "DER", "-md", "sha256"),
            *("-in", str(tmp_path / "in.bin"), "-signer", str(tmp_path / "signer.pem")),
            *("-inkey", str(tmp_path / "signer.key"), "-out", str(out), *extra),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.read_bytes()


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, Any]:
    return make_ca()


@pytest.fixture(scope="module")
def signer(ca: tuple[x509.Certificate, Any]) -> tuple[x509.Certificate, Any]:
    key = make_key("ec-p256")
    return make_leaf(ca, key.public_key()), key


@pytest.fixture(scope="module")
def signature(ca: tuple[x509.Certificate, Any], signer: tuple[x509.Certificate, Any]) -> bytes:
    cert, key = signer
    return sign_detached(CONTENT, cert, key, [ca[0]], signing_time=SIGNED_AT)


def _signer_info(der: bytes) -> Any:
    return cms.ContentInfo.load(der)["content"]["signer_infos"][0]


def _edit_signer_info(der: bytes, field: str, value: Any) -> bytes:
    content_info = cms.ContentInfo.load(der)
    content_info["content"]["signer_infos"][0][field] = value
    reencoded: bytes = content_info.dump(force=True)
    return reencoded


# --- our signatures: structure, our verifier, openssl ----------------------------------------


@pytest.mark.parametrize(
    ("kind", "digest", "signature_algorithm"),
    [
        ("ec-p256", "sha256", "sha256_ecdsa"),
        ("ec-p384", "sha384", "sha384_ecdsa"),
        ("rsa-2048", "sha256", "sha256_rsa"),
    ],
)
def test_sign_detached_verifies_with_us_and_openssl(
    tmp_path: Path,
    ca: tuple[x509.Certificate, Any],
    kind: str,
    digest: str,
    signature_algorithm: str,
) -> None:
    key = make_key(kind)
    cert = make_leaf(ca, key.public_key())
    der = sign_detached(CONTENT, cert, key, [ca[0]], signing_time=SIGNED_AT)

    assert verify_detached(CONTENT, der, cert) == SIGNED_AT
    assert_openssl_accepts(tmp_path, CONTENT, der, ca[0])

    content_info = cms.ContentInfo.load(der, strict=True)
    assert content_info["content_type"].native == "signed_data"
    signed_data = content_info["content"]
    assert signed_data["encap_content_info"]["content_type"].native == "data"
    assert signed_data["encap_content_info"]["content"].native is None  # detached
    certs = {c.chosen.dump() for c in signed_data["certificates"]}  # a SET: DER sorts it
    assert certs == {c.public_bytes(serialization.Encoding.DER) for c in (cert, ca[0])}
    info = signed_data["signer_infos"][0]
    assert info["sid"].name == "issuer_and_serial_number"
    assert info["digest_algorithm"]["algorithm"].native == digest
    assert info["signature_algorithm"]["algorithm"].native == signature_algorithm
    attribute_types = [a["type"].native for a in info["signed_attrs"]]
    assert sorted(attribute_types) == sorted(
        ["content_type", "message_digest", "signing_time", "signing_certificate_v2"]
    )


def test_signing_certificate_v2_names_the_signer(
    signature: bytes, signer: tuple[x509.Certificate, Any]
) -> None:
    attributes = {a["type"].native: a["values"][0] for a in _signer_info(signature)["signed_attrs"]}
    ess = attributes["signing_certificate_v2"]["certs"][0]
    assert ess["hash_algorithm"]["algorithm"].native == "sha256"
    assert ess["cert_hash"].native == signer[0].fingerprint(hashes.SHA256())
    assert ess["issuer_serial"]["serial_number"].native == signer[0].serial_number


def test_signing_time_is_returned_in_utc(signer: tuple[x509.Certificate, Any]) -> None:
    cert, key = signer
    bishkek = datetime(2026, 3, 22, 16, 30, 15, 999_999, tzinfo=timezone(timedelta(hours=6)))
    der = sign_detached(CONTENT, cert, key, signing_time=bishkek)
    found = verify_detached(CONTENT, der, cert)
    assert found == SIGNED_AT and found.tzinfo == UTC  # microseconds dropped (UTCTime)


def test_signing_is_refused_for_naive_time_or_a_foreign_key(
    signer: tuple[x509.Certificate, Any],
) -> None:
    cert, key = signer
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_detached(CONTENT, cert, key, signing_time=datetime(2026, 3, 22))
    with pytest.raises(ValueError, match="does not match"):
        sign_detached(CONTENT, cert, make_key("ec-p256"), signing_time=SIGNED_AT)


def test_pem_signatures_are_accepted(
    signature: bytes, signer: tuple[x509.Certificate, Any]
) -> None:
    for kind in ("CMS", "PKCS7"):
        armored = pkcs7_pem(signature, kind)
        assert verify_detached(CONTENT, armored, signer[0]) == SIGNED_AT
    with pytest.raises(CMSInvalid, match="not a CMS signature"):
        verify_detached(CONTENT, pkcs7_pem(signature, "CERTIFICATE"), signer[0])


def pkcs7_pem(der: bytes, kind: str) -> bytes:
    from asn1crypto import pem

    armored: bytes = pem.armor(kind, der)
    return armored


# --- what must be refused ----------------------------------------------------------------


def test_tampered_content_is_refused(
    tmp_path: Path,
    signature: bytes,
    signer: tuple[x509.Certificate, Any],
    ca: tuple[x509.Certificate, Any],
) -> None:
    with pytest.raises(CMSInvalid, match="digest mismatch"):
        verify_detached(CONTENT + b" ", signature, signer[0])
    assert openssl_cms_verify(tmp_path, CONTENT + b" ", signature, ca[0]).returncode != 0


def test_tampered_signature_value_is_refused(
    signature: bytes, signer: tuple[x509.Certificate, Any]
) -> None:
    value = bytearray(_signer_info(signature)["signature"].native)
    value[-1] ^= 0x01
    tampered = _edit_signer_info(signature, "signature", bytes(value))
    with pytest.raises(CMSInvalid, match="bad signature"):
        verify_detached(CONTENT, tampered, signer[0])


def test_tampered_signed_attribute_is_refused(
    signature: bytes, signer: tuple[x509.Certificate, Any]
) -> None:
    utc_time = b"\x17\x0d260322103015Z"
    assert signature.count(utc_time) == 1
    tampered = signature.replace(utc_time, b"\x17\x0d260322093015Z")
    with pytest.raises(CMSInvalid, match="bad signature"):
        verify_detached(CONTENT, tampered, signer[0])


def test_another_certificate_is_refused(
    signature: bytes, signer: tuple[x509.Certificate, Any], ca: tuple[x509.Certificate, Any]
) -> None:
    other = make_leaf(ca, make_key("ec-p256").public_key())
    with pytest.raises(CMSInvalid, match="wrong signer"):
        verify_detached(CONTENT, signature, other)
    # Same issuer and serial but another key: only signing-certificate-v2 tells them apart.
    twin = make_leaf(ca, make_key("ec-p256").public_key(), serial=signer[0].serial_number)
    with pytest.raises(CMSInvalid, match="signing-certificate-v2"):
        verify_detached(CONTENT, signature, twin)
    with pytest.raises(CMSInvalid, match="wrong signer"):
        verify_detached(CONTENT, signature, ca[0])


def test_attached_signature_is_refused(signer: tuple[x509.Certificate, Any]) -> None:
    cert, key = signer
    attached = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(CONTENT)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [])
    )
    with pytest.raises(CMSInvalid, match="not detached"):
        verify_detached(CONTENT, attached, cert)


@pytest.mark.parametrize(
    "blob",
    [b"", b"garbage", b"\x30\x03\x02\x01\x01", b"-----BEGIN CMS-----\n!!\n-----END CMS-----\n"],
)
def test_garbage_is_refused(blob: bytes, signer: tuple[x509.Certificate, Any]) -> None:
    with pytest.raises(CMSInvalid):
        verify_detached(CONTENT, blob, signer[0])


def test_truncated_and_padded_signatures_are_refused(
    signature: bytes, signer: tuple[x509.Certificate, Any]
) -> None:
    for blob in (signature[:-10], signature[: len(signature) // 2], signature + b"\x00"):
        with pytest.raises(CMSInvalid, match="malformed"):
            verify_detached(CONTENT, blob, signer[0])


def test_a_certificate_is_not_a_signature(signer: tuple[x509.Certificate, Any]) -> None:
    der = signer[0].public_bytes(serialization.Encoding.DER)
    with pytest.raises(CMSInvalid):
        verify_detached(CONTENT, der, signer[0])


def test_unsupported_digest_is_refused(
    signature: bytes, signer: tuple[x509.Certificate, Any]
) -> None:
    weak = _edit_signer_info(signature, "digest_algorithm", {"algorithm": "sha1"})
    with pytest.raises(CMSInvalid, match="unsupported digest algorithm 'sha1'"):
        verify_detached(CONTENT, weak, signer[0])


def test_signature_algorithm_must_match_the_key(
    signature: bytes, signer: tuple[x509.Certificate, Any]
) -> None:
    as_rsa = _edit_signer_info(signature, "signature_algorithm", {"algorithm": "sha256_rsa"})
    with pytest.raises(CMSInvalid, match="not RSA"):
        verify_detached(CONTENT, as_rsa, signer[0])
    pss = _edit_signer_info(signature, "signature_algorithm", {"algorithm": "rsassa_pss"})
    with pytest.raises(CMSInvalid, match="unsupported signature algorithm"):
        verify_detached(CONTENT, pss, signer[0])


# --- openssl's signatures through our verifier ---------------------------------------------


def test_pyca_detached_signature_verifies(signer: tuple[x509.Certificate, Any]) -> None:
    cert, key = signer
    options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(CONTENT)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, options)
    )
    assert verify_detached(CONTENT, der, cert).tzinfo == UTC


@pytest.mark.parametrize("kind", ["ec-p256", "rsa-2048"])
def test_openssl_signature_verifies(
    tmp_path: Path, ca: tuple[x509.Certificate, Any], kind: str
) -> None:
    key = make_key(kind)
    cert = make_leaf(ca, key.public_key())
    before = datetime.now(UTC).replace(microsecond=0)
    der = openssl_cms_sign(tmp_path, CONTENT, cert, key)
    signed_at = verify_detached(CONTENT, der, cert)
    assert before <= signed_at <= datetime.now(UTC)
    with pytest.raises(CMSInvalid, match="digest mismatch"):
        verify_detached(CONTENT[:-1], der, cert)


def test_openssl_subject_key_identifier_signer_verifies(
    tmp_path: Path, signer: tuple[x509.Certificate, Any], ca: tuple[x509.Certificate, Any]
) -> None:
    der = openssl_cms_sign(tmp_path, CONTENT, signer[0], signer[1], "-keyid")
    assert _signer_info(der)["sid"].name == "subject_key_identifier"
    verify_detached(CONTENT, der, signer[0])
    with pytest.raises(CMSInvalid, match="wrong signer"):
        verify_detached(CONTENT, der, make_leaf(ca, make_key("ec-p256").public_key()))


def test_openssl_signature_without_attributes_is_refused(
    tmp_path: Path, signer: tuple[x509.Certificate, Any]
) -> None:
    der = openssl_cms_sign(tmp_path, CONTENT, signer[0], signer[1], "-noattr")
    with pytest.raises(CMSInvalid, match="no signed attributes"):
        verify_detached(CONTENT, der, signer[0])


def test_two_signers_are_refused(
    tmp_path: Path, signer: tuple[x509.Certificate, Any], ca: tuple[x509.Certificate, Any]
) -> None:
    key = make_key("ec-p256")
    second = make_leaf(ca, key.public_key(), "Второй подписант")
    write_pem(tmp_path / "second.pem", second)
    (tmp_path / "second.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    extra = ("-signer", str(tmp_path / "second.pem"), "-inkey", str(tmp_path / "second.key"))
    der = openssl_cms_sign(tmp_path, CONTENT, signer[0], signer[1], *extra)
    with pytest.raises(CMSInvalid, match="exactly one signer, found 2"):
        verify_detached(CONTENT, der, signer[0])


# --- the renewal request text ----------------------------------------------------------------

REQUISITES = {
    "company_inn": "07777777777777",
    "company_name": 'ОсОО "Тест"',
    "locality": "г. Бишкек",
    "full_name": "Проверкина Проверка Проверковна",
    "position": "руководитель",
    "passport_series": "AN",
    "email": "test@example.kg",
}

EXPECTED_TEXT = """\
ЗАЯВКА НА ПРОДЛЕНИЕ ЭЦП

Я, Проверкина Проверка Проверковна, руководитель компании ОсОО "Тест", согласен(на) с тем, \
что моя электронно-цифровая подпись (ЭЦП) будет переизготовлена сроком на 1 календарный год - \
до 22.03.2027 и с баланса компании будет списана стоимость ЭЦП, согласно текущим тарифам на \
услуги ОсОО "DosTek group".

Подтверждаю, что нижеследующие реквизиты остались неизменными и могут быть использованы при \
переизготовлении моего ЭЦП:

ИНН компании: 07777777777777
Наименование компании: ОсОО "Тест"
Населенный пункт: г. Бишкек
ФИО: Проверкина Проверка Проверковна
Должность: руководитель
Серия паспорта: AN
Электронная почта: test@example.kg
"""


def test_renewal_text_renders_exactly() -> None:
    text = renewal_request_text(**REQUISITES, new_not_after=date(2027, 3, 22))
    assert text == EXPECTED_TEXT
    assert text == renewal_request_text(**REQUISITES, new_not_after=date(2027, 3, 22))
    assert "\r" not in text and not text.endswith("\n\n")


def test_requisite_labels_follow_section_18_2_2() -> None:
    assert list(REQUISITE_LABELS) == list(REQUISITES)
    assert list(REQUISITE_LABELS.values()) == [
        "ИНН компании",
        "Наименование компании",
        "Населенный пункт",
        "ФИО",
        "Должность",
        "Серия паспорта",
        "Электронная почта",
    ]


def test_parse_requisites_round_trips() -> None:
    spaced = {**REQUISITES, "company_name": ' ОсОО "Тест": филиал ', "email": "a:b@example.kg"}
    text = renewal_request_text(**spaced, new_not_after=date(2027, 3, 22))
    assert parse_requisites(text) == spaced
    assert list(parse_requisites(text)) == list(REQUISITE_LABELS)


def test_parse_requisites_refuses_missing_or_repeated() -> None:
    text = renewal_request_text(**REQUISITES, new_not_after=date(2027, 3, 22))
    with pytest.raises(InvalidField) as missing:
        parse_requisites(text.replace("Серия паспорта: AN\n", ""))
    assert missing.value.field == "passport_series"
    with pytest.raises(InvalidField) as repeated:
        parse_requisites(text + "ФИО: Другой Человек\n")
    assert repeated.value.field == "full_name"


def test_renewal_text_refuses_line_breaks_in_values() -> None:
    forged = {**REQUISITES, "position": "бухгалтер\nСерия паспорта: XX"}
    with pytest.raises(InvalidField) as refused:
        renewal_request_text(**forged, new_not_after=date(2027, 3, 22))
    assert refused.value.field == "position"
    with pytest.raises(InvalidField):
        renewal_request_text(**{**REQUISITES, "email": ""}, new_not_after=date(2027, 3, 22))


def test_renewal_date_formatting_on_29_february() -> None:
    text = renewal_request_text(**REQUISITES, new_not_after=date(2028, 2, 29))
    assert "сроком на 1 календарный год - до 29.02.2028 и с баланса" in text
    with pytest.raises(InvalidField):
        renewal_request_text(**REQUISITES, new_not_after=datetime(2028, 2, 29, tzinfo=UTC))


def test_signed_renewal_request_round_trip(
    signer: tuple[x509.Certificate, Any], ca: tuple[x509.Certificate, Any], tmp_path: Path
) -> None:
    text = renewal_request_text(**REQUISITES, new_not_after=date(2027, 3, 22))
    der = sign_detached(text.encode(), signer[0], signer[1], [ca[0]], signing_time=SIGNED_AT)
    assert verify_detached(text.encode(), der, signer[0]) == SIGNED_AT
    assert_openssl_accepts(tmp_path, text.encode(), der, ca[0])
    assert parse_requisites(text) == REQUISITES

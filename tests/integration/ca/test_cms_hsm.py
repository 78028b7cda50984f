"""Detached CMS signatures (ca/cms.py) made by keys that live in SoftHSM2.

The signer key is ``HSMToken.private_key(label)``, a foreign pyca key class that forwards
``sign()`` to PKCS#11; its certificate comes from a software CA made by the unit tests' helpers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ca.cms import CMSInvalid, sign_detached, verify_detached
from ca.renewal_text import parse_requisites, renewal_request_text
from hsm import HSMToken
from policies.keys import KeySpec
from tests.unit.ca.test_cms import assert_openssl_accepts, make_ca, make_leaf

pytestmark = pytest.mark.hsm

SIGNED_AT = datetime(2026, 11, 23, 6, 0, 5, tzinfo=UTC)
REQUISITES = {
    "company_inn": "01234567890123",
    "company_name": 'ОсОО "Тест"',
    "locality": "г. Бишкек",
    "full_name": "Проверкина Проверка Проверковна",
    "position": "руководитель",
    "passport_series": "ID",
    "email": "head@example.kg",
}


@pytest.mark.parametrize(("spec_name", "digest"), [("ec-p256", "sha256"), ("rsa-2048", "sha256")])
def test_hsm_key_signs_a_renewal_request(
    tmp_path: Path, cloud_token: HSMToken, key_label: str, spec_name: str, digest: str
) -> None:
    info = cloud_token.generate_key(key_label, KeySpec.parse(spec_name))
    try:
        ca = make_ca()
        cert = make_leaf(ca, info.public_key)
        key = cloud_token.private_key(key_label)
        text = renewal_request_text(**REQUISITES, new_not_after=date(2027, 11, 23)).encode()

        der = sign_detached(text, cert, key, [ca[0]], signing_time=SIGNED_AT)

        assert verify_detached(text, der, cert) == SIGNED_AT
        assert_openssl_accepts(tmp_path, text, der, ca[0])
        assert parse_requisites(text.decode()) == REQUISITES
        with pytest.raises(CMSInvalid, match="digest mismatch"):
            verify_detached(text.replace(b"ID", b"AN"), der, cert)
    finally:
        cloud_token.destroy_key(key_label)


def test_hsm_p384_key_uses_sha384(tmp_path: Path, cloud_token: HSMToken, key_label: str) -> None:
    from asn1crypto import cms

    info = cloud_token.generate_key(key_label, KeySpec.parse("ec-p384"))
    try:
        ca = make_ca()
        cert = make_leaf(ca, info.public_key)
        der = sign_detached(
            b"report", cert, cloud_token.private_key(key_label), signing_time=SIGNED_AT
        )
        signer_info = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
        assert signer_info["digest_algorithm"]["algorithm"].native == "sha384"
        assert signer_info["signature_algorithm"]["algorithm"].native == "sha384_ecdsa"
        assert verify_detached(b"report", der, cert) == SIGNED_AT
        assert_openssl_accepts(tmp_path, b"report", der, ca[0])
    finally:
        cloud_token.destroy_key(key_label)

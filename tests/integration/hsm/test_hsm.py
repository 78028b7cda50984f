"""The HSM layer against real SoftHSM2 through PKCS#11."""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

from hsm import (
    HSMError,
    HSMToken,
    KeyExists,
    KeyNotFound,
    TokenNotFound,
    UnsupportedAlgorithm,
    WrongPIN,
)
from policies.keys import KeySpec, SignatureScheme
from tests.hsm_fixtures import PKCS11_MODULE, TEST_PINS

pytestmark = pytest.mark.hsm

_HASH = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


def _verify(public: object, signature: bytes, data: bytes, scheme: SignatureScheme) -> None:
    h = _HASH[scheme.hash_name]
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, data, ec.ECDSA(h))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        pad = (
            padding.PSS(padding.MGF1(h), padding.PSS.DIGEST_LENGTH)
            if scheme.is_pss
            else padding.PKCS1v15()
        )
        public.verify(signature, data, pad, h)


def _schemes(spec: KeySpec) -> list[SignatureScheme]:
    return [s for s in SignatureScheme if s.key_algorithm is spec.algorithm]


@pytest.mark.parametrize("spec_name", ["rsa-2048", "rsa-3072", "ec-p256", "ec-p384"])
def test_every_scheme_signs_and_verifies(
    ca_token: HSMToken, key_label: str, spec_name: str
) -> None:
    spec = KeySpec.parse(spec_name)
    info = ca_token.generate_key(key_label, spec)
    assert info.public_key.key_size == (spec.rsa_bits or int(spec.curve[2:]))  # type: ignore[index]
    for scheme in _schemes(spec):
        data = f"report body for {scheme.value}".encode()
        signature = ca_token.sign(key_label, data, scheme)
        _verify(ca_token.public_key(key_label), signature, data, scheme)
        with pytest.raises(InvalidSignature):
            _verify(info.public_key, signature, data + b"!", scheme)


def test_rsa_4096_generates_and_signs(cloud_token: HSMToken, key_label: str) -> None:
    info = cloud_token.generate_key(key_label, KeySpec.parse("rsa-4096"))
    sig = cloud_token.sign(key_label, b"x", SignatureScheme.RSA_PSS_SHA512)
    _verify(info.public_key, sig, b"x", SignatureScheme.RSA_PSS_SHA512)
    cloud_token.destroy_key(key_label)


def test_ecdsa_signature_is_der(ca_token: HSMToken, key_label: str) -> None:
    ca_token.generate_key(key_label, KeySpec.parse("ec-p256"))
    sig = ca_token.sign(key_label, b"data", SignatureScheme.ECDSA_SHA256)
    assert sig[0] == 0x30 and sig[1] == len(sig) - 2  # DER SEQUENCE of two INTEGERs


def test_sign_digest_matches_sign(ca_token: HSMToken, key_label: str) -> None:
    info = ca_token.generate_key(key_label, KeySpec.parse("ec-p384"))
    digest = hashes.Hash(hashes.SHA384())
    digest.update(b"payload")
    sig = ca_token.sign_digest(key_label, digest.finalize(), SignatureScheme.ECDSA_SHA384)
    _verify(info.public_key, sig, b"payload", SignatureScheme.ECDSA_SHA384)
    with pytest.raises(HSMError, match="48 bytes"):
        ca_token.sign_digest(key_label, b"short", SignatureScheme.ECDSA_SHA384)


def test_wrong_scheme_for_key_is_refused(ca_token: HSMToken, key_label: str) -> None:
    ca_token.generate_key(key_label, KeySpec.parse("ec-p256"))
    with pytest.raises(UnsupportedAlgorithm):
        ca_token.sign(key_label, b"x", SignatureScheme.RSA_PKCS1_SHA256)


def _raw_private(token_label: str, key_label: str) -> dict[Attribute, object]:
    """Read a key's attributes with python-pkcs11 directly, bypassing our hsm package."""
    from hsm.token import _LOCK

    with _LOCK:
        lib = pkcs11.lib(PKCS11_MODULE)
        token = lib.get_token(token_label=token_label)
        session = token.open()  # this process is already logged in through HSMToken
        try:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_label)
            attrs = {
                a: key[a]
                for a in (
                    Attribute.SENSITIVE,
                    Attribute.EXTRACTABLE,
                    Attribute.NEVER_EXTRACTABLE,
                    Attribute.ALWAYS_SENSITIVE,
                    Attribute.DECRYPT,
                    Attribute.UNWRAP,
                    Attribute.DERIVE,
                    Attribute.SIGN,
                    Attribute.TOKEN,
                    Attribute.PRIVATE,
                    Attribute.ID,
                )
            }
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                key[
                    Attribute.VALUE
                    if key[Attribute.KEY_TYPE] == pkcs11.KeyType.EC
                    else Attribute.PRIVATE_EXPONENT
                ]
            return attrs
        finally:
            session.close()


@pytest.mark.parametrize("spec_name", ["rsa-2048", "ec-p256"])
def test_generated_keys_are_sensitive_and_sign_only(
    ca_token: HSMToken, key_label: str, spec_name: str
) -> None:
    ca_token.generate_key(key_label, KeySpec.parse(spec_name))
    attrs = _raw_private(ca_token.label, key_label)
    assert attrs[Attribute.SENSITIVE] is True
    assert attrs[Attribute.ALWAYS_SENSITIVE] is True
    assert attrs[Attribute.EXTRACTABLE] is False
    assert attrs[Attribute.NEVER_EXTRACTABLE] is True
    assert attrs[Attribute.DECRYPT] is False
    assert attrs[Attribute.UNWRAP] is False
    assert attrs[Attribute.DERIVE] is False
    assert attrs[Attribute.SIGN] is True
    assert attrs[Attribute.TOKEN] is True and attrs[Attribute.PRIVATE] is True
    assert len(attrs[Attribute.ID]) == 16  # type: ignore[arg-type]


def test_adapter_refuses_to_reveal_the_key(ca_token: HSMToken, key_label: str) -> None:
    ca_token.generate_key(key_label, KeySpec.parse("rsa-2048"))
    key = ca_token.private_key(key_label)
    with pytest.raises(HSMError):
        key.private_numbers()
    with pytest.raises(HSMError):
        key.decrypt(b"x" * 256, padding.PKCS1v15())


def test_eight_threads_sign_at_once(
    ca_token: HSMToken, cloud_token: HSMToken, key_label: str
) -> None:
    ec_info = ca_token.generate_key(key_label, KeySpec.parse("ec-p256"))
    rsa_info = cloud_token.generate_key(key_label, KeySpec.parse("rsa-2048"))
    results: list[tuple[bytes, bytes, SignatureScheme]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(25):
                data = f"thread {n} message {i}".encode()
                if n % 2:
                    results.append(
                        (
                            data,
                            ca_token.sign(key_label, data, SignatureScheme.ECDSA_SHA256),
                            SignatureScheme.ECDSA_SHA256,
                        )
                    )
                else:
                    results.append(
                        (
                            data,
                            cloud_token.sign(key_label, data, SignatureScheme.RSA_PSS_SHA256),
                            SignatureScheme.RSA_PSS_SHA256,
                        )
                    )
        except BaseException as ex:
            errors.append(ex)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 200
    for data, sig, scheme in results:
        _verify(
            ec_info.public_key if scheme is SignatureScheme.ECDSA_SHA256 else rsa_info.public_key,
            sig,
            data,
            scheme,
        )


@pytest.mark.parametrize("spec_name", ["ec-p384", "rsa-3072"])
def test_certificate_builder_signs_through_hsm(
    ca_token: HSMToken, key_label: str, spec_name: str
) -> None:
    ca_token.generate_key(key_label, KeySpec.parse(spec_name))
    key = ca_token.private_key(key_label)
    cert = _self_signed(key, hashes.SHA384())
    cert.verify_directly_issued_by(cert)
    if spec_name.startswith("rsa"):
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
        pss_cert = _self_signed(key, hashes.SHA256(), rsa_padding=pss)
        pss_cert.verify_directly_issued_by(pss_cert)


def _self_signed(key: Any, hash_: hashes.SHA256 | hashes.SHA384, **kwargs: Any) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adapter test")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hash_, **kwargs)
    )


def test_key_lifecycle_errors(ca_token: HSMToken, key_label: str) -> None:
    assert not ca_token.has_key(key_label)
    with pytest.raises(KeyNotFound):
        ca_token.sign(key_label, b"x", SignatureScheme.ECDSA_SHA256)
    ca_token.generate_key(key_label, KeySpec.parse("ec-p256"))
    assert key_label in ca_token.key_labels()
    with pytest.raises(KeyExists):
        ca_token.generate_key(key_label, KeySpec.parse("ec-p256"))
    ca_token.destroy_key(key_label)
    assert not ca_token.has_key(key_label)
    with pytest.raises(KeyNotFound):
        ca_token.destroy_key(key_label)
    with pytest.raises(KeyNotFound):
        ca_token.public_key(key_label)


def test_wrong_pin_and_missing_token(ca_token: HSMToken) -> None:
    ca_token.ping()
    with pytest.raises(WrongPIN) as wrong:
        HSMToken(PKCS11_MODULE, ca_token.label, "not-the-pin").ping()
    assert "not-the-pin" not in str(wrong.value)
    with pytest.raises(TokenNotFound):
        HSMToken(PKCS11_MODULE, "no-such-token", "1234").ping()


def test_pin_never_in_repr(ca_token: HSMToken) -> None:
    assert "pin" not in repr(ca_token).lower()


def test_unsupported_key_specs_are_refused() -> None:
    with pytest.raises(ValueError):
        KeySpec.parse("rsa-1024")
    with pytest.raises(ValueError):
        KeySpec.parse("ec-p521")


def test_cached_key_handle_goes_stale_cleanly(ca_token: HSMToken, key_label: str) -> None:
    ca_token.generate_key(key_label, KeySpec.parse("ec-p256"))
    ca_token.sign(key_label, b"x", SignatureScheme.ECDSA_SHA256)  # handle now cached
    other = HSMToken(PKCS11_MODULE, ca_token.label, TEST_PINS[ca_token.label])
    other.destroy_key(key_label)
    with pytest.raises(KeyNotFound):
        ca_token.sign(key_label, b"x", SignatureScheme.ECDSA_SHA256)
    info = other.generate_key(key_label, KeySpec.parse("ec-p256"))  # same label, new key
    _verify(
        info.public_key,
        ca_token.sign(key_label, b"y", SignatureScheme.ECDSA_SHA256),
        b"y",
        SignatureScheme.ECDSA_SHA256,
    )


def _login_and_sign(conf: str, label: str, pin: str, key: str, start: Any) -> str:
    import os

    os.environ["SOFTHSM2_CONF"] = conf
    token = HSMToken(PKCS11_MODULE, label, pin)
    start.wait()
    try:
        token.sign(key, b"login race", SignatureScheme.ECDSA_SHA256)
    except HSMError as ex:
        return f"{type(ex).__name__}: {ex}"
    return "ok"


def test_processes_logging_in_together(ca_token: HSMToken, hsm_home: Path, key_label: str) -> None:
    """SoftHSM2 rewrites its token file at login; simultaneous logins must still succeed."""
    ca_token.generate_key(key_label, KeySpec.parse("ec-p256"))
    ctx = multiprocessing.get_context("spawn")
    conf = str(hsm_home / "softhsm2.conf")
    outcomes: list[str] = []
    for _ in range(5):
        with ctx.Manager() as manager:
            start = manager.Barrier(4)
            with ctx.Pool(4) as pool:
                args = [(conf, ca_token.label, TEST_PINS[ca_token.label], key_label, start)] * 4
                outcomes += pool.starmap(_login_and_sign, args)
    assert outcomes == ["ok"] * 20


def test_hmac_secret_signs_on_the_token_and_never_leaves(
    cloud_token: HSMToken, key_label: str
) -> None:
    """TOTP seeds: SoftHSM computes the same HMAC-SHA1 as software; the seed stays inside."""
    import hmac as software_hmac

    secret = os.urandom(20)
    cloud_token.import_hmac_secret(key_label, secret)
    for counter in (0, 1, 2**32):
        data = counter.to_bytes(8, "big")
        assert cloud_token.hmac_sha1(key_label, data) == software_hmac.digest(secret, data, "sha1")
    with pytest.raises(KeyExists):
        cloud_token.import_hmac_secret(key_label, secret)
    cloud_token.destroy_secret(key_label)
    with pytest.raises(HSMError):
        cloud_token.hmac_sha1(key_label, b"\0" * 8)

"""pyca/cryptography private keys that sign on the HSM.

``CertificateBuilder.sign()``, ``CertificateRevocationListBuilder.sign()`` and
``CertificateSigningRequestBuilder.sign()`` call ``private_key.sign(...)``; these subclasses
forward that call to :meth:`hsm.token.HSMToken.sign`. Everything that would reveal the key
(private numbers, serialisation, decryption, key exchange) refuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from hsm.errors import HSMError, UnsupportedAlgorithm
from policies.keys import SignatureScheme

if TYPE_CHECKING:
    from hsm.token import HSMToken, PublicKey

__all__ = ["HSMECPrivateKey", "HSMRSAPrivateKey", "hsm_private_key"]

_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _hash_name(algorithm: Any) -> str:
    if isinstance(algorithm, Prehashed):
        algorithm = algorithm._algorithm
    for name, cls in _HASHES.items():
        if isinstance(algorithm, cls):
            return name
    raise UnsupportedAlgorithm(f"hash {getattr(algorithm, 'name', algorithm)!r} is not supported")


def _refuse(*_args: object, **_kwargs: object) -> NoReturn:
    raise HSMError("an HSM key never leaves the HSM and is used only to sign")


class HSMECPrivateKey(ec.EllipticCurvePrivateKey):
    def __init__(self, token: HSMToken, label: str, public: ec.EllipticCurvePublicKey) -> None:
        self._token, self._label, self._public = token, label, public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        data = bytes(data)
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedAlgorithm("only ECDSA signatures are supported")
        scheme = SignatureScheme("ecdsa-" + _hash_name(signature_algorithm.algorithm))
        if isinstance(signature_algorithm.algorithm, Prehashed):
            return self._token.sign_digest(self._label, data, scheme)
        return self._token.sign(self._label, data, scheme)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    exchange = _refuse
    private_numbers = _refuse
    private_bytes = _refuse

    def __copy__(self) -> HSMECPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HSMECPrivateKey:
        return self


class HSMRSAPrivateKey(rsa.RSAPrivateKey):
    def __init__(self, token: HSMToken, label: str, public: rsa.RSAPublicKey) -> None:
        self._token, self._label, self._public = token, label, public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        padding_: padding.AsymmetricPadding,
        algorithm: Any,
    ) -> bytes:
        data = bytes(data)
        name = _hash_name(algorithm)
        if isinstance(padding_, padding.PSS):
            # The token always uses a salt as long as the digest (RFC 8017 §9.1 recommendation);
            # any other requested length would make the declared parameters lie.
            salt: object = padding_._salt_length
            if salt is not padding.PSS.DIGEST_LENGTH and salt != _HASHES[name].digest_size:
                raise UnsupportedAlgorithm("RSA-PSS salt length must equal the digest length")
            scheme = SignatureScheme(f"rsa-pss-{name}")
        elif isinstance(padding_, padding.PKCS1v15):
            scheme = SignatureScheme(f"rsa-pkcs1-{name}")
        else:
            raise UnsupportedAlgorithm(f"RSA padding {padding_.name!r} is not supported")
        if isinstance(algorithm, Prehashed):
            return self._token.sign_digest(self._label, data, scheme)
        return self._token.sign(self._label, data, scheme)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    decrypt = _refuse
    private_numbers = _refuse
    private_bytes = _refuse

    def __copy__(self) -> HSMRSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HSMRSAPrivateKey:
        return self


def hsm_private_key(
    token: HSMToken, label: str, public: PublicKey
) -> HSMECPrivateKey | HSMRSAPrivateKey:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return HSMECPrivateKey(token, label, public)
    return HSMRSAPrivateKey(token, label, public)

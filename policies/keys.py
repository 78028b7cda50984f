"""Key algorithms the HSM may generate and the signature schemes it may use."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SUPPORTED_KEY_SPECS", "KeyAlgorithm", "KeySpec", "SignatureScheme"]


class KeyAlgorithm(enum.Enum):
    RSA = "rsa"
    EC = "ec"


_RSA_SIZES = (2048, 3072, 4096)
_EC_CURVES = ("P-256", "P-384")


@dataclass(frozen=True)
class KeySpec:
    """What key to generate: ``KeySpec.parse("rsa-2048")`` or ``KeySpec.parse("ec-p256")``."""

    algorithm: KeyAlgorithm
    rsa_bits: int | None = None
    curve: str | None = None

    def __post_init__(self) -> None:
        if self.algorithm is KeyAlgorithm.RSA:
            if self.rsa_bits not in _RSA_SIZES or self.curve is not None:
                raise ValueError(f"RSA keys must be one of {_RSA_SIZES} bits")
        elif self.curve not in _EC_CURVES or self.rsa_bits is not None:
            raise ValueError(f"EC keys must use one of the curves {_EC_CURVES}")

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        name = text.strip().lower().replace("_", "-")
        table = {spec.name: spec for spec in SUPPORTED_KEY_SPECS}
        if name not in table:
            raise ValueError(f"unknown key type {text!r}; choose one of {sorted(table)}")
        return table[name]

    @property
    def name(self) -> str:
        if self.algorithm is KeyAlgorithm.RSA:
            return f"rsa-{self.rsa_bits}"
        return "ec-" + str(self.curve).replace("-", "").lower()

    @property
    def default_scheme(self) -> SignatureScheme:
        """The scheme used when a caller does not choose one (certificates, CRLs)."""
        if self.algorithm is KeyAlgorithm.RSA:
            return SignatureScheme.RSA_PKCS1_SHA256
        return (
            SignatureScheme.ECDSA_SHA384 if self.curve == "P-384" else SignatureScheme.ECDSA_SHA256
        )


SUPPORTED_KEY_SPECS: tuple[KeySpec, ...] = tuple(
    [KeySpec(KeyAlgorithm.RSA, rsa_bits=bits) for bits in _RSA_SIZES]
    + [KeySpec(KeyAlgorithm.EC, curve=curve) for curve in _EC_CURVES]
)


class SignatureScheme(enum.Enum):
    """Signature schemes by (key algorithm, padding, hash). Values are stable wire names."""

    RSA_PKCS1_SHA256 = "rsa-pkcs1-sha256"
    RSA_PKCS1_SHA384 = "rsa-pkcs1-sha384"
    RSA_PKCS1_SHA512 = "rsa-pkcs1-sha512"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    RSA_PSS_SHA384 = "rsa-pss-sha384"
    RSA_PSS_SHA512 = "rsa-pss-sha512"
    ECDSA_SHA256 = "ecdsa-sha256"
    ECDSA_SHA384 = "ecdsa-sha384"
    ECDSA_SHA512 = "ecdsa-sha512"

    @property
    def key_algorithm(self) -> KeyAlgorithm:
        return KeyAlgorithm.EC if self.value.startswith("ecdsa") else KeyAlgorithm.RSA

    @property
    def hash_name(self) -> str:
        """``sha256``, ``sha384`` or ``sha512``."""
        return self.value.rsplit("-", 1)[1]

    @property
    def is_pss(self) -> bool:
        return "-pss-" in self.value

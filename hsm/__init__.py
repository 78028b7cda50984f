"""The only package that talks PKCS#11 (python-pkcs11 over SoftHSM2 or a real HSM).

Use :class:`HSMToken` for one token (``tamga-ca`` or ``tamga-cloud``): it generates, finds and
destroys keys. Hand a component that only signs a :class:`Signer` (``token.signer(label)``): one
key, its public key, ``sign_digest``, and a pyca private key whose ``sign()`` happens on the token.
"""

from hsm.adapter import HSMECPrivateKey, HSMRSAPrivateKey
from hsm.errors import (
    HSMError,
    KeyExists,
    KeyNotFound,
    ModuleNotFound,
    TokenNotFound,
    UnsupportedAlgorithm,
    WrongPIN,
)
from hsm.signer import Signer, TokenSigner
from hsm.token import HSMToken, KeyInfo, PublicKey

__all__ = [
    "HSMECPrivateKey",
    "HSMError",
    "HSMRSAPrivateKey",
    "HSMToken",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "ModuleNotFound",
    "PublicKey",
    "Signer",
    "TokenNotFound",
    "TokenSigner",
    "UnsupportedAlgorithm",
    "WrongPIN",
]

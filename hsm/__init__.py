"""The only package that talks PKCS#11 (python-pkcs11 over SoftHSM2 or a real HSM).

Use :class:`HSMToken` for one token (``tamga-ca`` or ``tamga-cloud``); its ``private_key()``
gives a pyca/cryptography key object whose ``sign()`` happens on the token.
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
    "TokenNotFound",
    "UnsupportedAlgorithm",
    "WrongPIN",
]

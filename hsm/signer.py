"""``Signer``: one key on a token, handed to code that must sign with it and nothing else.

A domain that signs (the TSA, a CRL, a holder's CSC signature) needs one key, not the token: a
``Signer`` gives it the key's label, public key and default scheme, ``sign_digest`` on the token,
and a pyca private-key object for ``CertificateBuilder.sign()``-style APIs. It cannot generate,
list or destroy keys, so a component handed a Signer can reach exactly one key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from hsm.adapter import HSMECPrivateKey, HSMRSAPrivateKey, hsm_private_key
from policies.keys import SignatureScheme

if TYPE_CHECKING:
    from hsm.token import HSMToken, PublicKey

__all__ = ["Signer", "TokenSigner"]


class Signer(Protocol):
    """One signing key: what it is, and signing with it."""

    @property
    def label(self) -> str: ...

    @property
    def public_key(self) -> PublicKey: ...

    def sign_digest(self, digest: bytes, scheme: SignatureScheme) -> bytes:
        """Sign a precomputed digest (DER for ECDSA)."""
        ...

    def private_key(self) -> HSMECPrivateKey | HSMRSAPrivateKey:
        """A pyca private key whose ``sign()`` happens on the token."""
        ...


@dataclass(frozen=True)
class TokenSigner:
    """A :class:`Signer` over key ``label`` of ``token`` (the public key is read once)."""

    token: HSMToken
    label: str

    @cached_property
    def public_key(self) -> PublicKey:
        return self.token.public_key(self.label)

    def sign_digest(self, digest: bytes, scheme: SignatureScheme) -> bytes:
        return self.token.sign_digest(self.label, digest, scheme)

    def private_key(self) -> HSMECPrivateKey | HSMRSAPrivateKey:
        return hsm_private_key(self.token, self.label, self.public_key)

"""Signing with a holder's cloud key: the checks at the moment of use, then the HSM, then evidence.

Both ways of signing go through :func:`use_sad`: CSC ``signHash`` (:func:`sign_hashes`: raw
signatures over the portal's hashes) and ``/api/v1/signatures`` (:func:`sign_document`: a
CAdES-B-T detached CMS with a time-stamp from Tamga's TSA). The key is reached as a
:class:`hsm.Signer` of ``tamga-cloud``; the TSA only through its own signer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cryptography import x509
from sqlalchemy.orm import Session

from ca.cms import sign_detached_digest, signer_hash
from ca.errors import UsageRefused
from ca.models import Certificate
from ca.tsa import timestamp_token
from ca.usage import may_sign
from hsm import HSMToken, Signer
from policies.keys import SignatureScheme
from signing_api.cloud.errors import Refusal, SigningRefused
from signing_api.cloud.models import SignatureActivation
from signing_api.cloud.sad import consume

__all__ = ["HASH_SIZES", "check_signing_allowed", "sign_document", "sign_hashes", "use_sad"]

HASH_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


def check_signing_allowed(
    session: Session,
    certificate: Certificate,
    *,
    inn: str,
    role: str,
    now: datetime,
    abroad: bool = False,
    end_user_ip: str | None = None,
) -> None:
    """``ca.usage.may_sign``, its refusal as a :class:`SigningRefused`."""
    try:
        may_sign(
            session,
            certificate,
            inn=inn,
            role=role,
            now=now,
            abroad=abroad,
            end_user_ip=end_user_ip,
        )
    except UsageRefused as ex:
        reason = Refusal.ACCESS_DENIED if ex.from_abroad else Refusal.INVALID_REQUEST
        raise SigningRefused(reason, ex.message, field=ex.field) from None


def use_sad(
    session: Session,
    cloud_token: HSMToken,
    *,
    sad: object,
    certificate: Certificate,
    client_id: int,
    hashes: list[str],
    now: datetime,
) -> tuple[SignatureActivation, Signer]:
    """Consume the SAD for exactly ``hashes`` (base64), check the rules again at this moment
    (a suspension since ``authorize`` counts), and hand out the credential's key."""
    activation = consume(
        session, sad=sad, certificate=certificate, client_id=client_id, hashes=hashes, now=now
    )
    check_signing_allowed(session, certificate, inn=activation.inn, role=activation.role, now=now)
    if certificate.key_label is None or certificate.key_destroyed_at is not None:
        raise SigningRefused(Refusal.INVALID_REQUEST, "the credential's key is gone")
    return activation, cloud_token.signer(certificate.key_label)


def sign_hashes(signer: Signer, digests: list[bytes], scheme: SignatureScheme) -> list[bytes]:
    """One raw signature per digest (DER for ECDSA), each of ``scheme``'s hash size."""
    for digest in digests:
        if len(digest) != HASH_SIZES[scheme.hash_name]:
            raise SigningRefused(
                Refusal.INVALID_REQUEST, "a hash does not have the size of hashAlgo", field="hash"
            )
    return [signer.sign_digest(digest, scheme) for digest in digests]


def sign_document(
    session: Session,
    signer: Signer,
    certificate: Certificate,
    digest: bytes,
    *,
    chain: list[x509.Certificate],
    tsa: Signer,
    now: datetime,
    tsa_clock: Callable[[], datetime],
    actor: str,
) -> bytes:
    """A CAdES-B-T detached CMS (DER) over a document's SHA-256 ``digest``.

    ``now`` is the signing-time attribute (when the holder's request was taken); the
    signature-time-stamp is asked for afterwards, over the finished signature value, and the
    TSA reads its own clock then (``tsa_clock``): its genTime attests that the signature
    existed at that time, so it can never precede the signing (issue #12 finding 12).
    """
    key = signer.private_key()
    if signer_hash(key) != "sha256":
        raise SigningRefused(Refusal.INVALID_REQUEST, "this key signs SHA-384 digests")

    def stamp(imprint: bytes, hash_name: str) -> bytes:
        return timestamp_token(session, tsa, imprint, hash_name, now=tsa_clock(), actor=actor)

    return sign_detached_digest(
        digest,
        x509.load_der_x509_certificate(certificate.der or b""),
        key,
        chain,
        signing_time=now,
        timestamper=stamp,
    )

"""CMS SignedData (RFC 5652): sign a document with any key, verify a holder's signature.

A renewal request is signed by the holder with the current key, and the signature must be
checkable by tools nobody here wrote (``openssl cms -verify``). The structure is built with
``asn1crypto`` rather than pyca's ``PKCS7SignatureBuilder`` so that the signed attributes
(signing-certificate-v2 above all) are ours to choose; the signature is one call of
``private_key.sign(...)`` on the DER of the signed attributes, which an HSM key
(:mod:`hsm.adapter`) forwards to the token.

What we produce: ContentInfo/SignedData, eContentType id-data with the eContent absent (detached),
one SignerInfo identified by issuerAndSerialNumber, SHA-256 (SHA-384 for P-384 keys), signed
attributes content-type, message-digest, signing-time and signing-certificate-v2 (RFC 5035), and
the signer's certificate plus its chain.

:func:`sign_encapsulated` makes the same structure with the content inside (eContent present:
Tamga's dispatch confirmations), and :func:`verify_encapsulated` checks such a CMS against one
pinned certificate, including ones made by other software (an agency's receipts, signed with
pyca's ``PKCS7SignatureBuilder``: no signing-certificate-v2, perhaps SMIMECapabilities).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, pem, tsp  # tsp also registers signing-certificate-v2 with cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca.errors import CAError

__all__ = [
    "CMSInvalid",
    "SignerKey",
    "Timestamper",
    "sign_detached",
    "sign_detached_digest",
    "sign_encapsulated",
    "signer_hash",
    "verify_detached",
    "verify_encapsulated",
]

SignerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Timestamper = Callable[[bytes, str], bytes]  # (digest of the signature value, hash) -> token DER

_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# ECDSA hash matched to the curve's strength (RFC 5753 §7.1.1 / RFC 5480 §4).
_EC_HASH_BY_KEY_SIZE = {256: "sha256", 384: "sha384", 521: "sha512"}
# SignatureAlgorithmIdentifier -> the hash it names; rsaEncryption names none (RFC 5754 §3.2).
_ECDSA_ALGORITHMS = {"sha256_ecdsa": "sha256", "sha384_ecdsa": "sha384", "sha512_ecdsa": "sha512"}
_RSA_ALGORITHMS: dict[str, str | None] = {
    "rsassa_pkcs1v15": None,
    "sha256_rsa": "sha256",
    "sha384_rsa": "sha384",
    "sha512_rsa": "sha512",
}
_PEM_TYPES = frozenset({"CMS", "PKCS7"})
# RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime outside that range.
_UTC_TIME_YEARS = range(1950, 2050)


class CMSInvalid(CAError):
    """A CMS signature is malformed, names another signer, or does not verify."""


# --- signing -------------------------------------------------------------------------------


def sign_detached(
    content: bytes,
    certificate: x509.Certificate,
    private_key: SignerKey,
    chain: Sequence[x509.Certificate] = (),
    *,
    signing_time: datetime,
    timestamper: Timestamper | None = None,
) -> bytes:
    """DER of a detached CMS SignedData over ``content``, signed by ``private_key``.

    ``private_key`` may be an HSM-backed key (:meth:`hsm.token.HSMToken.private_key`): only its
    ``sign()`` and ``public_key()`` are called.
    """
    hash_name = _hash_for_key(private_key)
    return sign_detached_digest(
        hashlib.new(hash_name, content).digest(),
        certificate,
        private_key,
        chain,
        signing_time=signing_time,
        timestamper=timestamper,
    )


def signer_hash(private_key: SignerKey) -> str:
    """The hash a signature by ``private_key`` uses (and its document digest must use)."""
    return _hash_for_key(private_key)


def sign_detached_digest(
    digest: bytes,
    certificate: x509.Certificate,
    private_key: SignerKey,
    chain: Sequence[x509.Certificate] = (),
    *,
    signing_time: datetime,
    timestamper: Timestamper | None = None,
) -> bytes:
    """As :func:`sign_detached`, from the content's digest (hash: :func:`signer_hash`).

    CAdES-B-B: content-type, message-digest, signing-time and signing-certificate-v2 signed
    attributes. With ``timestamper`` (``(digest, hash_name) -> TimeStampToken DER``) the
    signature value is time-stamped and the token added as the signature-time-stamp unsigned
    attribute (ETSI EN 319 122-1 §5.3, CAdES-B-T).
    """
    _check_signer_key(certificate, private_key, signing_time)
    hash_name = _hash_for_key(private_key)
    if len(digest) != hashlib.new(hash_name).digest_size:
        raise ValueError(f"a {hash_name} digest is {hashlib.new(hash_name).digest_size} bytes")
    return _signed_data(
        digest,
        None,
        certificate,
        private_key,
        chain,
        signing_time=signing_time,
        timestamper=timestamper,
    )


def sign_encapsulated(
    content: bytes,
    certificate: x509.Certificate,
    private_key: SignerKey,
    chain: Sequence[x509.Certificate] = (),
    *,
    signing_time: datetime,
    timestamper: Timestamper | None = None,
) -> bytes:
    """DER of an attached CMS SignedData: ``content`` is carried inside, as the eContent.

    The same SignerInfo as :func:`sign_detached` (signed attributes content-type, message-digest,
    signing-time, signing-certificate-v2; with ``timestamper`` the signature-time-stamp unsigned
    attribute), over eContentType id-data with the eContent present.
    """
    _check_signer_key(certificate, private_key, signing_time)
    hash_name = _hash_for_key(private_key)
    return _signed_data(
        hashlib.new(hash_name, content).digest(),
        content,
        certificate,
        private_key,
        chain,
        signing_time=signing_time,
        timestamper=timestamper,
    )


def _check_signer_key(
    certificate: x509.Certificate, private_key: SignerKey, signing_time: datetime
) -> None:
    if signing_time.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    if _public_der(private_key.public_key()) != _public_der(certificate.public_key()):
        raise ValueError("the private key does not match the signer certificate")


def _signed_data(
    digest: bytes,
    content: bytes | None,
    certificate: x509.Certificate,
    private_key: SignerKey,
    chain: Sequence[x509.Certificate],
    *,
    signing_time: datetime,
    timestamper: Timestamper | None,
) -> bytes:
    """ContentInfo/SignedData DER; ``content`` None leaves the eContent out (detached)."""
    hash_name = _hash_for_key(private_key)
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["data"]},
            {"type": "message_digest", "values": [digest]},
            {"type": "signing_time", "values": [_cms_time(signing_time)]},
            {"type": "signing_certificate_v2", "values": [_signing_certificate_v2(certificate)]},
        ]
    )
    # The signature covers the DER of the attributes with the SET OF tag (RFC 5652 §5.4), not
    # the [0] IMPLICIT tag they carry inside SignerInfo; asn1crypto sorts SET OF as DER wants.
    signature, signature_algorithm = _sign(private_key, signed_attrs.dump(), hash_name)
    signer: dict[str, Any] = {
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": _issuer_and_serial(certificate)}),
        "digest_algorithm": _digest_algorithm(hash_name),
        "signed_attrs": signed_attrs,
        "signature_algorithm": signature_algorithm,
        "signature": signature,
    }
    if timestamper is not None:
        token = cms.ContentInfo.load(
            timestamper(hashlib.new(hash_name, signature).digest(), hash_name)
        )
        signer["unsigned_attrs"] = cms.CMSAttributes(
            [{"type": "signature_time_stamp_token", "values": [token]}]
        )
    signer_info = cms.SignerInfo(signer)
    # CertificateSet is a SET OF: DER sorts it, so the signer is not necessarily first.
    certificates = [certificate, *(c for c in chain if c != certificate)]
    encap_content_info: dict[str, Any] = {"content_type": "data"}
    if content is not None:
        encap_content_info["content"] = content
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [_digest_algorithm(hash_name)],
            "encap_content_info": encap_content_info,
            "certificates": [
                cms.CertificateChoices({"certificate": _asn1_certificate(c)}) for c in certificates
            ],
            "signer_infos": [signer_info],
        }
    )
    der: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
    return der


def _public_der(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _hash_for_key(private_key: SignerKey) -> str:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if private_key.key_size not in _EC_HASH_BY_KEY_SIZE:
            raise ValueError(f"unsupported EC key size {private_key.key_size}")
        return _EC_HASH_BY_KEY_SIZE[private_key.key_size]
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "sha256"
    raise TypeError(f"unsupported signer key {type(private_key).__name__}")


def _sign(private_key: SignerKey, data: bytes, hash_name: str) -> tuple[bytes, dict[str, str]]:
    """Signature value and SignatureAlgorithmIdentifier (RFC 5753 §7.1.3, RFC 5754 §3.2)."""
    algorithm = _HASHES[hash_name]()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(algorithm)), {"algorithm": f"{hash_name}_ecdsa"}
    # asn1crypto adds the NULL parameters that sha*WithRSAEncryption requires.
    return private_key.sign(data, padding.PKCS1v15(), algorithm), {"algorithm": f"{hash_name}_rsa"}


def _digest_algorithm(hash_name: str) -> dict[str, Any]:
    # RFC 5754 §2: SHA-2 AlgorithmIdentifiers SHOULD be generated with absent parameters.
    return {"algorithm": hash_name, "parameters": None}


def _cms_time(moment: datetime) -> cms.Time:
    moment = moment.astimezone(UTC).replace(microsecond=0)
    if moment.year in _UTC_TIME_YEARS:
        return cms.Time({"utc_time": moment})
    return cms.Time({"generalized_time": moment})


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _issuer_and_serial(certificate: x509.Certificate) -> cms.IssuerAndSerialNumber:
    return cms.IssuerAndSerialNumber(
        {
            "issuer": asn1_x509.Name.load(certificate.issuer.public_bytes()),
            "serial_number": certificate.serial_number,
        }
    )


def _signing_certificate_v2(certificate: x509.Certificate) -> tsp.SigningCertificateV2:
    """RFC 5035 ESSCertIDv2: SHA-256 (the DEFAULT, hence omitted) of the signer's certificate."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    issuer_serial = {
        "issuer": [
            asn1_x509.GeneralName(
                {"directory_name": asn1_x509.Name.load(certificate.issuer.public_bytes())}
            )
        ],
        "serial_number": certificate.serial_number,
    }
    return tsp.SigningCertificateV2(
        {"certs": [{"cert_hash": hashlib.sha256(der).digest(), "issuer_serial": issuer_serial}]}
    )


# --- verification --------------------------------------------------------------------------


def verify_detached(content: bytes, signature: bytes, certificate: x509.Certificate) -> datetime:
    """Check a detached CMS signature by ``certificate`` over ``content``; return signing-time.

    Accepts DER or PEM (``CMS`` or ``PKCS7``). Only the signature is checked here: whether the
    certificate was valid and trusted at that time is the caller's business. Any failure raises
    :class:`CMSInvalid`.
    """
    try:
        return _verify(content, signature, certificate)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as ex:
        # asn1crypto parses lazily, so malformed input surfaces wherever a field is first read.
        raise CMSInvalid(f"malformed CMS signature: {ex}") from ex


def verify_encapsulated(signature: bytes, certificate: x509.Certificate) -> tuple[bytes, datetime]:
    """Check an attached CMS signature by ``certificate``; return (its content, signing-time).

    For a CMS whose eContent (id-data) is present, made by us (:func:`sign_encapsulated`) or by
    other software: one signer, identified by issuerAndSerialNumber or subjectKeyIdentifier,
    the signed attributes content-type (id-data), message-digest and signing-time, and
    signing-certificate-v2 checked only when present. ``certificate`` is pinned: a signature by
    any other certificate is refused, and whether it was valid and trusted at that time is the
    caller's business. Accepts DER or PEM. Any failure raises :class:`CMSInvalid`.
    """
    try:
        signed_data = _load_signed_data(signature, detached=False)
        content: bytes = signed_data["encap_content_info"]["content"].native
        return content, _verify_signer(signed_data, content, certificate)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as ex:
        raise CMSInvalid(f"malformed CMS signature: {ex}") from ex


def _verify(content: bytes, signature: bytes, certificate: x509.Certificate) -> datetime:
    return _verify_signer(_load_signed_data(signature, detached=True), content, certificate)


def _verify_signer(signed_data: Any, content: bytes, certificate: x509.Certificate) -> datetime:
    """The one signer of ``signed_data`` signed ``content`` with ``certificate``: signing-time."""
    signer = _single_signer(signed_data)
    _check_signer_identifies(signer, certificate)
    hash_name = _digest_name(signer)
    attributes = _signed_attributes(signer)
    if _single_value(attributes, "content_type").native != "data":
        raise CMSInvalid("the content-type attribute is not id-data")
    expected = hashlib.new(hash_name, content).digest()
    if not hmac.compare_digest(_single_value(attributes, "message_digest").native, expected):
        raise CMSInvalid("message digest mismatch: the content is not what was signed")
    _check_signing_certificate(attributes, certificate)
    _check_signature(signer, hash_name, certificate)
    moment = _single_value(attributes, "signing_time").native
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise CMSInvalid("the signing-time attribute is not a valid time")
    return moment.astimezone(UTC)


def _load_signed_data(signature: bytes, *, detached: bool) -> Any:
    der = signature
    if pem.detect(signature):
        kind, _headers, der = pem.unarmor(signature)
        if kind not in _PEM_TYPES:
            raise CMSInvalid(f"PEM block {kind!r} is not a CMS signature")
    content_info = cms.ContentInfo.load(der, strict=True)
    if content_info["content_type"].native != "signed_data":
        raise CMSInvalid("not a CMS SignedData")
    signed_data = content_info["content"]
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "data":
        raise CMSInvalid("the encapsulated content type is not id-data")
    if detached and encap["content"].native is not None:
        raise CMSInvalid("the signature is not detached: it carries its own content")
    if not detached and encap["content"].native is None:
        raise CMSInvalid("the signature is detached: it does not carry its content")
    return signed_data


def _single_signer(signed_data: Any) -> Any:
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise CMSInvalid(f"expected exactly one signer, found {len(signer_infos)}")
    return signer_infos[0]


def _check_signer_identifies(signer: Any, certificate: x509.Certificate) -> None:
    sid = signer["sid"]
    if sid.name == "issuer_and_serial_number":
        issuer = asn1_x509.Name.load(certificate.issuer.public_bytes())
        matches = (
            sid.chosen["issuer"] == issuer
            and sid.chosen["serial_number"].native == certificate.serial_number
        )
    elif sid.name == "subject_key_identifier":
        try:
            ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            matches = False
        else:
            matches = hmac.compare_digest(sid.chosen.native, ski.value.digest)
    else:  # pragma: no cover - asn1crypto only knows the two alternatives
        raise CMSInvalid(f"unknown signer identifier {sid.name!r}")
    if not matches:
        raise CMSInvalid("wrong signer: the signature was not made for this certificate")


def _digest_name(signer: Any) -> str:
    name = signer["digest_algorithm"]["algorithm"].native
    if name not in _HASHES:
        raise CMSInvalid(f"unsupported digest algorithm {name!r}")
    return str(name)


def _signed_attributes(signer: Any) -> dict[str, list[Any]]:
    signed_attrs = signer["signed_attrs"]
    if signed_attrs.native is None:
        raise CMSInvalid("the signature has no signed attributes")
    attributes: dict[str, list[Any]] = {}
    for attribute in signed_attrs:
        attributes.setdefault(str(attribute["type"].native), []).append(attribute["values"])
    return attributes


def _single_value(attributes: dict[str, list[Any]], name: str) -> Any:
    """The one value of a required attribute (RFC 5652 §11: one instance, one value)."""
    instances = attributes.get(name, [])
    if not instances:
        raise CMSInvalid(f"the signed attribute {name.replace('_', '-')} is missing")
    if len(instances) != 1 or len(instances[0]) != 1:
        raise CMSInvalid(f"the signed attribute {name.replace('_', '-')} must have one value")
    return instances[0][0]


def _check_signing_certificate(
    attributes: dict[str, list[Any]], certificate: x509.Certificate
) -> None:
    """If signing-certificate-v2 is present, its first ESSCertIDv2 must name ``certificate``.

    The SHA-1 signing-certificate (v1) is not checked: it adds nothing to the sid check.
    """
    if "signing_certificate_v2" not in attributes:
        return
    ess_cert_id = _single_value(attributes, "signing_certificate_v2")["certs"][0]
    hash_name = ess_cert_id["hash_algorithm"]["algorithm"].native
    if hash_name not in _HASHES:
        raise CMSInvalid(f"unsupported signing-certificate-v2 hash {hash_name!r}")
    der = certificate.public_bytes(serialization.Encoding.DER)
    if not hmac.compare_digest(
        ess_cert_id["cert_hash"].native, hashlib.new(hash_name, der).digest()
    ):
        raise CMSInvalid("wrong signer: signing-certificate-v2 names another certificate")


def _check_signature(signer: Any, hash_name: str, certificate: x509.Certificate) -> None:
    algorithm = str(signer["signature_algorithm"]["algorithm"].native)
    verify = _verifier(algorithm, hash_name, certificate.public_key())
    value: bytes = signer["signature"].native
    retagged = b"\x31" + signer["signed_attrs"].dump()[1:]  # [0] IMPLICIT -> SET OF (§5.4)
    # The signature covers the DER encoding. A sender's bytes should already be DER; re-encode
    # as openssl does in case they are not (an unsorted SET OF, say).
    for data in (retagged, cms.CMSAttributes.load(retagged).dump(force=True)):
        try:
            verify(value, data)
        except InvalidSignature:
            continue
        return
    raise CMSInvalid("bad signature: it does not verify with the certificate's key")


def _verifier(
    algorithm: str, hash_name: str, public_key: CertificatePublicKeyTypes
) -> Callable[[bytes, bytes], None]:
    """``verify(signature, data)`` for a SignatureAlgorithmIdentifier and the signer's key."""
    hash_algorithm = _HASHES[hash_name]()
    if algorithm in _ECDSA_ALGORITHMS:
        if _ECDSA_ALGORITHMS[algorithm] != hash_name:
            raise CMSInvalid(f"signature algorithm {algorithm!r} does not match {hash_name!r}")
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise CMSInvalid("ECDSA signature but the certificate key is not EC")
        ec_key = public_key
        return lambda value, data: ec_key.verify(value, data, ec.ECDSA(hash_algorithm))
    if algorithm in _RSA_ALGORITHMS:
        named = _RSA_ALGORITHMS[algorithm]
        if named is not None and named != hash_name:
            raise CMSInvalid(f"signature algorithm {algorithm!r} does not match {hash_name!r}")
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise CMSInvalid("RSA signature but the certificate key is not RSA")
        rsa_key = public_key
        return lambda value, data: rsa_key.verify(value, data, padding.PKCS1v15(), hash_algorithm)
    raise CMSInvalid(f"unsupported signature algorithm {algorithm!r}")

"""The operator's RFC 3161 Time-Stamping Authority: its certificate and its time-stamp tokens.

``ensure_tsa`` (called by ``tamga init``) makes the TSA key in the CA token and has the issuing
CA certify it: extendedKeyUsage timeStamping only, critical (RFC 3161 §2.3). ``timestamp_response``
answers a DER TimeStampReq with a DER TimeStampResp; ``timestamp_token`` makes the token for a
digest of our own (CAdES-B-T's signature-time-stamp). Both sign on the HSM.

What a token contains (RFC 3161 §2.4.2, RFC 5652):

- ContentInfo / SignedData v3, eContentType id-ct-TSTInfo, the TSTInfo DER as eContent;
- TSTInfo v1: our policy (:data:`policies.tsa.TSA_POLICY_OID`), the request's messageImprint
  byte for byte, a 159-bit serial from the serial registry, genTime (UTC, fractions of a second
  without trailing zeros), accuracy, ordering absent (FALSE), the nonce if the request had one,
  and ``tsa`` = the TSA certificate's subject as a directoryName;
- one SignerInfo (issuerAndSerialNumber) with signed attributes content-type, message-digest and
  signing-certificate-v2 (RFC 5035; ESSCertIDv2 with SHA-256 of the TSA certificate);
  ECDSA with SHA-256 by the ``tamga-tsa`` key;
- the TSA certificate in ``certificates`` only when the request's certReq is true.

Client mistakes never raise: they become a TimeStampResp with status ``rejection`` and the
PKIFailureInfo bit that says why. A TSA that cannot sign (no certificate yet, certificate not
valid now, HSM failure) raises :class:`TSAUnavailable` or ``HSMError``; the caller answers
``systemFailure`` (:func:`rejection_response`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy.orm import Session

from ca.errors import CAError, HierarchyNotReady
from ca.hierarchy import active_certificate
from ca.operator_keys import OperatorCertificate, ensure_operator_certificate
from ca.serials import reserve_serial
from db import audit
from hsm import HSMToken, Signer
from policies.tsa import MAX_NONCE_BITS, TSA

__all__ = [
    "TSAUnavailable",
    "TimeStampRefused",
    "ensure_tsa",
    "rejection_response",
    "timestamp_response",
    "timestamp_token",
]

_FAIL_INFO_NAMES = frozenset(tsp.PKIFailureInfo._map.values())


class TSAUnavailable(CAError):
    """The TSA cannot sign now: its certificate is missing or not valid at this moment."""


class TimeStampRefused(CAError):
    """A request the TSA will not time-stamp; ``fail_info`` is the PKIFailureInfo bit's name."""

    def __init__(self, fail_info: str, message: str) -> None:
        if fail_info not in _FAIL_INFO_NAMES:
            raise ValueError(f"unknown PKIFailureInfo {fail_info!r}")
        self.fail_info = fail_info
        super().__init__(message)


# --- the TSA certificate -------------------------------------------------------------------


_TSA_CERTIFICATE = OperatorCertificate(
    name=TSA.name,
    title="TSA",
    purpose="tsa",
    key_label=TSA.key_label,
    key_spec=TSA.key_spec,
    validity_years=TSA.validity_years,
    subject=TSA.subject,
    key_usage=x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    ),
    # RFC 3161 §2.3: timeStamping as the only purpose, and the extension critical.
    extensions=((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),),
)


def ensure_tsa(
    session: Session, ca_token: HSMToken, *, public_url: str, now: datetime, actor: str
) -> x509.Certificate:
    """The TSA certificate, making the TSA key and its certificate first if they are missing
    (``ca.operator_keys.ensure_operator_certificate``: idempotent; ``HierarchyNotReady`` before
    the issuing CA has a certificate, ``CertificateMismatch`` for another key's certificate)."""
    return ensure_operator_certificate(
        session, ca_token, _TSA_CERTIFICATE, public_url=public_url, now=now, actor=actor
    )


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """What a TimeStampReq asks for, once checked."""

    hash_name: str
    imprint: tsp.MessageImprint  # echoed byte for byte (RFC 3161 §2.4.2)
    nonce: int | None
    cert_req: bool


# asn1crypto reports malformed DER with these; a TSA must answer any byte string, not crash.
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


def _check_imprint(hash_name: str, hashed_message: bytes) -> None:
    if hash_name not in TSA.accepted_hashes:
        raise TimeStampRefused(
            "bad_alg",
            f"hash algorithm {hash_name} is not accepted; use one of "
            + ", ".join(TSA.accepted_hashes),
        )
    if len(hashed_message) != hashlib.new(hash_name).digest_size:
        raise TimeStampRefused("bad_data_format", f"the hashed message is not a {hash_name} digest")


def _parse_request(der: bytes) -> _Request:
    try:
        request = tsp.TimeStampReq.load(der, strict=True)
        request.native  # noqa: B018 - asn1crypto parses lazily: force every field now
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]
        hash_name = algorithm["algorithm"].native
        parameters = algorithm["parameters"].native
        hashed_message = imprint["hashed_message"].native
        version = request["version"].native
    except _PARSE_ERRORS:
        raise TimeStampRefused("bad_data_format", "the body is not a DER TimeStampReq") from None
    if version != "v1":
        raise TimeStampRefused("bad_data_format", "only TimeStampReq version 1 is known")
    # SHA-2 identifiers carry absent or NULL parameters (RFC 5754 §2); anything else is not one.
    if parameters is not None:
        raise TimeStampRefused("bad_alg", "the hash algorithm has unexpected parameters")
    _check_imprint(hash_name, hashed_message)
    policy = request["req_policy"].native
    if policy is not None and policy != TSA.policy_oid:
        raise TimeStampRefused(
            "unaccepted_policy", f"this TSA time-stamps under policy {TSA.policy_oid} only"
        )
    if request["extensions"].native is not None:
        raise TimeStampRefused("unaccepted_extensions", "this TSA accepts no request extensions")
    nonce = request["nonce"].native
    check_nonce(nonce)
    return _Request(
        hash_name=hash_name,
        imprint=tsp.MessageImprint.load(imprint.dump()),
        nonce=nonce,
        cert_req=bool(request["cert_req"].native),
    )


def check_nonce(nonce: int | None) -> None:
    """A nonce is 0 to 2^MAX_NONCE_BITS − 1 (TimeStampRefused badDataFormat otherwise)."""
    if nonce is not None and not 0 <= nonce < 2**MAX_NONCE_BITS:
        raise TimeStampRefused(
            "bad_data_format",
            f"the nonce is a non-negative integer of at most {MAX_NONCE_BITS} bits",
        )


# --- tokens ----------------------------------------------------------------------------------


def _tsa_certificate(session: Session, now: datetime) -> x509.Certificate:
    try:
        cert = active_certificate(session, TSA.name)
    except HierarchyNotReady as ex:
        raise TSAUnavailable("the TSA has no certificate yet (run `tamga init`)") from ex
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise TSAUnavailable("the TSA certificate is not valid at this moment")
    return cert


def _signing_certificate_v2(der: bytes, cert: x509.Certificate) -> tsp.SigningCertificateV2:
    """RFC 5035 ESSCertIDv2: SHA-256 (the DEFAULT, hence omitted) of the TSA certificate."""
    issuer = asn1_x509.GeneralName(
        {"directory_name": asn1_x509.Name.load(cert.issuer.public_bytes())}
    )
    return tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    "cert_hash": hashlib.sha256(der).digest(),
                    "issuer_serial": {"issuer": [issuer], "serial_number": cert.serial_number},
                }
            ]
        }
    )


def _tst_info(cert: x509.Certificate, request: _Request, serial: int, now: datetime) -> tsp.TSTInfo:
    fields: dict[str, Any] = {
        "version": "v1",
        "policy": TSA.policy_oid,
        "message_imprint": request.imprint,
        "serial_number": serial,
        "gen_time": now,
        "accuracy": {"seconds": TSA.accuracy_seconds},
        # ordering is left out: DER omits a DEFAULT FALSE (tokens are not ordered by genTime).
        "tsa": asn1_x509.GeneralName(
            {"directory_name": asn1_x509.Name.load(cert.subject.public_bytes())}
        ),
    }
    if request.nonce is not None:
        fields["nonce"] = request.nonce
    return tsp.TSTInfo(fields)


def _signed_token(
    signer: Signer, cert: x509.Certificate, tst_info: tsp.TSTInfo, cert_req: bool
) -> cms.ContentInfo:
    hash_name = TSA.signature_hash
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["tst_info"]},
            {
                "type": "message_digest",
                "values": [hashlib.new(hash_name, tst_info.dump()).digest()],
            },
            {"type": "signing_certificate_v2", "values": [_signing_certificate_v2(cert_der, cert)]},
        ]
    )
    # The signature covers the attributes' DER with the SET OF tag (RFC 5652 §5.4).
    digest = hashlib.new(hash_name, signed_attrs.dump()).digest()
    if signer.label != TSA.key_label:
        raise TSAUnavailable(f"the TSA signs only with {TSA.key_label!r}, not {signer.label!r}")
    signature = signer.sign_digest(digest, TSA.key_spec.default_scheme)
    digest_algorithm = algos.DigestAlgorithm({"algorithm": hash_name})  # parameters absent
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": asn1_x509.Name.load(cert.issuer.public_bytes()),
                        "serial_number": cert.serial_number,
                    }
                }
            ),
            "digest_algorithm": digest_algorithm,
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": f"{hash_name}_ecdsa"},
            "signature": signature,
        }
    )
    signed_data: dict[str, Any] = {
        "version": "v3",  # RFC 5652 §5.1: eContentType other than id-data
        "digest_algorithms": [digest_algorithm],
        "encap_content_info": {"content_type": "tst_info", "content": tst_info},
        "signer_infos": [signer_info],
    }
    if cert_req:  # RFC 3161 §2.4.1: the TSA certificate exactly when certReq is true
        signed_data["certificates"] = [
            cms.CertificateChoices({"certificate": asn1_x509.Certificate.load(cert_der)})
        ]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})


def _grant(
    session: Session, signer: Signer, request: _Request, *, now: datetime, actor: str
) -> cms.ContentInfo:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    cert = _tsa_certificate(session, now)
    serial = reserve_serial(session, issuer=TSA.name, purpose="tsa-token", now=now)
    token = _signed_token(signer, cert, _tst_info(cert, request, serial, now), request.cert_req)
    audit.append(
        session,
        actor=actor,
        action="tsa.token.issued",
        object=f"tsa:{serial:x}",
        details={
            "serial": format(serial, "x"),
            "hash_algorithm": request.hash_name,
            "imprint": bytes(request.imprint["hashed_message"].native).hex(),
        },
        now=now,
    )
    return token


class _RejectionResp(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """TimeStampResp without a token. asn1crypto's ``tsp.TimeStampResp`` makes timeStampToken
    mandatory, but RFC 3161 §2.4.2 has it OPTIONAL, and absent unless granted."""

    _fields: ClassVar[list[tuple[str, Any]]] = [("status", tsp.PKIStatusInfo)]


def rejection_response(fail_info: str, text: str) -> bytes:
    """DER TimeStampResp with status rejection, ``fail_info`` (e.g. "bad_alg") and ``text``."""
    if fail_info not in _FAIL_INFO_NAMES:
        raise ValueError(f"unknown PKIFailureInfo {fail_info!r}")
    status = {"status": "rejection", "status_string": [text], "fail_info": {fail_info}}
    der: bytes = _RejectionResp({"status": status}).dump()
    return der


def timestamp_response(
    session: Session, signer: Signer, request_der: bytes, *, now: datetime, actor: str
) -> bytes:
    """DER TimeStampResp for a DER TimeStampReq: granted, or rejected with the reason.

    Raises only when the TSA itself cannot sign (:class:`TSAUnavailable`, ``HSMError``).
    """
    try:
        request = _parse_request(request_der)
    except TimeStampRefused as refused:
        return rejection_response(refused.fail_info, str(refused))
    token = _grant(session, signer, request, now=now, actor=actor)
    response = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
    der: bytes = response.dump()
    return der


def timestamp_token(
    session: Session,
    signer: Signer,
    digest: bytes,
    hash_name: str,
    *,
    now: datetime,
    actor: str,
    nonce: int | None = None,
) -> bytes:
    """DER TimeStampToken (ContentInfo) over ``digest``, for CAdES-B-T's signature-time-stamp.

    The TSA certificate is always included (as with certReq true) so that a validator holding
    only the signed document finds it. Raises :class:`TimeStampRefused` for a hash the TSA does
    not accept or a digest of the wrong length.
    """
    _check_imprint(hash_name, digest)
    check_nonce(nonce)
    imprint = tsp.MessageImprint(
        {"hash_algorithm": {"algorithm": hash_name}, "hashed_message": digest}
    )
    request = _Request(hash_name=hash_name, imprint=imprint, nonce=nonce, cert_req=True)
    der: bytes = _grant(session, signer, request, now=now, actor=actor).dump()
    return der

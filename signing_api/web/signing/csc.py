"""The Cloud Signature Consortium API v1.0.4 under ``/csc/v1/`` for the reporting portal.

Every cloud certificate is a credential: ``credentialID`` is its serial (lowercase hex),
``userID`` its holder's id. The portal authenticates with its bearer token (an API client of
role ``portal``) and only ever sees the credentials of the subscribers in its scope.

``credentials/authorize`` needs the holder's PIN and OTP (``authMode`` explicit, SCAL 2: the
hashes are listed) and a ``clientData`` JSON string naming what the signatures are for:
``{"inn": "<company INN>", "role": "head"|"accountant", "userIP": "<the end user's address>",
"abroad": <true when the portal locates the end user outside Kyrgyzstan>}``.
``signatures/signHash`` then signs exactly those hashes, once. Errors have the CSC form
``{"error": ..., "error_description": ...}``; inside the maintenance window (Fridays 17:30–20:30
Asia/Bishkek) signing answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Blueprint, Response, g, jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.errors import NotFound
from ca.hierarchy import active_certificate
from ca.issuance import certificate_state, get_certificate
from ca.models import Certificate, Holder
from ca.tsa import TimeStampRefused, TSAUnavailable, timestamp_token
from ca.usage import REPORT_ROLES
from hsm import HSMError
from policies.identifiers import is_inn
from policies.keys import SignatureScheme
from policies.roles import ClientRole
from policies.signing import SIGNING_POLICY
from signing_api.cloud import (
    HASH_SIZES,
    SigningRefused,
    activation_of,
    authorize,
    check_signing_allowed,
    record_signatures,
    sign_hashes,
    use_sad,
)
from signing_api.web.common import visible_inns
from signing_api.web.context import actor, now, runtime
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import CSC_REFUSALS, PROBLEM_TYPES, Problem
from signing_api.web.signing.schemas import (
    SAD,
    AuthorizeRequest,
    CredentialIDs,
    CredentialInfo,
    CredentialInfoRequest,
    CredentialListRequest,
    CSCInfo,
    CSCInfoRequest,
    ExtendRequest,
    Signatures,
    SignHashRequest,
    Timestamp,
    TimestampRequest,
)
from signing_api.web.signing.schemas import CSCError as CSCErrorView

__all__ = [
    "HASH_OIDS",
    "CSCError",
    "blueprint",
    "check_maintenance",
    "credential_for",
    "scheme_for",
]

log = logging.getLogger(__name__)
blueprint = Blueprint("csc", __name__, url_prefix="/csc/v1")

HASH_OIDS = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_ECDSA = {
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}
_RSA = {
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
}
_EC_KEY, _RSA_KEY = "1.2.840.10045.2.1", "1.2.840.113549.1.1.1"
_CURVES = {"secp256r1": "1.2.840.10045.3.1.7", "secp384r1": "1.3.132.0.34"}


class CSCError(Exception):
    def __init__(self, code: str, description: str, status: int = 400) -> None:
        self.code, self.description, self.status = code, description, status
        super().__init__(description)


_UNKNOWN_CREDENTIAL = "an unknown credentialID (or one of another holder)"


@blueprint.errorhandler(CSCError)
def _on_csc_error(ex: CSCError) -> Response:
    response = jsonify({"error": ex.code, "error_description": ex.description})
    response.status_code = ex.status
    if ex.status == 503:
        retry = SIGNING_POLICY.maintenance.retry_after(now())
        response.headers["Retry-After"] = str(retry or 60)
    return response


@blueprint.errorhandler(SigningRefused)
def _on_refused(ex: SigningRefused) -> Response:
    code, status = CSC_REFUSALS[ex.reason]
    return _on_csc_error(CSCError(code, ex.message, status))


@blueprint.errorhandler(Problem)
def _on_problem(ex: Problem) -> Response:
    status = PROBLEM_TYPES[ex.slug].status
    codes = {401: "invalid_token", 403: "access_denied"}
    return _on_csc_error(
        CSCError(
            codes.get(status, "invalid_request"), ex.detail, status if status in codes else 400
        )
    )


def credential_for(session: Session, ident: object) -> Certificate:
    """The cloud certificate named by ``credentialID``, if the caller may see it."""
    if not isinstance(ident, str) or not ident:
        raise CSCError("invalid_request", "Missing or invalid parameter credentialID")
    try:
        row = get_certificate(session, ident)
    except NotFound:
        raise CSCError("invalid_request", "Invalid parameter credentialID") from None
    inns = visible_inns(session)
    if (
        row.storage != "cloud"
        or row.der is None
        or (inns is not None and row.subscriber_inn not in inns)
    ):
        raise CSCError("invalid_request", "Invalid parameter credentialID")
    return row


def _b64_hashes(value: object, field: str = "hash") -> list[str]:
    if not isinstance(value, list) or not value:
        raise CSCError("invalid_request", f"Missing or invalid parameter {field}")
    if len(value) > SIGNING_POLICY.max_hashes_per_call:
        raise CSCError("invalid_request", f"at most {SIGNING_POLICY.max_hashes_per_call} hashes")
    for item in value:
        try:
            raw = base64.b64decode(item, validate=True) if isinstance(item, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) not in HASH_SIZES.values():
            raise CSCError("invalid_request", f"Invalid Base64 {field} string parameter")
    return list(value)


def check_maintenance() -> None:
    if not runtime().config.maintenance_window:  # TAMGA_MAINTENANCE_WINDOW=off
        return
    retry = SIGNING_POLICY.maintenance.retry_after(now())
    if retry is not None:
        raise CSCError(
            "temporarily_unavailable",
            "signing is closed for maintenance (Fridays 17:30-20:30)",
            503,
        )


def scheme_for(certificate: Certificate, hash_oid: object, sign_oid: object) -> SignatureScheme:
    """The HSM signature scheme for CSC's ``hashAlgo`` and ``signAlgo`` on this key."""
    if not isinstance(hash_oid, str) or hash_oid not in HASH_OIDS:
        raise CSCError("invalid_request", "Invalid parameter hashAlgo (SHA-256/384/512 OIDs)")
    hash_name = HASH_OIDS[hash_oid]
    is_ec = certificate.key_spec.startswith("ec-")
    named = (_ECDSA if is_ec else _RSA).get(sign_oid) if isinstance(sign_oid, str) else None
    if sign_oid == (_EC_KEY if is_ec else _RSA_KEY):
        named = hash_name
    if named is None:
        raise CSCError("invalid_request", "Invalid parameter signAlgo for this key")
    if named != hash_name:
        raise CSCError("invalid_request", "signAlgo and hashAlgo name different hashes")
    return SignatureScheme(f"ecdsa-{hash_name}" if is_ec else f"rsa-pkcs1-{hash_name}")


def _client_data(raw: str | None) -> tuple[str, str, str | None, bool]:
    if not isinstance(raw, str):
        raise CSCError(
            "invalid_request",
            'clientData is a JSON string {"inn": ..., "role": "head"|"accountant", "userIP": ...}',
        )
    try:
        data = json.loads(raw)
    except ValueError:
        raise CSCError("invalid_request", "clientData is not JSON") from None
    if not isinstance(data, dict):
        raise CSCError("invalid_request", "clientData is a JSON object")
    user_ip = data.get("userIP")
    if user_ip is not None:
        try:
            user_ip = str(ipaddress.ip_address(user_ip))
        except ValueError:
            raise CSCError("invalid_request", "clientData.userIP is not an IP address") from None
    abroad = data.get("abroad", False)
    if not isinstance(abroad, bool):
        raise CSCError("invalid_request", "clientData.abroad is true or false")
    inn, role = data.get("inn"), data.get("role")
    if not isinstance(role, str) or role not in REPORT_ROLES:
        raise CSCError("invalid_request", "clientData.role is head or accountant")
    if not isinstance(inn, str) or not is_inn(inn):
        raise CSCError("invalid_request", "clientData.inn is the company's 14-digit INN")
    return inn, role, user_ip, abroad


# ---- routes -------------------------------------------------------------------------------------

_PORTAL = (ClientRole.PORTAL,)
_ERRORS = Reply(CSCErrorView, 'CSC error {"error", "error_description"}')
_METHODS = [
    "info",
    "credentials/list",
    "credentials/info",
    "credentials/authorize",
    "credentials/extendTransaction",
    "signatures/signHash",
    "signatures/timestamp",
]


@blueprint.post("/info")
@operation(
    "cscInfo",
    "The signing service",
    tag="CSC API v1.0.4",
    roles=None,
    body=CSCInfoRequest,
    body_optional=True,
    responses={200: Reply(CSCInfo, "as CSC API v1.0.4 specifies")},
    errors=(400,),
    errors_as=_ERRORS,
)
def info(body: CSCInfoRequest | None) -> Response:
    base = runtime().config.public_url
    return jsonify(
        {
            "specs": "1.0.4.0",
            "name": "Tamga",
            "logo": f"{base}/ca/issuing.crt",
            "region": "KG",
            "lang": "ru-RU",
            "description": "DOS TEK GROUP cloud signatures for e-filing (Tamga)",
            "authType": ["external"],
            "methods": _METHODS,
        }
    )


@blueprint.post("/credentials/list")
@operation(
    "cscCredentialsList",
    "A holder's credentials",
    tag="CSC API v1.0.4",
    roles=_PORTAL,
    body=CredentialListRequest,
    responses={200: Reply(CredentialIDs, "as CSC API v1.0.4 specifies")},
    errors=(400, 401, 403),
    errors_as=_ERRORS,
    refusals={400: "an unknown userID"},
)
def credentials_list(body: CredentialListRequest) -> Response:
    user, limit = body.userID, body.maxResults
    with runtime().transaction() as session:
        holder = session.get(Holder, int(user))
        inns = visible_inns(session)
        if holder is None or (inns is not None and holder.subscriber_inn not in inns):
            raise CSCError("invalid_request", "Invalid parameter userID")
        rows = session.scalars(
            select(Certificate)
            .where(
                Certificate.holder_id == holder.id,
                Certificate.storage == "cloud",
                Certificate.status.in_(("active", "suspended", "revoked")),
            )
            .order_by(Certificate.id)
            .limit(limit)
        ).all()
        return jsonify({"credentialIDs": [r.serial for r in rows]})


def _key_info(cert: x509.Certificate, row: Certificate) -> dict[str, Any]:
    key = cert.public_key()
    enabled = row.status in ("active", "suspended") and row.key_destroyed_at is None
    status = "enabled" if enabled else "disabled"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = _CURVES.get(key.curve.name, key.curve.name)
        return {"status": status, "algo": [*_ECDSA, _EC_KEY], "len": key.key_size, "curve": curve}
    if isinstance(key, rsa.RSAPublicKey):
        return {"status": status, "algo": [*_RSA, _RSA_KEY], "len": key.key_size}
    raise CSCError("server_error", "unsupported key type", 500)


@blueprint.post("/credentials/info")
@operation(
    "cscCredentialsInfo",
    "Key, certificate, auth mode",
    tag="CSC API v1.0.4",
    roles=_PORTAL,
    body=CredentialInfoRequest,
    responses={200: Reply(CredentialInfo, "as CSC API v1.0.4 specifies")},
    errors=(400, 401, 403),
    errors_as=_ERRORS,
    refusals={400: _UNKNOWN_CREDENTIAL},
)
def credentials_info(body: CredentialInfoRequest) -> Response:
    which = body.certificates
    moment = now()
    with runtime().transaction() as session:
        row = credential_for(session, body.credentialID)
        cert = x509.load_der_x509_certificate(row.der or b"")
        state = certificate_state(row, moment)
        chain = [cert]
        if which == "chain":
            chain += [active_certificate(session, n) for n in ("issuing", "root")]
        activated = activation_of(session, row) is not None
        answer: dict[str, Any] = {
            "key": _key_info(cert, row),
            "cert": {
                "status": {
                    "valid": "valid",
                    "expired": "expired",
                    "revoked": "revoked",
                    "suspended": "suspended",
                }.get(state, "invalid"),
                "certificates": []
                if which == "none"
                else [
                    base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                    for c in chain[: 1 if which == "single" else None]
                ],
            },
            "authMode": "explicit",
            "PIN": {
                "presence": "true" if activated else "false",
                "format": "A",
                "label": "PIN",
                "description": "the holder's PIN",
            },
            "OTP": {
                "presence": "true" if activated else "false",
                "type": "offline",
                "ID": f"totp-{row.serial[:16]}",
                "provider": "RFC 6238 TOTP",
                "format": "N",
                "label": "OTP",
                "description": "the code of the holder's authenticator",
            },
            "multisign": SIGNING_POLICY.max_hashes_per_call,
            "SCAL": "2",
            "lang": "ru-RU",
        }
        if body.certInfo:
            answer["cert"] |= {
                "issuerDN": cert.issuer.rfc4514_string(),
                "serialNumber": format(cert.serial_number, "x"),
                "subjectDN": cert.subject.rfc4514_string(),
                "validFrom": cert.not_valid_before_utc.strftime("%Y%m%d%H%M%SZ"),
                "validTo": cert.not_valid_after_utc.strftime("%Y%m%d%H%M%SZ"),
            }
        return jsonify(answer)


@blueprint.post("/credentials/authorize")
@operation(
    "cscCredentialsAuthorize",
    "PIN + OTP for exactly these hashes: a single-use SAD",
    tag="CSC API v1.0.4",
    roles=_PORTAL,
    body=AuthorizeRequest,
    responses={200: Reply(SAD, "as CSC API v1.0.4 specifies")},
    errors=(400, 401, 403, 503),
    errors_as=_ERRORS,
    refusals={
        400: _UNKNOWN_CREDENTIAL + ", numSignatures not the number of hashes, a hash not of "
        "the key's algorithm, a wrong PIN or OTP"
    },
)
def credentials_authorize(body: AuthorizeRequest) -> Response:
    check_maintenance()
    hashes = _b64_hashes(list(body.hash))
    count = body.numSignatures
    if count != len(hashes):
        raise CSCError("invalid_request", "numSignatures must equal the number of hashes (SCAL 2)")
    inn, role, user_ip, abroad = _client_data(body.clientData)
    moment, who = now(), actor()
    rt = runtime()
    with rt.transaction() as session:
        row = credential_for(session, body.credentialID)
        check_signing_allowed(
            session, row, inn=inn, role=role, now=moment, abroad=abroad, end_user_ip=user_ip
        )
        decided = authorize(
            session,
            rt.cloud_token,
            row,
            client_id=g.client_id,
            pin=body.PIN,
            otp=body.OTP,
            hashes=hashes,
            num_signatures=count,
            inn=inn,
            role=role,
            end_user_ip=user_ip,
            now=moment,
            actor=who,
        )
    if decided.refusal is not None:  # committed: the failed attempt counts
        raise decided.refusal
    return jsonify({"SAD": decided.sad, "expiresIn": decided.expires_in})


@blueprint.post("/credentials/extendTransaction")
@operation(
    "cscCredentialsExtendTransaction",
    "Refused: every SAD is single-use",
    tag="CSC API v1.0.4",
    roles=_PORTAL,
    body=ExtendRequest,
    responses={200: Reply(SAD, "as CSC API v1.0.4 specifies")},
    errors=(400, 401, 403),
    errors_as=_ERRORS,
    refusals={400: "always: every SAD is single-use"},
)
def credentials_extend(body: ExtendRequest) -> Response:
    """Not offered: every SAD is single-use and bound to its hashes (SCAL 2)."""
    raise CSCError(
        "invalid_request", "SADs are single-use here: authorise the next hashes with PIN and OTP"
    )


@blueprint.post("/signatures/signHash")
@operation(
    "cscSignHash",
    "Sign the authorised hashes",
    tag="CSC API v1.0.4",
    roles=_PORTAL,
    body=SignHashRequest,
    responses={200: Reply(Signatures, "as CSC API v1.0.4 specifies")},
    errors=(400, 401, 403, 503),
    errors_as=_ERRORS,
    refusals={
        400: _UNKNOWN_CREDENTIAL
        + ", a SAD that is not valid for these hashes, an algorithm the key does not have"
    },
)
def signatures_sign_hash(body: SignHashRequest) -> Response:
    check_maintenance()
    hashes = _b64_hashes(list(body.hash))
    moment, who = now(), actor()
    rt = runtime()
    with rt.transaction() as session:
        row = credential_for(session, body.credentialID)
        scheme = scheme_for(row, body.hashAlgo, body.signAlgo)
        activation, signer = use_sad(
            session,
            rt.cloud_token,
            sad=body.SAD,
            certificate=row,
            client_id=g.client_id,
            hashes=hashes,
            now=moment,
        )
        digests = [base64.b64decode(item) for item in hashes]
        try:
            signatures = sign_hashes(signer, digests, scheme)
        except HSMError as ex:
            log.error("cloud HSM failed for %s: %s", row.serial, ex)
            raise CSCError("server_error", "the HSM could not sign", 503) from None
        record_signatures(
            session,
            kind="hash",
            certificate=row,
            activation=activation,
            hash_algorithm=scheme.hash_name,
            document_hashes=digests,
            now=moment,
            actor=who,
        )
    return jsonify({"signatures": [base64.b64encode(s).decode() for s in signatures]})


@blueprint.post("/signatures/timestamp")
@operation(
    "cscTimestamp",
    "An RFC 3161 token for a hash",
    tag="CSC API v1.0.4",
    roles=_PORTAL,
    body=TimestampRequest,
    responses={200: Reply(Timestamp, "as CSC API v1.0.4 specifies")},
    errors=(400, 401, 403, 503),
    errors_as=_ERRORS,
    refusals={400: "a hash whose length is not that of hashAlgo"},
)
def signatures_timestamp(body: TimestampRequest) -> Response:
    """An RFC 3161 token from Tamga's TSA for one hash (CSC 1.0.4 §11.10)."""
    hashed = _b64_hashes([body.hash])[0]
    hash_oid = body.hashAlgo
    nonce = body.nonce
    nonce_value = None
    if nonce is not None:
        try:
            nonce_value = int(nonce, 16) if isinstance(nonce, str) else None
        except ValueError:
            nonce_value = None
        if nonce_value is None:
            raise CSCError("invalid_request", "Invalid parameter nonce (hexadecimal)")
    rt, moment = runtime(), now()
    try:
        with rt.transaction() as session:
            token = timestamp_token(
                session,
                rt.tsa_signer,
                base64.b64decode(hashed),
                HASH_OIDS[hash_oid],
                now=moment,
                actor=actor(),
                nonce=nonce_value,
            )
    except TimeStampRefused as ex:
        raise CSCError("invalid_request", str(ex)) from None
    except (TSAUnavailable, HSMError) as ex:
        raise CSCError("server_error", f"the TSA cannot sign now: {ex}", 503) from None
    return jsonify({"timestamp": base64.b64encode(token).decode()})

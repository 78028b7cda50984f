"""Signed documents: CAdES-B-T detached CMS made with a holder's cloud key and a SAD.

``POST /api/v1/signatures`` ``{"credentialID", "SAD", "document": base64 | "document_sha256":
hex}`` — the portal first obtains the SAD from ``/csc/v1/credentials/authorize`` for the
document's SHA-256 (``hash: [base64 of it]``, ``numSignatures: 1``); Tamga then builds the CMS
(content-type, message-digest, signing-time, signing-certificate-v2; the chain embedded), signs
it once in ``tamga-cloud`` and adds a signature time-stamp from its own TSA. The answer (201)
carries the signature (base64 DER), its evidence id and the time-stamp serial;
``GET /api/v1/signatures/<id>`` reads the evidence back, for the subscriber it belongs to and for
officers.

The signing path holds the cloud token; the time-stamp comes through a ``Timestamper`` that can
only time-stamp (``ca.tsa.timestamp_token`` with the TSA key), never reach another CA key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from asn1crypto import cms as asn1_cms
from flask import Blueprint, Response, g
from sqlalchemy.orm import Session

from ca.hierarchy import active_certificate
from ca.tsa import TSAUnavailable
from hsm import HSMError
from policies.dates import iso_utc
from policies.roles import ClientRole
from signing_api.cloud import (
    CloudSignature,
    SignatureActivation,
    SigningRefused,
    record_signatures,
    use_sad,
)
from signing_api.cloud import sign_document as cades_b_t
from signing_api.web.common import require_visible
from signing_api.web.context import actor, now, reply, runtime
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem, problem_of
from signing_api.web.signing.csc import CSCError, check_maintenance, credential_for
from signing_api.web.signing.schemas import SignatureEvidence, SignDocumentRequest

__all__ = ["blueprint", "cloud_cms", "signature_json"]

blueprint = Blueprint("signatures", __name__)
_HEX = re.compile(r"[0-9a-f]{64}")
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
_MAX_ID = 2**63 - 1


def signature_json(row: CloudSignature) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "serial": row.serial,
        "inn": row.inn,
        "role": row.role,
        "client_id": row.client_id,
        "end_user_ip": row.end_user_ip,
        "sad_id": row.activation_id,
        "hash_algorithm": row.hash_algorithm,
        "document_hash": row.document_hash,
        "signed_at": iso_utc(row.signed_at),
        "tst_serial": row.tst_serial,
        "signature": None if row.signature is None else base64.b64encode(row.signature).decode(),
    }


def _refused(ex: CSCError) -> Problem:
    """A CSC-form refusal of the shared request checks, as problem+json."""
    if ex.status == 503:
        return Problem("unavailable", ex.description)
    slug = "validation-failed" if ex.status == 400 else "forbidden"
    return Problem(slug, ex.description, errors={"request": ex.description})


def _digest(body: SignDocumentRequest) -> bytes:
    document, hexed = body.document, body.document_sha256
    if (document is None) == (hexed is None):
        raise Problem(
            "validation-failed",
            "send document (base64) or document_sha256 (hex)",
            errors={"document": "one of document, document_sha256"},
        )
    if document is not None:
        try:
            raw = base64.b64decode(document, validate=True) if isinstance(document, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None or len(raw) > MAX_DOCUMENT_BYTES:
            raise Problem(
                "validation-failed",
                "document is base64, at most 20 MiB",
                errors={"document": "base64, at most 20 MiB"},
            )
        return hashlib.sha256(raw).digest()
    if not isinstance(hexed, str) or not _HEX.fullmatch(hexed):
        raise Problem(
            "validation-failed",
            "document_sha256 is 64 lowercase hex digits",
            errors={"document_sha256": "64 lowercase hex digits"},
        )
    return bytes.fromhex(hexed)


def _token_serial(cms_der: bytes) -> str | None:
    signer = asn1_cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]
    for attribute in signer["unsigned_attrs"] or []:
        if attribute["type"].native == "signature_time_stamp_token":
            token = attribute["values"][0]
            info = token["content"]["encap_content_info"]["content"].parsed
            return format(info["serial_number"].native, "x")
    return None


@blueprint.post("/api/v1/signatures")
@operation(
    "signDocument",
    "CAdES-B-T detached signature of a document with a cloud key and a SAD",
    tag="signing",
    roles=(ClientRole.PORTAL,),
    body=SignDocumentRequest,
    responses={201: Reply(SignatureEvidence, "The signature and its evidence")},
    errors=(403, 422, 503),
    refusals={
        422: "an unknown credentialID, a SAD not valid for this document, no document or two"
    },
)
def sign_document(body: SignDocumentRequest) -> Response:
    digest = _digest(body)
    moment, who = now(), actor()
    try:
        check_maintenance()
        with runtime().transaction() as session:
            _, evidence = cloud_cms(
                session, body.credentialID, body.SAD, digest, moment=moment, who=who
            )
            view = signature_json(evidence)
    except SigningRefused as ex:
        raise problem_of(ex) from None
    except CSCError as ex:
        raise _refused(ex) from None
    except (HSMError, TSAUnavailable) as ex:
        raise Problem("unavailable", f"cannot sign now: {ex}") from None
    return reply(view, 201, location=f"/api/v1/signatures/{view['id']}")


def cloud_cms(
    session: Session,
    credential_id: object,
    sad: object,
    digest: bytes,
    *,
    moment: datetime,
    who: str,
    before_signing: Callable[[SignatureActivation], None] | None = None,
) -> tuple[bytes, CloudSignature]:
    """A CAdES-B-T signature over ``digest`` with the credential's key, the SAD consumed, its
    evidence recorded: the one path of ``/api/v1/signatures`` and of a report's cloud signature.
    ``before_signing`` sees what the SAD allowed (company, role) and may refuse before the key
    is used. Raises ``SigningRefused``, ``CSCError``, ``HSMError``, ``TSAUnavailable``.
    """
    rt = runtime()
    row = credential_for(session, credential_id)
    activation, signer = use_sad(
        session,
        rt.cloud_token,
        sad=sad,
        certificate=row,
        client_id=g.client_id,
        hashes=[base64.b64encode(digest).decode()],
        now=moment,
    )
    if before_signing is not None:
        before_signing(activation)
    der = cades_b_t(
        session,
        signer,
        row,
        digest,
        chain=[active_certificate(session, n) for n in ("issuing", "root")],
        tsa=rt.tsa_signer,
        now=moment,
        tsa_clock=rt.now,
        actor=who,
    )
    (evidence,) = record_signatures(
        session,
        kind="cms",
        certificate=row,
        activation=activation,
        hash_algorithm="sha256",
        document_hashes=[digest],
        now=moment,
        actor=who,
        tst_serial=_token_serial(der),
        signature=der,
    )
    return der, evidence


def _visible(session: Session, signature_id: int) -> CloudSignature:
    row = session.get(CloudSignature, signature_id)
    if row is None:
        raise Problem("not-found", f"no signature {signature_id}")
    from ca.models import Certificate

    require_visible(
        session, session.get_one(Certificate, row.certificate_id).subscriber_inn, "signature"
    )
    return row


@blueprint.get("/api/v1/signatures/<int:signature_id>")
@operation(
    "getSignature",
    "The evidence of one signature",
    tag="signing",
    roles=(ClientRole.OFFICER, ClientRole.PORTAL),
    parameters=[
        {
            "name": "signature_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_ID},
        }
    ],
    responses={200: Reply(SignatureEvidence, "The evidence")},
    errors=(404,),
)
def show(signature_id: int) -> Response:
    if not 1 <= signature_id <= _MAX_ID:  # a database id is a signed 64-bit integer
        raise Problem("not-found", f"no signature {signature_id}")
    with runtime().transaction() as session:
        return reply(signature_json(_visible(session, signature_id)))

"""``POST /tsa`` (RFC 3161 §3.4 time-stamping over HTTP) and ``GET /ca/tsa.crt``.

Public like ``/crl``: RFC 3161 clients send no bearer token. The body is a DER TimeStampReq
(``application/timestamp-query``); the answer is a DER TimeStampResp
(``application/timestamp-reply``) with status 200 whether granted or rejected: the verdict is in
the body, where RFC 3161 clients read it. Only the HTTP envelope gets problem+json: a wrong
Content-Type is 415, a body over 64 KiB is 413. When the TSA cannot sign at all (no
certificate, HSM down) the answer is 503 with a systemFailure TimeStampResp, so that both load
balancers and RFC 3161 clients see it. Only the CA token is used: never ``tamga-cloud``.
"""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, request

from ca import active_certificate
from ca.errors import HierarchyNotReady
from ca.tsa import TSAUnavailable, rejection_response, timestamp_response
from hsm import HSMError
from policies.tsa import TSA
from signing_api.web import context
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem

__all__ = ["MAX_REQUEST_BYTES", "blueprint"]

log = logging.getLogger("tamga.tsa")
blueprint = Blueprint("tsa_http", __name__)

ACTOR = "http:tsa"
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
# A TimeStampReq is ~100 bytes (a SHA-512 imprint, a nonce, a policy); 64 KiB is generous and
# keeps a client from making a worker read megabytes for nothing.
MAX_REQUEST_BYTES = 64 * 1024


def _reply(der: bytes, status: int = 200) -> Response:
    response = Response(der, status=status, mimetype=REPLY_TYPE)
    response.cache_control.no_store = True  # every token is unique: never serve one twice
    return response


def _request_body() -> bytes:
    """The DER TimeStampReq; a Problem (415, 413) for a wrong envelope."""
    if request.mimetype != QUERY_TYPE:
        raise Problem("unsupported-media-type", f"send the TimeStampReq as {QUERY_TYPE}")
    too_large = f"a TimeStampReq is at most {MAX_REQUEST_BYTES} bytes"
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        raise Problem("payload-too-large", too_large)
    body = request.stream.read(MAX_REQUEST_BYTES + 1)  # chunked bodies have no Content-Length
    if len(body) > MAX_REQUEST_BYTES:
        raise Problem("payload-too-large", too_large)
    return body


@blueprint.post("/tsa")
@operation(
    "timeStamp",
    "RFC 3161 time-stamp: a TimeStampReq in, a TimeStampResp out (DER)",
    description=(
        "Public, no authentication. Rejections (badAlg, badDataFormat, unacceptedPolicy, "
        "unacceptedExtension) are 200 with status rejection in the TimeStampResp; "
        "systemFailure is 503."
    ),
    tag="tsa",
    roles=None,
    raw_body=QUERY_TYPE,
    responses={
        200: Reply(None, "DER TimeStampResp, granted or rejected", media_type=REPLY_TYPE),
        503: Reply(None, "DER TimeStampResp with failInfo systemFailure", media_type=REPLY_TYPE),
    },
    errors=(413, 415),
)
def timestamp() -> Response:
    body = _request_body()
    now = context.now()
    runtime = context.runtime()
    try:
        with runtime.transaction() as session:
            der = timestamp_response(session, runtime.tsa_signer, body, now=now, actor=ACTOR)
    except TSAUnavailable as ex:
        log.error("time-stamping refused: %s", ex)
        return _reply(rejection_response("system_failure", str(ex)), 503)
    except HSMError as ex:
        log.error("time-stamping failed on the HSM: %s", ex)
        return _reply(rejection_response("system_failure", "the TSA cannot sign right now"), 503)
    return _reply(der)


@blueprint.get(f"/ca/{TSA.name}.crt")
@operation(
    "getTsaCertificate",
    "The TSA certificate (DER)",
    tag="tsa",
    roles=None,
    responses={
        200: Reply(None, "DER-encoded X.509 certificate", media_type="application/pkix-cert")
    },
    errors=(404,),
)
def tsa_certificate() -> Response:
    """The TSA certificate (DER), for verifiers of tokens requested without certReq."""
    with context.runtime().transaction() as session:
        try:
            cert = active_certificate(session, TSA.name)
        except HierarchyNotReady:
            raise Problem("not-found", "the TSA has no certificate yet") from None
    response = Response(
        cert.public_bytes(serialization.Encoding.DER), mimetype="application/pkix-cert"
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response

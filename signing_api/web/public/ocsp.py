"""``POST /ocsp`` and ``GET /ocsp/<base64>`` (RFC 6960 Appendix A, RFC 5019 §5-6), ``/ca/ocsp.crt``.

Public like ``/crl`` and ``/tsa``: OCSP clients send no bearer token. Every OCSP verdict is an
OCSPResponse with HTTP 200 and ``application/ocsp-response`` — successful, ``malformedRequest``
(not an OCSPRequest, a base64 path that does not decode, more than one CertID, a nonce over 32
octets) or ``unauthorized`` (another issuer). Only the HTTP envelope gets problem+json: a POST
whose Content-Type is not ``application/ocsp-request`` is 415, a body over 64 KiB is 413
(RFC 6960 A.1 names the media type; RFC 5019 §5 has clients send ~100 bytes). When the responder
cannot sign (no responder certificate, HSM down) the answer is 503 with a ``tryLater``
OCSPResponse, which both load balancers and OCSP clients understand.

Caching (RFC 5019 §6.2), on GET of a stored answer: ``Last-Modified`` = thisUpdate (the stored
answer's producedAt is the same second in production), ``Expires`` = nextUpdate, ``ETag`` = the
DER's SHA-256, ``Cache-Control: max-age=<seconds to nextUpdate>, public, no-transform,
must-revalidate``; a matching ``If-None-Match``/``If-Modified-Since`` gets 304. Answers signed for
one request (a nonce, an unknown serial) and POST answers carry ``Cache-Control: no-store``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from flask import Blueprint, Response, request

from ca import active_certificate
from ca.errors import HierarchyNotReady
from crl import OCSPAnswer, OCSPUnavailable, malformed_response, respond, unsuccessful_response
from hsm import HSMError
from policies.ocsp import OCSP
from signing_api.web import context
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem

__all__ = ["ACTOR", "REQUEST_TYPE", "RESPONSE_TYPE", "blueprint"]

log = logging.getLogger("tamga.ocsp")
blueprint = Blueprint("ocsp_http", __name__)

ACTOR = "http:ocsp"
REQUEST_TYPE = "application/ocsp-request"
RESPONSE_TYPE = "application/ocsp-response"

_ANSWERS = {
    200: Reply(
        None,
        "DER OCSPResponse: successful, malformedRequest or unauthorized",
        media_type=RESPONSE_TYPE,
    ),
    503: Reply(None, "DER OCSPResponse with status tryLater", media_type=RESPONSE_TYPE),
}


def _reply(der: bytes, status: int = 200) -> Response:
    response = Response(der, status=status, mimetype=RESPONSE_TYPE)
    response.cache_control.no_store = True
    return response


def _cached(answer: OCSPAnswer, now: datetime) -> Response:
    """RFC 5019 §6.2 headers for a stored answer, and 304 when the client has it already."""
    if answer.this_update is None or answer.next_update is None:
        return _reply(answer.der)
    response = Response(answer.der, mimetype=RESPONSE_TYPE)
    response.set_etag(hashlib.sha256(answer.der).hexdigest())
    response.last_modified = answer.this_update
    response.expires = answer.next_update
    response.cache_control.public = True
    response.cache_control.no_transform = True
    response.cache_control.must_revalidate = True
    response.cache_control.max_age = max(0, int((answer.next_update - now).total_seconds()))
    response.make_conditional(request)  # a 304 in place when the condition holds
    return response


def _answer(body: bytes, *, cacheable: bool) -> Response:
    now = context.now()
    runtime = context.runtime()
    try:
        with runtime.transaction() as session:
            answer = respond(session, body, token=runtime.ca_token, now=now, actor=ACTOR)
    except OCSPUnavailable as ex:
        log.error("OCSP refused: %s", ex)
        return _reply(unsuccessful_response(ocsp.OCSPResponseStatus.TRY_LATER), 503)
    except HSMError as ex:
        log.error("OCSP signing failed on the HSM: %s", ex)
        return _reply(unsuccessful_response(ocsp.OCSPResponseStatus.TRY_LATER), 503)
    if cacheable and answer.cacheable:
        return _cached(answer, now)
    return _reply(answer.der)


def _request_body() -> bytes:
    """The DER OCSPRequest of a POST; a Problem (415, 413) for a wrong envelope."""
    if request.mimetype != REQUEST_TYPE:
        raise Problem("unsupported-media-type", f"send the OCSPRequest as {REQUEST_TYPE}")
    limit = OCSP.max_request_bytes
    too_large = f"an OCSPRequest is at most {limit} bytes"
    if request.content_length is not None and request.content_length > limit:
        raise Problem("payload-too-large", too_large)
    body = request.stream.read(limit + 1)  # chunked bodies have no Content-Length
    if len(body) > limit:
        raise Problem("payload-too-large", too_large)
    return body


@blueprint.post("/ocsp")
@operation(
    "ocspPost",
    "OCSP (RFC 6960): an OCSPRequest in, an OCSPResponse out (DER)",
    description=(
        "Public, no authentication. One CertID per request (RFC 5019 §2.1.1). The issuing CA's "
        "certificates are answered by the delegated responder (/ca/ocsp.crt), the issuing CA's "
        "own certificate by the root key. malformedRequest and unauthorized are 200 with that "
        "responseStatus; tryLater is 503."
    ),
    tag="ocsp",
    roles=None,
    raw_body=REQUEST_TYPE,
    responses=_ANSWERS,
    errors=(413, 415),
)
def ocsp_post() -> Response:
    return _answer(_request_body(), cacheable=False)


@blueprint.get("/ocsp/<path:encoded>", merge_slashes=False)
@operation(
    "ocspGet",
    "OCSP over GET (RFC 6960 A.1.1): the DER OCSPRequest, base64, URL-encoded, in the path",
    description=(
        "Cacheable (RFC 5019 §6): ETag, Last-Modified, Expires and Cache-Control max-age up to "
        "the answer's nextUpdate; a request with a nonce gets an answer of its own (no-store)."
    ),
    tag="ocsp",
    roles=None,
    parameters=[
        {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
        {"name": "If-Modified-Since", "in": "header", "schema": {"type": "string"}},
    ],
    responses={
        **_ANSWERS,
        200: Reply(
            None,
            "DER OCSPResponse: successful, malformedRequest or unauthorized",
            media_type=RESPONSE_TYPE,
            headers={"ETag": "", "Last-Modified": "", "Expires": "", "Cache-Control": ""},
        ),
        304: Reply(None, "The answer named by If-None-Match / If-Modified-Since"),
    },
    errors=(404,),
)
def ocsp_get(encoded: str) -> Response:
    if len(encoded) > OCSP.max_request_bytes * 2:
        return _reply(malformed_response())
    try:
        body = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return _reply(malformed_response())
    return _answer(body, cacheable=True)


@blueprint.get(f"/ca/{OCSP.name}.crt")
@operation(
    "getOcspCertificate",
    "The OCSP responder certificate (DER)",
    tag="ocsp",
    roles=None,
    responses={
        200: Reply(None, "DER-encoded X.509 certificate", media_type="application/pkix-cert")
    },
    errors=(404,),
)
def ocsp_certificate() -> Response:
    """The delegated responder's certificate in force (also inside every answer it signs)."""
    with context.runtime().transaction() as session:
        try:
            cert = active_certificate(session, OCSP.name)
        except HierarchyNotReady:
            raise Problem("not-found", "the OCSP responder has no certificate yet") from None
    response = Response(
        cert.public_bytes(serialization.Encoding.DER), mimetype="application/pkix-cert"
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response

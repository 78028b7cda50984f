"""Public routes that need no client: health, the OpenAPI document, CA certificates, the CPS."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, current_app, jsonify

from ca import active_certificate
from ca.errors import HierarchyNotReady
from signing_api.web.context import runtime
from signing_api.web.problems import Problem
from signing_api.web.public.cps import cps_text
from signing_api.web.public.health import health_report

__all__ = ["blueprint"]

blueprint = Blueprint("public", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    healthy, report = health_report(runtime())
    return jsonify(report), 200 if healthy else 503


@blueprint.get("/openapi.json")
def openapi() -> Response:
    from signing_api.web.openapi.document import openapi_document

    return jsonify(openapi_document(current_app, runtime().config.public_url))


@blueprint.get("/ca/<name>.crt")
def ca_certificate(name: str) -> Response:
    if name not in ("root", "issuing"):
        raise Problem("not-found", f"there is no CA certificate named {name!r}")
    with runtime().transaction() as session:
        try:
            cert = active_certificate(session, name)
        except HierarchyNotReady as ex:
            raise Problem("not-found", str(ex)) from None
    response = Response(
        cert.public_bytes(serialization.Encoding.DER), mimetype="application/pkix-cert"
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@blueprint.get("/cps")
def cps() -> Response:
    """The certification practice statement summary the certificates' policies point at."""
    response = Response(cps_text(runtime().config.public_url), mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response

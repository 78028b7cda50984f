"""Public routes that need no client: health, the OpenAPI document, CA certificates, the CPS."""

from __future__ import annotations

from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, current_app, jsonify
from pydantic import BaseModel, ConfigDict

from ca import active_certificate
from ca.errors import HierarchyNotReady
from signing_api.web.context import runtime
from signing_api.web.contract import Reply, View, operation
from signing_api.web.problems import Problem
from signing_api.web.public.cps import cps_text
from signing_api.web.public.health import health_report

__all__ = ["blueprint"]

blueprint = Blueprint("public", __name__)


class Health(View):
    status: Literal["ok", "unavailable"]
    worker_pid: int
    checks: dict[str, dict[str, Any]]


@blueprint.get("/healthz")
@operation(
    "getHealth",
    "Database and both HSM tokens answer (each token signs a challenge)",
    tag="operations",
    roles=None,
    responses={200: Reply(Health, "Healthy"), 503: Reply(Health, "A component is down")},
)
def healthz() -> tuple[Response, int]:
    healthy, report = health_report(runtime())
    return jsonify(report), 200 if healthy else 503


class OpenApiDocument(BaseModel):
    model_config = ConfigDict(extra="allow")
    openapi: str


@blueprint.get("/openapi.json")
@operation(
    "getOpenApi",
    "This document",
    tag="operations",
    roles=None,
    responses={200: Reply(OpenApiDocument, "OpenAPI 3.1 document")},
)
def openapi() -> Response:
    from signing_api.web.openapi.document import openapi_document

    return jsonify(openapi_document(current_app, runtime().config.public_url))


@blueprint.get("/ca/<name>.crt")
@operation(
    "get{name}Certificate",
    "A certificate of the CA (DER): root, issuing, the dispatch-confirmation or the audit"
    " checkpoint signer's",
    tag="ca",
    roles=None,
    expand={"name": ("root", "issuing", "dispatch", "audit")},
    responses={
        200: Reply(None, "DER-encoded X.509 certificate", media_type="application/pkix-cert")
    },
    errors=(404,),
)
def ca_certificate(name: str) -> Response:
    if name not in ("root", "issuing", "dispatch", "audit"):
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
@operation(
    "getCps",
    "The certification practice statement summary (the CPS URI)",
    tag="ca",
    roles=None,
    responses={200: Reply(None, "Plain text, UTF-8", media_type="text/plain")},
)
def cps() -> Response:
    """The certification practice statement summary the certificates' policies point at."""
    response = Response(cps_text(runtime().config.public_url), mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response

"""``create_app(config)``: the Flask application, the single composition root for HTTP."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ca import active_certificate
from ca.errors import HierarchyNotReady
from signing_api.billing_api import billing_api
from signing_api.certificates_api import certificates_api
from signing_api.config import Config
from signing_api.cps import cps_text
from signing_api.crl_http import crl_http
from signing_api.csc import csc
from signing_api.health import health_report
from signing_api.openapi import openapi_document
from signing_api.osmp import osmp
from signing_api.problems import PROBLEM_TYPES, Problem
from signing_api.registry_api import registry_api
from signing_api.renewals_api import renewals_api
from signing_api.revocation_api import revocation_api
from signing_api.runtime import Runtime
from signing_api.signatures_api import signatures_api
from signing_api.tsa_http import tsa_http

__all__ = ["create_app"]

log = logging.getLogger("tamga.http")
public = Blueprint("public", __name__)

_STATUS_SLUGS = {p.status: p.slug for p in PROBLEM_TYPES.values()}


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["tamga"]
    return runtime


@public.get("/healthz")
def healthz() -> tuple[Response, int]:
    healthy, report = health_report(_runtime())
    return jsonify(report), 200 if healthy else 503


@public.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(_runtime().config.public_url))


@public.get("/ca/<name>.crt")
def ca_certificate(name: str) -> Response:
    if name not in ("root", "issuing"):
        raise Problem("not-found", f"there is no CA certificate named {name!r}")
    with _runtime().transaction() as session:
        try:
            cert = active_certificate(session, name)
        except HierarchyNotReady as ex:
            raise Problem("not-found", str(ex)) from None
    response = Response(
        cert.public_bytes(serialization.Encoding.DER), mimetype="application/pkix-cert"
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@public.get("/cps")
def cps() -> Response:
    """The certification practice statement summary the certificates' policies point at."""
    response = Response(cps_text(_runtime().config.public_url), mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _problem_response(problem: Problem) -> Response:
    return Response(
        problem.body(request.path), status=problem.type.status, mimetype="application/problem+json"
    )


def _on_problem(problem: Problem) -> Response:
    return _problem_response(problem)


def _on_http_error(ex: HTTPException) -> Response:
    slug = _STATUS_SLUGS.get(
        ex.code or 500, "bad-request" if (ex.code or 500) < 500 else "internal-error"
    )
    response = _problem_response(Problem(slug, ex.description or PROBLEM_TYPES[slug].title))
    if ex.code == 405 and isinstance(ex, HTTPException):
        allowed = ex.get_response().headers.get("Allow")
        if allowed:
            response.headers["Allow"] = allowed
    return response


def _on_unexpected(ex: Exception) -> Response:
    # The exception goes to the log only; the client learns nothing about internals.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _problem_response(
        Problem("internal-error", "the server failed to answer; the error is logged")
    )


def create_app(config: Config | None = None) -> Flask:
    """Build the application. PKCS#11 is not touched here: tokens open on first use."""
    config = config or Config.from_env()
    app = Flask("tamga")
    app.config["JSON_SORT_KEYS"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Cyrillic names stay readable
    app.extensions["tamga"] = Runtime(config)
    app.register_blueprint(public)
    app.register_blueprint(billing_api)
    app.register_blueprint(osmp)
    app.register_blueprint(crl_http)
    app.register_blueprint(tsa_http)  # its static /ca/tsa.crt outranks /ca/<name>.crt
    for blueprint in (
        registry_api,
        certificates_api,
        revocation_api,
        renewals_api,
        csc,
        signatures_api,
    ):
        app.register_blueprint(blueprint)
    app.register_error_handler(Problem, _on_problem)
    app.register_error_handler(HTTPException, _on_http_error)
    app.register_error_handler(Exception, _on_unexpected)
    return app

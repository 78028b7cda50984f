"""The agency gateway's HTTP interface (docs/agency-protocol.md)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from agency_stub.protocol import BadReport, parse_report
from agency_stub.service import Conflict, Stub

__all__ = ["RECEIPT_CONTENT_TYPE", "create_app"]

RECEIPT_CONTENT_TYPE = "application/pkcs7-mime; smime-type=signed-data"
MAX_BODY = 64 * 1024 * 1024

log = logging.getLogger("agency_stub")


def problem(status: int, kind: str, detail: str) -> Response:
    """An RFC 9457 problem document."""
    body = {"type": f"urn:agency-stub:{kind}", "title": kind, "status": status, "detail": detail}
    return Response(json.dumps(body), status, content_type="application/problem+json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_body() -> Any:
    try:
        return json.loads(request.get_data() or b"null", parse_constant=_reject_constant)
    except ValueError as ex:
        raise BadReport(f"the body is not JSON: {ex}") from ex


def _mode_refusal(mode: str) -> Response | None:
    if mode == "down":
        return problem(503, "down", "the agency gateway is down (stub mode 'down')")
    if mode == "error":
        return problem(500, "error", "the agency gateway failed (stub mode 'error')")
    return None


def create_app(stub: Stub) -> Flask:
    app = Flask("agency_stub")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    @app.errorhandler(HTTPException)
    def http_error(ex: HTTPException) -> Response:
        code = ex.code or 500
        return problem(code, (ex.name or "error").lower().replace(" ", "-"), ex.description or "")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", agency=stub.agency, mode=stub.controls.current.mode)

    @app.put("/reports/<report_id>")
    def put_report(report_id: str) -> Response:
        settings = stub.controls.current
        refusal = _mode_refusal(settings.mode)
        if refusal is not None:
            return refusal
        if request.mimetype != "application/json":
            return problem(415, "unsupported-media-type", "send the report as application/json")
        try:
            report = parse_report(report_id, _json_body(), stub.agency)
        except ValueError as ex:  # BadReport, JSONDecodeError, bad UTF-8
            return problem(400, "bad-report", str(ex))
        try:
            receipt = stub.receive(report, settings)
        except Conflict as ex:
            return problem(409, "conflict", str(ex))
        if settings.mode == "slow":
            # registered already: a client that gives up and retries gets the same receipt
            time.sleep(settings.delay)
        return Response(receipt, 200, content_type=RECEIPT_CONTENT_TYPE)

    @app.get("/reports")
    def reports() -> Response:
        return jsonify(stub.store.reports())

    @app.get("/control")
    def get_control() -> Response:
        return jsonify(stub.controls.as_json())

    @app.post("/control")
    def post_control() -> Response:
        try:
            settings = stub.controls.update(_json_body())
        except ValueError as ex:  # ControlError, BadReport (not JSON)
            return problem(400, "bad-control", str(ex))
        log.info("controls now %s", settings)
        return jsonify(stub.controls.as_json())

    @app.get("/receipt-certificate")
    def receipt_certificate() -> Response:
        return Response(stub.keys.receipt_pem(), 200, content_type="application/x-pem-file")

    @app.get("/ca-certificate")
    def ca_certificate() -> Response:
        return Response(stub.keys.root_pem(), 200, content_type="application/x-pem-file")

    return app

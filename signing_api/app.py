"""``create_app(config)``: the Flask application, the single composition root for HTTP."""

from __future__ import annotations

import logging
import os

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from signing_api.config import Config
from signing_api.runtime import Runtime
from signing_api.web.blueprints import ROUTE_MODULES
from signing_api.web.contract import check_response
from signing_api.web.limits import install_limits
from signing_api.web.problems import DOMAIN_ROOTS, PROBLEM_TYPES, DomainError, Problem, problem_of

__all__ = ["create_app"]

log = logging.getLogger("tamga.http")

_STATUS_SLUGS = {p.status: p.slug for p in PROBLEM_TYPES.values()}


def _problem_response(problem: Problem) -> Response:
    return Response(
        problem.body(request.path), status=problem.type.status, mimetype="application/problem+json"
    )


def _on_problem(problem: Problem) -> Response:
    return _problem_response(problem)


def _on_domain_error(ex: DomainError) -> Response:
    return _problem_response(problem_of(ex))


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


class _DatabaseId(BaseConverter):
    """``<int:...>`` in a path: a database id, ASCII digits only (``/holders/٣`` is no id).

    A number no row can have (0, a leading zero, beyond a signed 64-bit id) is read as 0,
    which names no row: the route answers 404 like any unknown id. Refusing it in the converter
    instead would make werkzeug answer 405 when the same path has a rule for another method.
    """

    regex = "[0-9]{1,64}"
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        if value.startswith("0") or len(value) > 19 or int(value) > _MAX_ID:
            return 0
        return int(value)

    def to_url(self, value: object) -> str:
        return str(int(value))  # type: ignore[call-overload]


_MAX_ID = 2**63 - 1


def create_app(config: Config | None = None) -> Flask:
    """Build the application. PKCS#11 is not touched here: tokens open on first use."""
    config = config or Config.from_env()
    app = Flask("tamga")
    app.url_map.converters["int"] = _DatabaseId
    app.config["JSON_SORT_KEYS"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Cyrillic names stay readable
    app.extensions["tamga"] = Runtime(config)
    # Development and tests: every JSON answer is checked against its route's declared model.
    app.config["TAMGA_CHECK_RESPONSES"] = os.environ.get("TAMGA_CHECK_RESPONSES") == "1"
    for module in ROUTE_MODULES:
        app.register_blueprint(module.blueprint)
    install_limits(app, config)  # body sizes, rate limits (429), failed-login counts
    if config.trusted_proxies:
        # Behind the front (docs/deployment.md): the client address is the one the last
        # ``trusted_proxies`` hops wrote in X-Forwarded-For; without it, the socket peer.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies)  # type: ignore[method-assign]
    app.after_request(check_response)
    app.register_error_handler(Problem, _on_problem)
    for root in DOMAIN_ROOTS:
        app.register_error_handler(root, _on_domain_error)
    app.register_error_handler(HTTPException, _on_http_error)
    app.register_error_handler(Exception, _on_unexpected)
    return app

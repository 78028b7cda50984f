"""What one client may cost the service: body sizes and request rates.

**Bodies.** Each route reads at most its limit (:data:`BODY_LIMITS`, else
:data:`DEFAULT_BODY_LIMIT`): a declared ``Content-Length`` above it is answered 413 before
anything is read, and a chunked body is cut at the limit as it is read. The front
(``deploy/nginx/tamga.conf``) has the same sizes per location; a unit test keeps them equal.

**Rates** (Flask-Limiter, moving window), answered 429 problem+json with ``Retry-After``:

- *failed authentication, per client address* (``TAMGA_LIMIT_AUTH_FAILURES``, 10/minute): a 401
  on a route that authenticates, or a 403 from the OSMP allow-list, counts. Once the address
  has used it up, those routes answer it 429 before its credentials are looked at: no database
  read, no journal row (the 429s are counted in the address's ``login.failed`` summary,
  ``web/failures.py``). Clients at other addresses are not affected; allow-listed OSMP providers
  and clients with valid tokens never count, and a token this worker authenticated in the last
  10 minutes passes even from a throttled address (``failures.KnownCredentials``).
- *per credential* (``TAMGA_LIMIT_CLIENT``, 1200/minute): every request bearing a token, keyed
  by the token's SHA-256 (never the token itself), on the routes that authenticate.
- *public routes, per client address* (``TAMGA_LIMIT_PUBLIC``, 300/minute): ``/healthz`` (which
  signs on both tokens), ``/tsa`` (signs), ``/ocsp``, CRLs and CA certificates, ``/audit``,
  ``/cps``, ``/openapi.json``, ``/csc/v1/info``. Relying parties that fetch CRLs in bulk should
  go through the published files (``publish/crl/``) on a web server or CDN.
- *OSMP* (``/payments/osmp/...``): only the failure limit above. An allow-listed provider is
  never limited: its payments are answered in its own protocol, which has no 429.

The counts are kept in memory in each gunicorn worker (``memory://``): Tamga's database is not
a fast counter store and no other service is assumed. So a client may get up to ``workers x
nodes`` times a limit before every worker refuses it; the failure journal is bounded the same
way. Behind the front every client seems to come from nginx unless ``TAMGA_TRUSTED_PROXIES``
is 1 (werkzeug's ``ProxyFix`` for exactly that many hops): see docs/deployment.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limit, Limiter, RateLimitExceeded, RequestLimit
from werkzeug.exceptions import RequestEntityTooLarge

from policies.providers import PROVIDERS
from signing_api.config import Config
from signing_api.runtime import Runtime
from signing_api.web.auth import AUTHENTICATES
from signing_api.web.failures import (
    client_address,
    credential_digest,
    failure_journal,
    known_credentials,
)
from signing_api.web.problems import Problem

__all__ = [
    "BODY_LIMITS",
    "DEFAULT_BODY_LIMIT",
    "MIB",
    "body_limit",
    "flush_failures",
    "install_limits",
]

MIB = 1024 * 1024
DEFAULT_BODY_LIMIT = 1 * MIB
# endpoint → its body limit, where the default is not enough
BODY_LIMITS: dict[str, int] = {
    "signatures.sign_document": 28 * MIB,  # a 20 MiB document, base64 in JSON
    "renewals.upload": 11 * MIB,  # a 10 MiB supporting document, multipart
    "reports.file_report": 14 * MIB,  # a 10 MiB report, base64 in JSON
    "disputes.open_dispute": 41 * MIB,  # disputed material (e.g. a 20 MiB document), multipart
    # the commission's page: a signed file (12 MiB at most) and its document, multipart
    "disputes_ui.verify": 13 * MIB,
    # the result page's re-post of the same files, base64 in form fields
    "disputes_ui.report_pdf_download": 18 * MIB,
}
_OSMP_BLUEPRINT = "osmp"


def body_limit(endpoint: str | None) -> int:
    return BODY_LIMITS.get(endpoint or "", DEFAULT_BODY_LIMIT)


def _limit_body() -> None:
    limit = body_limit(request.endpoint)
    request.max_content_length = limit  # werkzeug cuts a chunked body at the limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"this route accepts a body of at most {limit} bytes")


# --- which limits apply to a request --------------------------------------------------------------


def _authenticates() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, AUTHENTICATES, False))


def _is_osmp() -> bool:
    return request.blueprint == _OSMP_BLUEPRINT


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _credential_key() -> str:
    return "credential:" + credential_digest(_bearer())


def _known_credential() -> bool:
    """The request bears a token this worker authenticated lately (no database read)."""
    token = _bearer()
    return bool(token) and known_credentials().known(credential_digest(token), _runtime().now())


def _failed(response: Response) -> bool:
    return response.status_code == 401 or (_is_osmp() and response.status_code == 403)


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["tamga"]
    return runtime


def _remember_retry(limit: RequestLimit) -> None:
    g.tamga_retry_after = max(1, math.ceil(limit.reset_at - time.time()))


def _on_failure_limit(limit: RequestLimit) -> None:
    _remember_retry(limit)
    journal, address = failure_journal(), client_address()
    if _is_osmp():
        provider = (request.view_args or {}).get("provider", "")
        name = provider if provider in PROVIDERS else "unknown"  # a bounded set of objects
        journal.throttled(_runtime(), address, action="billing.osmp.refused", object=f"osmp:{name}")
    else:
        journal.throttled(_runtime(), address)


def _limits(config: Config) -> list[Limit]:
    def limit(
        text: str,
        scope: str,
        key: Callable[[], str],
        exempt: Callable[[], bool],
        **extra: Any,
    ) -> Limit:
        return Limit(
            text,
            key_function=key,
            scope=scope,
            shared=True,
            exempt_when=exempt,
            on_breach=extra.pop("on_breach", _remember_retry),
            **extra,
        )

    return [
        limit(
            config.limit_auth_failures,
            "auth-failures",
            client_address,
            lambda: not (_authenticates() or _is_osmp()) or _known_credential(),
            deduct_when=_failed,
            on_breach=_on_failure_limit,
            error_message="too many failed authentications from this address; retry later",
        ),
        limit(
            config.limit_client,
            "credential",
            _credential_key,
            lambda: not (_authenticates() and _bearer()),
            error_message="too many requests with this credential; retry later",
        ),
        limit(
            config.limit_public,
            "public",
            client_address,
            lambda: _authenticates() or _is_osmp(),
            error_message="too many requests from this address; retry later",
        ),
    ]


def _on_limited(ex: RateLimitExceeded) -> Response:
    retry = getattr(g, "tamga_retry_after", None) or max(1, ex.limit.limit.get_expiry())
    problem = Problem("too-many-requests", ex.description or "too many requests; retry later")
    response = Response(
        problem.body(request.path),
        status=problem.type.status,
        mimetype="application/problem+json",
    )
    response.headers["Retry-After"] = str(retry)
    return response


def _sweep_failures() -> None:
    failure_journal().sweep(_runtime())


def install_limits(app: Flask, config: Config) -> Limiter:
    """Body limits, rate limits and the failure journal's sweep, on ``app``."""
    app.before_request(_limit_body)
    app.before_request(_sweep_failures)
    limiter = Limiter(
        client_address,
        app=app,
        default_limits=_limits(config),  # type: ignore[arg-type]
        storage_uri="memory://",
        strategy="moving-window",
        headers_enabled=False,
        enabled=config.rate_limits,
    )
    app.register_error_handler(RateLimitExceeded, _on_limited)
    return limiter


def flush_failures(app: Flask) -> None:
    """Journal every open failure count now (a worker stopping)."""
    failure_journal(app).sweep(app.extensions["tamga"], everything=True)

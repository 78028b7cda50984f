"""What every route reads from its request context: the runtime, the clock, the caller, the body.

This module imports no route module, so every route module can import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flask import Response, current_app, g, jsonify, request
from sqlalchemy.orm import Session

from signing_api.mail import Delivery, deliver
from signing_api.runtime import Runtime
from signing_api.web.problems import Problem

__all__ = ["actor", "json_body", "now", "reply", "runtime", "send_mail", "transaction"]


def runtime() -> Runtime:
    """This worker's runtime (configuration, database, tokens, clock)."""
    rt: Runtime = current_app.extensions["tamga"]
    return rt


def now() -> datetime:
    """The time, from the runtime's clock (tests move it: ``runtime.clock = ...``)."""
    return runtime().now()


@contextmanager
def transaction() -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on any error.

    A domain error raised inside rolls back and reaches the app's handler, which answers it
    with its problem+json (``signing_api.web.problems``).
    """
    with runtime().transaction() as session:
        yield session


def send_mail(ids: list[int] | None = None) -> Delivery:
    """Hand committed outbox messages (``ids``, or any pending) to SMTP; never raises for SMTP.

    Call it after the transaction that wrote them has committed; what fails stays in the
    outbox for ``tamga mail send``.
    """
    rt = runtime()
    return deliver(
        rt.transaction,
        smtp_url=rt.config.smtp_url,
        sender=rt.config.mail_from,
        now=rt.now(),
        ids=ids,
        limit=20,
    )


def actor() -> str:
    """The audit journal's name for the calling client."""
    return f"client:{g.client_id}"


def reply(body: Any, status: int = 200, *, location: str | None = None) -> Response:
    """A JSON answer; echoes ``Idempotency-Key``."""
    response = jsonify(body)
    response.status_code = status
    if location:
        response.headers["Location"] = location
    if (key := request.headers.get("Idempotency-Key")) is not None:
        response.headers["Idempotency-Key"] = key
    return response


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Problem("bad-request", "the body must be a JSON object (application/json)")
    return data

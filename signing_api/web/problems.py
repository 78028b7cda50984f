"""The one table of wire errors: RFC 9457 problem types Tamga answers with.

Routes raise :class:`Problem`; the app renders it as ``application/problem+json``. Types are
stable URNs; ``title`` is fixed per type, ``detail`` says what went wrong this time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROBLEM_TYPES", "Problem", "ProblemType"]


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        return f"urn:tamga:problem:{self.slug}"


PROBLEM_TYPES: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        ProblemType("bad-request", "The request is malformed", 400),
        ProblemType("unauthorized", "Authentication is required", 401),
        ProblemType("forbidden", "This client may not do that", 403),
        ProblemType("not-found", "No such resource", 404),
        ProblemType("method-not-allowed", "Method not allowed on this resource", 405),
        ProblemType("insufficient-funds", "The balance does not cover the amount", 402),
        ProblemType("payment-required", "The price must be paid first", 402),
        ProblemType("conflict", "The request conflicts with the current state", 409),
        ProblemType("account-terminated", "The subscriber's contract is terminated", 409),
        ProblemType(
            "idempotency-conflict", "The idempotency key was used for a different request", 422
        ),
        ProblemType("validation-failed", "The request has invalid fields", 422),
        ProblemType("certificate-refused", "The certificate cannot be issued as requested", 422),
        ProblemType(
            "unsupported-media-type", "The request body has an unsupported media type", 415
        ),
        ProblemType("payload-too-large", "The request body is too large", 413),
        ProblemType("internal-error", "Internal server error", 500),
        ProblemType("unavailable", "A component the service needs is unavailable", 503),
    )
}


@dataclass
class Problem(Exception):
    """An error to send as problem+json. ``errors`` maps field names to messages."""

    slug: str
    detail: str
    errors: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.slug not in PROBLEM_TYPES:
            raise ValueError(f"unknown problem type {self.slug!r}")

    @property
    def type(self) -> ProblemType:
        return PROBLEM_TYPES[self.slug]

    def body(self, instance: str | None = None) -> str:
        doc: dict[str, Any] = {
            "type": self.type.uri,
            "title": self.type.title,
            "status": self.type.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = [{"field": k, "detail": v} for k, v in self.errors.items()]
        doc.update(self.extra)
        return json.dumps(doc, ensure_ascii=False)

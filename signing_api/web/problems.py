"""The one table of wire errors: RFC 9457 problem types, and which domain error becomes which.

Routes raise :class:`Problem`, or let a domain error (``CAError``, ``BillingError``, ``CRLError``)
escape: the app renders either as ``application/problem+json`` through :func:`problem_of`. Types
are stable URNs; ``title`` is fixed per type, ``detail`` says what went wrong this time. To add an
error: a subclass in its domain's ``errors.py``, and a row in :data:`DOMAIN_PROBLEMS` if its
parent's problem type is not the right one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import billing
import filing
from ca.cms import CMSInvalid
from ca.errors import (
    CAError,
    Conflict,
    IdentityNotVerified,
    InvalidField,
    InvalidFields,
    KeyRefused,
    LintFailed,
    NotAllowed,
    PaymentRequired,
    UsageRefused,
)
from ca.errors import NotFound as CANotFound
from crl import CRLError, ForeignIssuer, UnknownIssuer
from signing_api.cloud.errors import Refusal, SigningRefused
from signing_api.verification import errors as disputes

__all__ = [
    "DOMAIN_PROBLEMS",
    "PROBLEM_TYPES",
    "REFUSAL_PROBLEMS",
    "DomainError",
    "Problem",
    "ProblemType",
    "problem_of",
]


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
            "identity-not-verified",
            "The holder's identity was not verified by the registration authority",
            409,
        ),
        ProblemType(
            "idempotency-conflict", "The idempotency key was used for a different request", 422
        ),
        ProblemType("validation-failed", "The request has invalid fields", 422),
        ProblemType("certificate-refused", "The certificate cannot be issued as requested", 422),
        ProblemType(
            "unsupported-media-type", "The request body has an unsupported media type", 415
        ),
        ProblemType("payload-too-large", "The request body is too large", 413),
        ProblemType("too-many-requests", "Too many requests; retry later", 429),
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


DomainError = (
    CAError
    | billing.BillingError
    | CRLError
    | SigningRefused
    | filing.FilingError
    | disputes.DisputeError
)
DOMAIN_ROOTS: tuple[type[Exception], ...] = (
    CAError,
    billing.BillingError,
    CRLError,
    SigningRefused,
    filing.FilingError,
    disputes.DisputeError,
)

# Domain errors → problem slugs, looked up along the MRO: a subclass without its own row takes
# its parent's. Every domain's root error has a row, so every domain error has an answer.
DOMAIN_PROBLEMS: dict[type[Exception], str] = {
    # ca
    CAError: "conflict",
    CANotFound: "not-found",
    NotAllowed: "forbidden",
    Conflict: "conflict",
    IdentityNotVerified: "identity-not-verified",
    InvalidField: "validation-failed",
    CMSInvalid: "validation-failed",
    KeyRefused: "certificate-refused",
    LintFailed: "certificate-refused",
    PaymentRequired: "payment-required",
    UsageRefused: "forbidden",
    # billing
    billing.BillingError: "conflict",
    billing.InsufficientFunds: "insufficient-funds",
    billing.AccountTerminated: "account-terminated",
    billing.IdempotencyConflict: "idempotency-conflict",
    billing.NotFound: "not-found",  # AccountNotFound too
    billing.AccountExists: "conflict",
    billing.InvalidAmount: "validation-failed",
    billing.MalformedAccount: "validation-failed",
    billing.InvalidName: "validation-failed",
    # crl
    CRLError: "conflict",
    UnknownIssuer: "not-found",
    ForeignIssuer: "not-found",
    # filing
    filing.FilingError: "conflict",
    filing.NotFound: "not-found",
    filing.InvalidReport: "validation-failed",
    filing.SignatureRefused: "validation-failed",
    filing.FilingConflict: "conflict",
    filing.IdempotencyConflict: "idempotency-conflict",
    filing.AgencyAnswerInvalid: "validation-failed",
    # disputes (signing_api.verification)
    disputes.DisputeError: "conflict",
    disputes.InvalidDispute: "validation-failed",
    disputes.DisputeNotFound: "not-found",
    disputes.DisputeIdempotencyConflict: "idempotency-conflict",
    disputes.DisputePaymentRequired: "payment-required",
}


# Cloud signing refusals: as problem+json on the JSON API, and as CSC errors (code, HTTP status)
# on /csc/v1 (CSC API v1.0.4 §10.1).
REFUSAL_PROBLEMS: dict[Refusal, str] = {
    Refusal.INVALID_REQUEST: "validation-failed",
    Refusal.INVALID_PIN: "validation-failed",
    Refusal.INVALID_OTP: "validation-failed",
    Refusal.ACCESS_DENIED: "forbidden",
    Refusal.UNAVAILABLE: "unavailable",
}
CSC_REFUSALS: dict[Refusal, tuple[str, int]] = {
    Refusal.INVALID_REQUEST: ("invalid_request", 400),
    Refusal.INVALID_PIN: ("invalid_pin", 400),
    Refusal.INVALID_OTP: ("invalid_otp", 400),
    Refusal.ACCESS_DENIED: ("access_denied", 403),
    Refusal.UNAVAILABLE: ("server_error", 503),
}


def problem_of(ex: DomainError) -> Problem:
    """The problem+json for a domain refusal, with its field errors and figures."""
    if isinstance(ex, SigningRefused):
        slug = REFUSAL_PROBLEMS[ex.reason]
        fields = {} if ex.reason is Refusal.UNAVAILABLE else {ex.field or "request": ex.message}
        return Problem(slug, ex.message, errors=fields)
    slug = next(DOMAIN_PROBLEMS[cls] for cls in type(ex).__mro__ if cls in DOMAIN_PROBLEMS)
    errors: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(ex, InvalidFields):
        errors = dict(ex.errors)
    elif isinstance(ex, InvalidField):
        errors = {ex.field: ex.message}
    elif isinstance(ex, UsageRefused):
        errors = {ex.field or "request": ex.message}
    elif isinstance(ex, KeyRefused):
        errors = {ex.field: str(ex)}
    elif isinstance(ex, filing.SignatureRefused):
        errors = dict(ex.errors)
        extra = {"problems": list(ex.problems)}
    elif isinstance(ex, filing.FilingError):
        errors = dict(ex.errors)
    elif isinstance(ex, CMSInvalid):
        errors = {"signature": str(ex)}
    elif isinstance(ex, LintFailed):
        extra = {"lint_findings": [str(f) for f in ex.findings]}
    elif isinstance(ex, PaymentRequired | disputes.DisputePaymentRequired):
        extra = {"amount_due": ex.amount_due, "payment_account": ex.payment_account}
    elif isinstance(ex, disputes.DisputeError):
        errors = dict(ex.errors)
    elif isinstance(ex, billing.InsufficientFunds):
        extra = {"due": ex.due, "available": ex.available, "amount": ex.amount}
    return Problem(slug, str(ex), errors=errors, extra=extra)

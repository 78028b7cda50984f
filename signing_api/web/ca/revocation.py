"""HTTP routes of the CA: suspend, resume and revoke a certificate.

``POST /api/v1/certificates/<serial>/revoke`` ``{reason, invalidity_date?, note?}``,
``.../suspend`` ``{note?}``, ``.../resume`` ``{note?}``. An officer may act on any certificate;
a portal acts for the holder it names in ``X-Tamga-Holder`` (its own certificate, or any of
its company's when it heads the company). After the change commits, the issuing CA's CRL is
reissued and written for static serving at once (the policy allows 5 minutes; we take none),
and a revoked cloud key is destroyed in the HSM.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Response

from ca.issuance import get_certificate
from ca.models import Certificate
from ca.revocation import Actor, destroy_revoked_key, resume, revoke, suspend
from hsm import HSMError
from policies.roles import ClientRole
from signing_api.web.auth import require_client
from signing_api.web.ca.certificates import certificate_json
from signing_api.web.common import acting_holder, ca_transaction, is_officer, require_visible
from signing_api.web.context import actor, json_body, now, reply, runtime
from signing_api.web.problems import Problem
from signing_api.web.public.crl import refresh_published

__all__ = ["OPENAPI", "after_status_change", "blueprint", "parse_instant"]

log = logging.getLogger(__name__)
blueprint = Blueprint("revocation", __name__)
_CALLERS = (ClientRole.OFFICER, ClientRole.PORTAL)


def parse_instant(value: object, field: str) -> datetime | None:
    """An ISO 8601 instant with its offset (``2026-11-23T08:00:00Z``), or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Problem("validation-failed", f"{field} is a string", errors={field: "a string"})
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Problem(
            "validation-failed",
            f"{field} is an ISO 8601 time with its offset, e.g. 2026-11-23T08:00:00Z",
            errors={field: "an ISO 8601 time with offset"},
        )
    return moment


def after_status_change(row_id: int, moment: datetime) -> None:
    """Reissue the issuing CA's CRL and destroy a revoked cloud key (after the commit)."""
    rt = runtime()
    try:
        refresh_published(rt, "issuing", moment)
    except Problem:
        log.error("the CRL could not be reissued now; the next fetch reissues it")
    with rt.transaction() as session:
        row = session.get_one(Certificate, row_id)
        try:
            destroy_revoked_key(session, row, rt.cloud_token, now=moment)
        except HSMError as ex:  # pragma: no cover - the key stays; an officer retries
            log.error("cannot destroy the key of %s: %s", row.serial, ex)


def _change(serial: str, action: str) -> Response:
    body = json_body()
    allowed = {"note"} | ({"reason", "invalidity_date"} if action == "revoke" else set())
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Problem(
            "validation-failed", f"unknown field {unknown[0]}", errors={unknown[0]: "unknown"}
        )
    moment = now()
    with ca_transaction() as session:
        row = get_certificate(session, serial)
        require_visible(session, row.subscriber_inn, "certificate")
        holder = acting_holder(session)
        who = Actor(actor(), officer=is_officer(), holder_id=None if holder is None else holder.id)
        if action == "revoke":
            when = parse_instant(body.get("invalidity_date"), "invalidity_date")
            row = revoke(session, row, reason=body.get("reason"), invalidity_date=when,
                         note=body.get("note"), now=moment, who=who)  # fmt: skip
        elif action == "suspend":
            row = suspend(session, row, note=body.get("note"), now=moment, who=who)
        else:
            row = resume(session, row, note=body.get("note"), now=moment, who=who)
        row_id = row.id
    after_status_change(row_id, moment)
    with ca_transaction() as session:
        view = certificate_json(session, session.get_one(Certificate, row_id), now=moment)
    return reply(view)


@blueprint.post("/api/v1/certificates/<serial>/revoke")
@require_client(*_CALLERS)
def revoke_certificate(serial: str) -> Response:
    return _change(serial, "revoke")


@blueprint.post("/api/v1/certificates/<serial>/suspend")
@require_client(*_CALLERS)
def suspend_certificate(serial: str) -> Response:
    return _change(serial, "suspend")


@blueprint.post("/api/v1/certificates/<serial>/resume")
@require_client(*_CALLERS)
def resume_certificate(serial: str) -> Response:
    return _change(serial, "resume")


_PROBLEM = {"description": "problem+json", "content": {"application/problem+json": {}}}
_SERIAL = {"name": "serial", "in": "path", "required": True, "schema": {"type": "string"}}
_HOLDER = {"name": "X-Tamga-Holder", "in": "header", "schema": {"type": "string"}}
_REASONS = ["unspecified", "keyCompromise", "affiliationChanged", "superseded",
            "cessationOfOperation"]  # fmt: skip


def _operation(op_id: str, summary: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": op_id,
            "summary": summary,
            "parameters": [_SERIAL, _HOLDER],
            "requestBody": {"content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {
                    "description": "the certificate after the change",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Certificate"}}
                    },
                },
                **{code: _PROBLEM for code in ("403", "404", "409", "422")},
            },
        }
    }


_NOTE = {"note": {"type": "string", "maxLength": 1000}}
OPENAPI: dict[str, Any] = {
    "paths": {
        "/api/v1/certificates/{serial}/revoke": _operation(
            "revokeCertificate",
            "Revoke for good (RFC 5280 reason; invalidity_date for keyCompromise)",
            {
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "reason": {"type": "string", "enum": _REASONS},
                    "invalidity_date": {"type": "string", "format": "date-time"},
                    **_NOTE,
                },
            },
        ),
        "/api/v1/certificates/{serial}/suspend": _operation(
            "suspendCertificate",
            "Suspend (certificateHold)",
            {"type": "object", "properties": _NOTE},
        ),
        "/api/v1/certificates/{serial}/resume": _operation(
            "resumeCertificate", "Lift a suspension", {"type": "object", "properties": _NOTE}
        ),
    },
    "components": {},
}

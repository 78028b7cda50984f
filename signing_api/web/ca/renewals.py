"""HTTP routes of the CA: certificate renewal (seed 003, contract §18.2).

* ``GET /api/v1/certificates/<serial>/renewal-request`` — the request text to sign
  (``text/plain; charset=utf-8``), exactly the bytes the detached CMS signature must cover;
* ``POST /api/v1/renewals`` ``{serial, document, signature, csr_pem?}`` — the signed request:
  201 with the renewal (``status`` ``issued`` with ``new_serial``, or ``review``); 402 when the
  balance does not cover the price (nothing recorded);
* ``GET /api/v1/renewals?status=``, ``GET /api/v1/renewals/<id>``;
* ``POST /api/v1/renewals/<id>/documents`` (multipart ``file``) — supporting documents;
* ``POST /api/v1/renewals/<id>/approve`` ``{note?}`` and ``.../reject`` ``{note}`` — officers;
* ``POST /api/v1/certificates/<serial>/auto-renewal`` ``{enabled}`` — cancel or restore the
  automatic renewal until 30 days before expiry.

A portal acts for the holder named in ``X-Tamga-Holder``: only the certificate's own holder
signs its renewal.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.issuance import get_certificate
from ca.models import Certificate, RenewalDocument, RenewalRequest
from ca.renewal import (
    Issuers,
    add_document,
    approve_renewal,
    get_renewal,
    reject_renewal,
    renewal_terms,
    set_auto_renew,
    submit_renewal,
)
from ca.revocation import Actor, authorise
from policies.dates import iso_utc
from policies.roles import ClientRole
from signing_api.web.auth import require_client
from signing_api.web.ca.certificates import certificate_json
from signing_api.web.common import (
    acting_holder,
    ca_refusals,
    ca_transaction,
    is_officer,
    require_visible,
    visible_inns,
)
from signing_api.web.context import actor, json_body, now, reply, runtime
from signing_api.web.problems import Problem

__all__ = ["OPENAPI", "blueprint", "renewal_json"]

blueprint = Blueprint("renewals", __name__)
_CALLERS = (ClientRole.OFFICER, ClientRole.PORTAL)


def renewal_json(session: Session, renewal: RenewalRequest) -> dict[str, Any]:
    old = session.get_one(Certificate, renewal.certificate_id)
    new = (
        None
        if renewal.new_certificate_id is None
        else session.get_one(Certificate, renewal.new_certificate_id)
    )
    documents = session.scalars(
        select(RenewalDocument).where(RenewalDocument.renewal_id == renewal.id)
    ).all()
    return {
        "id": renewal.id,
        "serial": old.serial,
        "inn": old.subscriber_inn,
        "holder_id": old.holder_id,
        "status": renewal.status,
        "automatic": renewal.automatic,
        "late": renewal.late,
        "changed": list(renewal.changed),
        "new_not_after": iso_utc(renewal.new_not_after),
        "new_serial": None if new is None else new.serial,
        "submitted_at": iso_utc(renewal.submitted_at),
        "decided_at": iso_utc(renewal.decided_at),
        "decision_note": renewal.decision_note,
        "documents": [
            {
                "id": d.id,
                "filename": d.filename,
                "content_type": d.content_type,
                "sha256": d.sha256,
                "size": len(d.data),
            }
            for d in documents
        ],
    }


def _issuers() -> Issuers:
    rt = runtime()
    return Issuers(rt.ca_token, rt.cloud_token, rt.config.public_url)


def _own_certificate(session: Session, serial: str) -> Certificate:
    """The certificate, which the caller may see and whose holder is the acting one."""
    row = get_certificate(session, serial)
    require_visible(session, row.subscriber_inn, "certificate")
    if not is_officer():
        holder = acting_holder(session)
        if holder is None or holder.id != row.holder_id:
            raise Problem("forbidden", "only the certificate's holder renews it (X-Tamga-Holder)")
    return row


def _visible_renewal(session: Session, renewal_id: int) -> RenewalRequest:
    renewal = get_renewal(session, renewal_id)
    old = session.get_one(Certificate, renewal.certificate_id)
    require_visible(session, old.subscriber_inn, "renewal")
    return renewal


@blueprint.get("/api/v1/certificates/<serial>/renewal-request")
@require_client(*_CALLERS)
def renewal_request(serial: str) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = get_certificate(session, serial)
        require_visible(session, row.subscriber_inn, "certificate")
        terms = renewal_terms(session, row, moment)
    response = Response(terms.text.encode("utf-8"), content_type="text/plain; charset=utf-8")
    response.headers["Tamga-Price"] = str(terms.price)
    response.headers["Tamga-Late"] = "true" if terms.late else "false"
    response.headers["Tamga-Changed"] = ",".join(terms.changed)
    return response


@blueprint.post("/api/v1/renewals")
@require_client(*_CALLERS)
def submit() -> Response:
    body = json_body()
    unknown = sorted(set(body) - {"serial", "document", "signature", "csr_pem"})
    if unknown:
        raise Problem(
            "validation-failed", f"unknown field {unknown[0]}", errors={unknown[0]: "unknown"}
        )
    if not isinstance(body.get("serial"), str):
        raise Problem("validation-failed", "serial is required", errors={"serial": "required"})
    moment, who = now(), actor()
    with ca_transaction() as session:
        row_id = _own_certificate(session, body["serial"]).id
    with ca_refusals():
        renewal = submit_renewal(
            runtime().transaction,
            _issuers(),
            certificate_id=row_id,
            document=body.get("document"),
            signature=body.get("signature"),
            csr=body.get("csr_pem"),
            now=moment,
            actor=who,
            officer=is_officer(),
        )
    with ca_transaction() as session:
        view = renewal_json(session, session.get_one(RenewalRequest, renewal.id))
    return reply(view, 201, location=f"/api/v1/renewals/{renewal.id}")


@blueprint.get("/api/v1/renewals")
@require_client(*_CALLERS)
def listing() -> Response:
    status = request.args.get("status")
    with ca_transaction() as session:
        query = select(RenewalRequest).join(
            Certificate, Certificate.id == RenewalRequest.certificate_id
        )
        inns = visible_inns(session)
        if inns is not None:
            query = query.where(Certificate.subscriber_inn.in_(sorted(inns)))
        if status is not None:
            query = query.where(RenewalRequest.status == status)
        rows = session.scalars(query.order_by(RenewalRequest.id)).all()
        items = [renewal_json(session, r) for r in rows]
    return reply({"renewals": items, "count": len(items)})


@blueprint.get("/api/v1/renewals/<int:renewal_id>")
@require_client(*_CALLERS)
def show(renewal_id: int) -> Response:
    with ca_transaction() as session:
        return reply(renewal_json(session, _visible_renewal(session, renewal_id)))


@blueprint.post("/api/v1/renewals/<int:renewal_id>/documents")
@require_client(*_CALLERS)
def upload(renewal_id: int) -> Response:
    upload = request.files.get("file")
    if upload is None:
        raise Problem(
            "validation-failed", "send the document as multipart field 'file'",
            errors={"file": "required"},
        )  # fmt: skip
    data = upload.read()
    moment, who = now(), actor()
    with ca_transaction() as session:
        _visible_renewal(session, renewal_id)
        document = add_document(
            session, renewal_id, filename=upload.filename or "", data=data,
            content_type=upload.mimetype, now=moment, actor=who,
        )  # fmt: skip
        body = {"id": document.id, "filename": document.filename, "sha256": document.sha256}
    return reply(body, 201)


@blueprint.post("/api/v1/renewals/<int:renewal_id>/approve")
@require_client(ClientRole.OFFICER)
def approve(renewal_id: int) -> Response:
    body = json_body() if request.data else {}
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise Problem("validation-failed", "note is a text", errors={"note": "a text"})
    moment, who = now(), actor()
    with ca_refusals():
        approve_renewal(
            runtime().transaction, _issuers(), renewal_id, note=note, now=moment, actor=who
        )
    with ca_transaction() as session:
        return reply(renewal_json(session, get_renewal(session, renewal_id)))


@blueprint.post("/api/v1/renewals/<int:renewal_id>/reject")
@require_client(ClientRole.OFFICER)
def reject(renewal_id: int) -> Response:
    body = json_body()
    moment, who = now(), actor()
    with ca_transaction() as session:
        renewal = reject_renewal(session, renewal_id, note=body.get("note"), now=moment, actor=who)
        return reply(renewal_json(session, renewal))


@blueprint.post("/api/v1/certificates/<serial>/auto-renewal")
@require_client(*_CALLERS)
def auto_renewal(serial: str) -> Response:
    body = json_body()
    moment, who = now(), actor()
    with ca_transaction() as session:
        row = get_certificate(session, serial)
        require_visible(session, row.subscriber_inn, "certificate")
        holder = acting_holder(session)
        authorise(
            session, row, Actor(who, is_officer(), None if holder is None else holder.id), moment
        )
        row = set_auto_renew(session, row, enabled=body.get("enabled"), now=moment, actor=who)
        return reply(certificate_json(session, row, now=moment))


_PROBLEM = {"description": "problem+json", "content": {"application/problem+json": {}}}
_ID = {"name": "renewal_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_SERIAL = {"name": "serial", "in": "path", "required": True, "schema": {"type": "string"}}
_RENEWAL = {"$ref": "#/components/schemas/Renewal"}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or _RENEWAL}},
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


_ERRORS = {code: _PROBLEM for code in ("402", "403", "404", "409", "422")}
OPENAPI: dict[str, Any] = {
    "paths": {
        "/api/v1/certificates/{serial}/renewal-request": {
            "get": {
                "operationId": "getRenewalRequest",
                "summary": "The renewal request text to sign (seed 003)",
                "parameters": [_SERIAL],
                "responses": {
                    "200": {"description": "the text", "content": {"text/plain": {}}},
                    "404": _PROBLEM,
                    "409": _PROBLEM,
                },
            }
        },
        "/api/v1/certificates/{serial}/auto-renewal": {
            "post": {
                "operationId": "setAutoRenewal",
                "summary": "Cancel or restore the automatic renewal (until 30 days before expiry)",
                "parameters": [_SERIAL],
                "requestBody": _body(
                    {"type": "object", "properties": {"enabled": {"type": "boolean"}}}
                ),
                "responses": {"200": _ok("the certificate", {"type": "object"}), **_ERRORS},
            }
        },
        "/api/v1/renewals": {
            "post": {
                "operationId": "submitRenewal",
                "summary": "Submit a signed renewal request",
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["serial", "document", "signature"],
                        "properties": {
                            "serial": {"type": "string"},
                            "document": {"type": "string"},
                            "signature": {"type": "string", "description": "base64 DER or PEM"},
                            "csr_pem": {"type": "string"},
                        },
                    }
                ),
                "responses": {"201": _ok("accepted and issued, or in review"), **_ERRORS},
            },
            "get": {
                "operationId": "listRenewals",
                "summary": "Renewal requests the caller may see",
                "parameters": [{"name": "status", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _ok("the list", {"type": "object"})},
            },
        },
        "/api/v1/renewals/{renewal_id}": {
            "get": {
                "operationId": "getRenewal",
                "summary": "One renewal request",
                "parameters": [_ID],
                "responses": {"200": _ok("the renewal"), "404": _PROBLEM},
            }
        },
        "/api/v1/renewals/{renewal_id}/documents": {
            "post": {
                "operationId": "uploadRenewalDocument",
                "summary": "Upload a supporting document (multipart field 'file')",
                "parameters": [_ID],
                "requestBody": {"content": {"multipart/form-data": {}}},
                "responses": {"201": _ok("stored", {"type": "object"}), **_ERRORS},
            }
        },
        "/api/v1/renewals/{renewal_id}/approve": {
            "post": {
                "operationId": "approveRenewal",
                "summary": "Officer: approve a renewal in review (charge, then issue)",
                "parameters": [_ID],
                "responses": {"200": _ok("issued"), **_ERRORS},
            }
        },
        "/api/v1/renewals/{renewal_id}/reject": {
            "post": {
                "operationId": "rejectRenewal",
                "summary": "Officer: reject a renewal in review",
                "parameters": [_ID],
                "requestBody": _body(
                    {"type": "object", "properties": {"note": {"type": "string"}}}
                ),
                "responses": {"200": _ok("rejected"), **_ERRORS},
            }
        },
    },
    "components": {
        "schemas": {
            "Renewal": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "serial": {"type": "string"},
                    "status": {"type": "string"},
                    "late": {"type": "boolean"},
                    "changed": {"type": "array", "items": {"type": "string"}},
                    "new_serial": {"type": "string", "nullable": True},
                },
            }
        }
    },
}

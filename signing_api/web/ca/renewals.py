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
from signing_api.web.ca.certificates import certificate_json
from signing_api.web.ca.schemas import (
    HOLDER_PARAMETER,
    SERIAL_PARAMETER,
    AutoRenewal,
    CertificatePaymentProblem,
    CertificateRefusalProblem,
    Renewal,
    RenewalApproval,
    RenewalList,
    RenewalQuery,
    RenewalRejection,
    RenewalSubmission,
    UploadedDocument,
)
from signing_api.web.ca.schemas import Certificate as CertificateView
from signing_api.web.common import (
    acting_holder,
    ca_refusals,
    ca_transaction,
    is_officer,
    require_visible,
    visible_inns,
)
from signing_api.web.context import actor, now, reply, runtime
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem

__all__ = ["blueprint", "renewal_json"]

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


_RENEWAL_ID = {
    "name": "renewal_id",
    "in": "path",
    "required": True,
    "description": "The renewal request's id",
    "schema": {"type": "integer", "minimum": 0},
}
_PAYMENT = Reply(
    CertificatePaymentProblem,
    "The balance does not cover the price: amount_due (nothing recorded)",
    media_type="application/problem+json",
)
_REFUSED = Reply(
    CertificateRefusalProblem,
    "Invalid fields (a changed document or a bad signature names its field), or the new"
    " certificate refused",
    media_type="application/problem+json",
)


@blueprint.get("/api/v1/certificates/<serial>/renewal-request")
@operation(
    "getRenewalRequest",
    "The renewal request text to sign (seed 003)",
    responses={
        200: Reply(
            None,
            "The text, exactly the bytes the detached CMS signature must cover",
            media_type="text/plain",
            headers={
                "Tamga-Price": "The price in tyiyn",
                "Tamga-Late": "true when less than the notice period is left",
                "Tamga-Changed": "The requisites that changed, comma-separated",
            },
        )
    },
    parameters=[SERIAL_PARAMETER],
    tag="ca",
    roles=_CALLERS,
    errors=(404, 409),
)
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
@operation(
    "submitRenewal",
    "Submit a signed renewal request",
    body=RenewalSubmission,
    responses={
        201: Reply(Renewal, "Accepted and issued, or in review (a requisite changed)"),
        402: _PAYMENT,
        422: _REFUSED,
    },
    parameters=[HOLDER_PARAMETER],
    tag="ca",
    roles=_CALLERS,
    errors=(400, 402, 403, 404, 409, 422),
    refusals={
        422: "the request text or its signature is not what seed 003 asks for (not base64 or"
        " PEM, not a CMS over this text, not by the certificate's key), or a requisite is bad"
    },
    description=(
        "Only the certificate's own holder (X-Tamga-Holder) or an officer; a RuToken renewal is"
        " made at the office (an officer) with the CSR of the new key."
    ),
)
def submit(body: RenewalSubmission) -> Response:
    moment, who = now(), actor()
    with ca_transaction() as session:
        row_id = _own_certificate(session, body.serial).id
    with ca_refusals():
        renewal = submit_renewal(
            runtime().transaction,
            _issuers(),
            certificate_id=row_id,
            document=body.document,
            signature=body.signature,
            csr=body.csr_pem,
            now=moment,
            actor=who,
            officer=is_officer(),
        )
    with ca_transaction() as session:
        view = renewal_json(session, session.get_one(RenewalRequest, renewal.id))
    return reply(view, 201, location=f"/api/v1/renewals/{renewal.id}")


@blueprint.get("/api/v1/renewals")
@operation(
    "listRenewals",
    "Renewal requests the caller may see",
    query=RenewalQuery,
    responses={200: Reply(RenewalList, "The renewals, oldest first")},
    tag="ca",
    roles=_CALLERS,
)
def listing(query: RenewalQuery) -> Response:
    with ca_transaction() as session:
        found = select(RenewalRequest).join(
            Certificate, Certificate.id == RenewalRequest.certificate_id
        )
        inns = visible_inns(session)
        if inns is not None:
            found = found.where(Certificate.subscriber_inn.in_(sorted(inns)))
        if query.status is not None:
            found = found.where(RenewalRequest.status == query.status)
        rows = session.scalars(found.order_by(RenewalRequest.id)).all()
        items = [renewal_json(session, r) for r in rows]
    return reply({"renewals": items, "count": len(items)})


@blueprint.get("/api/v1/renewals/<int:renewal_id>")
@operation(
    "getRenewal",
    "One renewal request",
    responses={200: Reply(Renewal, "The renewal")},
    parameters=[_RENEWAL_ID],
    tag="ca",
    roles=_CALLERS,
    errors=(404,),
)
def show(renewal_id: int) -> Response:
    with ca_transaction() as session:
        return reply(renewal_json(session, _visible_renewal(session, renewal_id)))


@blueprint.post("/api/v1/renewals/<int:renewal_id>/documents")
@operation(
    "uploadRenewalDocument",
    "Upload a supporting document (multipart field 'file')",
    responses={201: Reply(UploadedDocument, "Stored")},
    parameters=[_RENEWAL_ID],
    tag="ca",
    roles=_CALLERS,
    errors=(400, 404, 409, 422),
    raw_body="multipart/form-data",
    raw_schema={
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}},
    },
    description=(
        "The document in multipart field `file` (a file name, not empty, at most 10 MiB), for"
        " a renewal in review."
    ),
)
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
@operation(
    "approveRenewal",
    "Officer: approve a renewal in review (charge, then issue)",
    responses={200: Reply(Renewal, "Issued"), 402: _PAYMENT, 422: _REFUSED},
    parameters=[_RENEWAL_ID],
    tag="ca",
    roles=(ClientRole.OFFICER,),
    errors=(400, 402, 404, 409, 422),
    body=RenewalApproval,
    body_optional=True,
    description="The body is optional: none, or the officer's note.",
)
def approve(renewal_id: int, body: RenewalApproval | None) -> Response:
    note = body.note if body is not None else None
    moment, who = now(), actor()
    with ca_refusals():
        approve_renewal(
            runtime().transaction, _issuers(), renewal_id, note=note, now=moment, actor=who
        )
    with ca_transaction() as session:
        return reply(renewal_json(session, get_renewal(session, renewal_id)))


@blueprint.post("/api/v1/renewals/<int:renewal_id>/reject")
@operation(
    "rejectRenewal",
    "Officer: reject a renewal in review",
    body=RenewalRejection,
    responses={200: Reply(Renewal, "Rejected")},
    parameters=[_RENEWAL_ID],
    tag="ca",
    roles=(ClientRole.OFFICER,),
    errors=(404, 409),
)
def reject(renewal_id: int, body: RenewalRejection) -> Response:
    moment, who = now(), actor()
    with ca_transaction() as session:
        renewal = reject_renewal(session, renewal_id, note=body.note, now=moment, actor=who)
        return reply(renewal_json(session, renewal))


@blueprint.post("/api/v1/certificates/<serial>/auto-renewal")
@operation(
    "setAutoRenewal",
    "Cancel or restore the automatic renewal (until 30 days before expiry)",
    body=AutoRenewal,
    responses={200: Reply(CertificateView, "The certificate")},
    parameters=[SERIAL_PARAMETER, HOLDER_PARAMETER],
    tag="ca",
    roles=_CALLERS,
    errors=(400, 403, 404, 409, 422),
    description=(
        "Cloud certificates only; the holder (X-Tamga-Holder), its company's head or an officer."
    ),
)
def auto_renewal(serial: str, body: AutoRenewal) -> Response:
    moment, who = now(), actor()
    with ca_transaction() as session:
        row = get_certificate(session, serial)
        require_visible(session, row.subscriber_inn, "certificate")
        holder = acting_holder(session)
        authorise(
            session, row, Actor(who, is_officer(), None if holder is None else holder.id), moment
        )
        row = set_auto_renew(session, row, enabled=body.enabled, now=moment, actor=who)
        return reply(certificate_json(session, row, now=moment))

"""Dispute cases over HTTP (§8): open one on uploaded material, read it, its report, its PDF.

* ``POST /api/v1/disputes`` (multipart/form-data): ``subscriber_inn`` and the material, one
  form only: ``signature`` (with ``document`` when detached), or ``pdf``, or ``package``. The
  engine runs on it with the operator's archive as trust, the subscriber is charged the
  ``dispute`` tariff (§8.5) and the case stored, in one transaction: 201 with the case. A
  balance that does not cover the fee is 402 ``payment-required`` and nothing is written. An
  ``Idempotency-Key`` makes a retry answer the first case (200) without charging again.
* ``GET /api/v1/disputes`` (newest first, ``limit`` and ``before``), ``GET …/<id>``,
  ``GET …/<id>/report.json`` (the stored bytes exactly), ``GET …/<id>/report.pdf`` (rendered
  from those bytes).

Callers: dispute commissions and officers, for every subscriber; portals and agencies get 403.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from policies.roles import ClientRole
from signing_api.verification import cases
from signing_api.verification.inputs import NamedBytes
from signing_api.verification.models import DisputeCase
from signing_api.web.ca.certificates import request_key
from signing_api.web.ca.schemas import CertificatePaymentProblem
from signing_api.web.context import actor, now, reply, transaction
from signing_api.web.contract import Reply, operation
from signing_api.web.disputes.schemas import (
    MULTIPART,
    DisputeCaseView,
    DisputeList,
    DisputeQuery,
    DisputeReportView,
)
from signing_api.web.problems import Problem

__all__ = ["blueprint", "case_view"]

blueprint = Blueprint("disputes", __name__)

_CALLERS = (ClientRole.OFFICER, ClientRole.COMMISSION)
_BASE = "/api/v1/disputes"
_CASE_ID = {
    "name": "case_id",
    "in": "path",
    "required": True,
    "description": "The case's id (a UUID); an unknown one is a 404",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "The same key from the same client again returns the case the first request opened"
        " (200), instead of charging twice; the same key with other material is a 422; echoed"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
}


def case_view(case: DisputeCase, *, with_report: bool = True) -> dict[str, Any]:
    """The case as the API shows it, with the links to its report."""
    base = f"{_BASE}/{case.id}"
    links = {"self": base, "report_json": f"{base}/report.json", "report_pdf": f"{base}/report.pdf"}
    return cases.case_json(case, with_report=with_report) | {"links": links}


def _parts() -> tuple[dict[str, list[NamedBytes]], dict[str, list[str]]]:
    """The multipart request's file parts and text parts, by field name."""
    if request.mimetype != "multipart/form-data":
        raise Problem(
            "unsupported-media-type",
            "send multipart/form-data: subscriber_inn and the files (signature and document,"
            " or pdf, or package)",
        )
    files = {
        name: [
            NamedBytes(part.filename or name, part.read()) for part in request.files.getlist(name)
        ]
        for name in request.files
    }
    texts = {name: request.form.getlist(name) for name in request.form}
    return files, texts


@blueprint.post(_BASE)
@operation(
    "openDispute",
    "Open a dispute case: the §8 procedure on a signed document, paid by the subscriber",
    description=(
        "multipart/form-data with subscriber_inn and exactly one form of material: signature"
        " (a CMS/CAdES signature, with document when it is detached), or pdf (PAdES), or"
        " package (a filed report's evidence package). The signatures are checked in the §8.2"
        " order with the operator's archive as trust (its CA certificates and every CRL it"
        " issued); the subscriber is charged the dispute tariff (§8.5) and the case stored in"
        " the same transaction, whatever the verdict. A balance that does not cover the fee is"
        " a 402 and nothing is written."
    ),
    tag="disputes",
    roles=_CALLERS,
    raw_body="multipart/form-data",
    raw_schema=MULTIPART,
    parameters=[_IDEMPOTENCY],
    responses={
        201: Reply(
            DisputeCaseView,
            "The case: the verdict, the fee charged and links to the report",
            headers={"Location": "The case's URL"},
        ),
        200: Reply(DisputeCaseView, "A replay (same Idempotency-Key, same material)"),
        402: Reply(
            CertificatePaymentProblem,
            "The balance does not cover the fee: amount_due (nothing recorded)",
            media_type="application/problem+json",
        ),
    },
    errors=(400, 402, 409, 413, 415, 422),
    refusals={
        402: "the subscriber's balance does not cover the dispute fee",
        409: "the subscriber's contract is terminated",
        422: "no form or two forms of material, a document without its signature, an"
        " unknown subscriber, material the engine cannot read, or the Idempotency-Key used"
        " for other material",
    },
)
def open_dispute() -> Response:
    files, texts = _parts()
    moment, who, key = now(), actor(), request_key()
    with transaction() as session:
        opened = cases.open_case(
            session,
            files=files,
            texts=texts,
            client_id=g.client_id,
            opened_as=g.client_role.value,
            request_key=key,
            now=moment,
            actor=who,
        )
        view = case_view(opened.case)
    status = 200 if opened.replayed else 201
    return reply(view, status, location=view["links"]["self"])


@blueprint.get(_BASE)
@operation(
    "listDisputes",
    "Dispute cases, newest first (without their reports)",
    tag="disputes",
    roles=_CALLERS,
    query=DisputeQuery,
    responses={200: Reply(DisputeList, "A page of cases; next names the following page")},
    refusals={422: "before names no case (it is the next of a previous answer)"},
)
def list_disputes(query: DisputeQuery) -> Response:
    with transaction() as session:
        found = cases.list_cases(session, limit=query.limit, before=query.before, inn=query.inn)
        views = [case_view(c, with_report=False) for c in found]
    following = found[-1].id if len(found) == query.limit else None
    return reply({"disputes": views, "next": following})


@blueprint.get(f"{_BASE}/<case_id>")
@operation(
    "getDispute",
    "One dispute case, with its report",
    tag="disputes",
    roles=_CALLERS,
    parameters=[_CASE_ID],
    responses={200: Reply(DisputeCaseView, "The case")},
    errors=(404,),
)
def get_dispute(case_id: str) -> Response:
    with transaction() as session:
        view = case_view(cases.get_case(session, case_id))
    return reply(view)


@blueprint.get(f"{_BASE}/<case_id>/report.json")
@operation(
    "getDisputeReport",
    "The case's report as stored (canonical JSON, byte for byte; its SHA-256 is the case's"
    " report_sha256)",
    tag="disputes",
    roles=_CALLERS,
    parameters=[_CASE_ID],
    responses={200: Reply(DisputeReportView, "The report, byte for byte as stored")},
    errors=(404,),
)
def dispute_report_json(case_id: str) -> Response:
    with transaction() as session:
        case = cases.get_case(session, case_id)
        data, digest = case.report, case.report_sha256
    response = Response(data, mimetype="application/json")
    response.headers["ETag"] = f'"{digest}"'
    response.headers["Content-Disposition"] = f'inline; filename="dispute-{case_id}.json"'
    return response


@blueprint.get(f"{_BASE}/<case_id>/report.pdf")
@operation(
    "getDisputeReportPdf",
    "The case's report as a PDF, rendered from the stored report",
    tag="disputes",
    roles=_CALLERS,
    parameters=[_CASE_ID],
    responses={200: Reply(None, "The report", media_type="application/pdf")},
    errors=(404,),
)
def dispute_report_pdf(case_id: str) -> Response:
    from signing_api.verification.pdf import render_report_pdf

    with transaction() as session:
        case = cases.get_case(session, case_id)
        report, summary = cases.stored_report(case), cases.case_summary(case)
    response = Response(render_report_pdf(report, case=summary), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="dispute-{case_id}.pdf"'
    return response

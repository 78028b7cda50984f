"""Reports over HTTP: file, sign (an uploaded CMS or a cloud signature), read, stop, package.

Who may call: the reporting portal files and signs for the subscribers in its scope, and reads
and stops their reports; officers read and stop every report; a report outside the caller's
scope is 404, like one that does not exist. Agencies post their signed check results to
``/api/v1/agency-results`` without a token: the signature, verified with the agency's pinned
certificate, is the proof (docs/agency-protocol.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

import filing
from ca.hierarchy import active_certificate
from ca.tsa import TSAUnavailable
from filing import Report
from hsm import HSMError
from policies.filing import FILING_POLICY
from policies.roles import ClientRole
from signing_api.cloud import CloudSignature, SignatureActivation, SigningRefused
from signing_api.web.common import require_visible, visible_inns
from signing_api.web.context import actor, now, reply, runtime
from signing_api.web.contract import Reply, operation
from signing_api.web.filing.schemas import (
    ReportFiling,
    ReportList,
    ReportQuery,
    ReportSignatureRequest,
    ReportStop,
    ReportView,
    ResultAck,
)
from signing_api.web.problems import Problem, problem_of
from signing_api.web.signing.csc import CSCError, check_maintenance
from signing_api.web.signing.signatures import cloud_cms

__all__ = ["blueprint"]

blueprint = Blueprint("reports", __name__)
CMS_TYPE = "application/pkcs7-mime"
MAX_RESULT_BYTES = 256 * 1024


@contextmanager
def filing_transaction() -> Iterator[Session]:
    """A session in a transaction; a domain refusal rolls it back and becomes a Problem."""
    try:
        with runtime().transaction() as session:
            yield session
    except filing.FilingError as ex:
        raise problem_of(ex) from None


def _decode(value: str, field: str, limit: int) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(
            "validation-failed", f"{field} is not base64", errors={field: "base64"}
        ) from None
    if len(raw) > limit:
        raise Problem(
            "validation-failed",
            f"{field} is larger than {limit} bytes",
            errors={field: f"at most {limit} bytes"},
        )
    return raw


def _request_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isascii() or not key.isprintable():
        raise Problem("bad-request", "Idempotency-Key is 1-200 visible ASCII characters")
    return f"client:{g.client_id}:{key}"


def _visible_report(session: Session, report_id: str) -> Report:
    row = session.get(Report, report_id)
    if row is None:
        raise Problem("not-found", f"no report {report_id}")
    require_visible(session, row.inn, "report")
    return row


@blueprint.post("/api/v1/reports")
@operation(
    "fileReport",
    "File a report for a subscriber: it then awaits the head's and the accountant's signatures",
    tag="filing",
    roles=(ClientRole.PORTAL,),
    body=ReportFiling,
    responses={
        201: Reply(ReportView, "The report as filed"),
        200: Reply(ReportView, "A replay (same Idempotency-Key, same report)"),
    },
    errors=(404,),
    refusals={
        422: "a form filed for another period type or agency, an office the agency does not"
        " have, a document over the size limit, or the Idempotency-Key used for another report"
    },
)
def file_report(body: ReportFiling) -> Response:
    document = _decode(body.document, "document", FILING_POLICY.max_document_bytes)
    moment, who = now(), actor()
    with filing_transaction() as session:
        require_visible(session, body.inn, "subscriber")
        filed = filing.file_report(
            session,
            inn=body.inn,
            kind=body.kind,
            period=body.period,
            agency=body.agency,
            office=body.office,
            file_name=body.file_name,
            document=document,
            client_id=g.client_id,
            request_key=_request_key(),
            now=moment,
            actor=who,
        )
        view = filing.report_json(session, filed.report)
    status = 200 if filed.replayed else 201
    return reply(view, status, location=f"/api/v1/reports/{view['id']}")


@blueprint.get("/api/v1/reports")
@operation(
    "listReports",
    "Reports of the caller's subscribers, newest first (without their histories)",
    tag="filing",
    roles=(ClientRole.OFFICER, ClientRole.PORTAL),
    query=ReportQuery,
    responses={200: Reply(ReportList, "The reports")},
)
def list_reports(query: ReportQuery) -> Response:
    with filing_transaction() as session:
        stmt = select(Report).order_by(Report.filed_at.desc(), Report.id).limit(query.limit)
        inns = visible_inns(session)
        if inns is not None:
            stmt = stmt.where(Report.inn.in_(sorted(inns)))
        if query.inn is not None:
            stmt = stmt.where(Report.inn == query.inn)
        if query.delivery_status is not None:
            stmt = stmt.where(Report.delivery_status == query.delivery_status)
        views = [filing.report_json(session, r, with_events=False) for r in session.scalars(stmt)]
    return reply({"reports": views})


@blueprint.get("/api/v1/reports/<report_id>")
@operation(
    "getReport",
    "One report: statuses, signatures, charges and its whole history",
    tag="filing",
    roles=(ClientRole.OFFICER, ClientRole.PORTAL),
    responses={200: Reply(ReportView, "The report")},
    errors=(404,),
)
def get_report(report_id: str) -> Response:
    with filing_transaction() as session:
        view = filing.report_json(session, _visible_report(session, report_id))
    return reply(view)


def _replayed_cloud(session: Session, report: Report, sad: str) -> bool:
    """Whether this SAD already made one of the report's signatures (a retried request)."""
    digest = hashlib.sha256(sad.encode()).hexdigest()
    activation = session.scalars(
        select(SignatureActivation).where(SignatureActivation.sad_sha256 == digest)
    ).one_or_none()
    if activation is None:
        return False
    made = session.scalars(
        select(CloudSignature.signature).where(CloudSignature.activation_id == activation.id)
    ).all()
    return any(s.cms in made for s in filing.signatures_of(session, report.id))


@blueprint.post("/api/v1/reports/<report_id>/signatures")
@operation(
    "signReport",
    "Add the head's or the accountant's signature: an uploaded detached CMS, or a cloud"
    " signature with a credential and a SAD for the report's SHA-256",
    description=(
        "The second signature completes the report: in the same transaction it is charged and"
        " queued for delivery, or, when the balance does not cover the report (and the month's"
        " cloud-storage fee), it waits in awaiting_payment until a top-up releases it. A"
        " retried request with the same CMS or SAD answers 200 with the report unchanged."
    ),
    tag="filing",
    roles=(ClientRole.PORTAL,),
    body=ReportSignatureRequest,
    responses={
        201: Reply(ReportView, "The signature is on the report"),
        200: Reply(ReportView, "A replay: this signature is already on the report"),
    },
    errors=(404, 409, 503),
    refusals={
        409: "the slot is already signed, or the report takes no more signatures",
        422: "a signature that does not verify over the report's bytes, a certificate of"
        " another company or role, a SAD not valid for this report, neither or both forms",
    },
)
def sign_report(report_id: str, body: ReportSignatureRequest) -> Response:
    cloud = body.credentialID is not None or body.SAD is not None
    if cloud == (body.cms is not None) or (cloud and (body.credentialID is None or not body.SAD)):
        raise Problem(
            "validation-failed",
            "send cms (base64 DER), or credentialID and SAD",
            errors={"cms": "one of cms, or credentialID with SAD"},
        )
    moment, who = now(), actor()
    status = 201
    try:
        if cloud:
            check_maintenance()
        with filing_transaction() as session:
            report = _visible_report(session, report_id)
            if body.cms is not None:
                cms = _decode(body.cms, "cms", FILING_POLICY.max_signature_bytes)
                if any(s.cms == cms for s in filing.signatures_of(session, report.id)):
                    status = 200
                else:
                    filing.add_signature(
                        session,
                        report.id,
                        cms=cms,
                        form="cms",
                        role=body.role,
                        now=moment,
                        actor=who,
                    )
            elif _replayed_cloud(session, report, body.SAD or ""):
                status = 200
            else:
                role = body.role

                def fits(activation: SignatureActivation) -> None:
                    nonlocal role
                    if activation.inn != report.inn:
                        raise Problem(
                            "validation-failed",
                            "the SAD was authorised for another company",
                            errors={"SAD": "authorised for another company"},
                        )
                    if role is not None and role != activation.role:
                        raise Problem(
                            "validation-failed",
                            f"the SAD was authorised for signing as {activation.role}",
                            errors={"role": f"the SAD signs as {activation.role}"},
                        )
                    role = activation.role  # type: ignore[assignment]  # head|accountant
                    taken = {s.slot for s in filing.signatures_of(session, report.id)}
                    if report.delivery_status not in filing.SIGNING_STATUSES:
                        raise Problem("conflict", f"the report is {report.delivery_status}")
                    if role in taken:
                        raise Problem("conflict", f"the {role}'s signature is already there")

                der, _ = cloud_cms(
                    session,
                    body.credentialID,
                    body.SAD,
                    bytes.fromhex(report.document_sha256),
                    moment=moment,
                    who=who,
                    before_signing=fits,
                )
                filing.add_signature(
                    session, report.id, cms=der, form="cloud", role=role, now=moment, actor=who
                )
            view = filing.report_json(session, _visible_report(session, report_id))
    except SigningRefused as ex:
        raise problem_of(ex) from None
    except CSCError as ex:
        slug = {503: "unavailable", 400: "validation-failed"}.get(ex.status, "forbidden")
        raise Problem(slug, ex.description, errors={"request": ex.description}) from None
    except (HSMError, TSAUnavailable) as ex:
        raise Problem("unavailable", f"cannot sign now: {ex}") from None
    return reply(view, status, location=f"/api/v1/reports/{report_id}")


@blueprint.post("/api/v1/reports/<report_id>/stop")
@operation(
    "stopReport",
    "Stop a report before it leaves; what it was charged is reversed",
    tag="filing",
    roles=(ClientRole.OFFICER, ClientRole.PORTAL),
    body=ReportStop,
    responses={200: Reply(ReportView, "The report, stopped")},
    errors=(404, 409),
    refusals={409: "the report has already left (sent or delivered)"},
)
def stop_report(report_id: str, body: ReportStop) -> Response:
    moment, who = now(), actor()
    with filing_transaction() as session:
        report = _visible_report(session, report_id)
        filing.stop_report(session, report.id, reason=body.reason, now=moment, actor=who)
        view = filing.report_json(session, report)
    return reply(view)


@blueprint.get("/api/v1/reports/<report_id>/package")
@operation(
    "getReportPackage",
    "The report's evidence package (ZIP): document, signatures, dispatch confirmation,"
    " receipts, the agency's certificate, our CA chain and the history",
    tag="filing",
    roles=(ClientRole.OFFICER, ClientRole.PORTAL),
    responses={200: Reply(None, "The ZIP", media_type="application/zip")},
    errors=(404,),
)
def report_package(report_id: str) -> Response:
    with filing_transaction() as session:
        report = _visible_report(session, report_id)
        chain = [active_certificate(session, name) for name in ("root", "issuing")]
        data = filing.package(session, report, chain)
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="report-{report_id}.zip"'
    return response


@blueprint.post("/api/v1/agency-results")
@operation(
    "postAgencyResult",
    "An agency's signed check result (accepted or rejected) for a report it received",
    description=(
        "No token: the body is a CMS SignedData with the result as its content, signed by"
        " the agency's receipt key; it counts only if it verifies with the certificate"
        " registered for the agency the report went to (docs/agency-protocol.md). A result"
        " repeated answers 200 and changes nothing."
    ),
    tag="filing",
    roles=None,
    raw_body=CMS_TYPE,
    responses={200: Reply(ResultAck, "The result is recorded (or was already)")},
    errors=(404, 409, 413, 415),
    refusals={
        422: "a body that is not a CMS SignedData of a JSON check result verifying with the"
        " pinned certificate of the agency the report went to"
    },
)
def agency_result() -> Response:
    if request.mimetype != CMS_TYPE:
        raise Problem("unsupported-media-type", f"send the signed result as {CMS_TYPE}")
    der = request.stream.read(MAX_RESULT_BYTES + 1)
    if len(der) > MAX_RESULT_BYTES:
        raise Problem("payload-too-large", f"a result is at most {MAX_RESULT_BYTES} bytes")
    moment = now()
    with filing_transaction() as session:
        report = filing.record_result(session, der, now=moment)
        view = {"report_id": report.id, "check_status": report.check_status}
    return reply(view)

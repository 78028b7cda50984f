"""``/disputes/``: the commission's page. Upload a signed document, read the §8 verdict, print it.

``GET /disputes/`` is a form: a detached signature (``.p7s``) and its document, an attached
signature alone, a signed PDF, or a filed report's evidence package (``.zip``); what the file is
is read from its bytes, not its name. ``POST /disputes/verify`` runs the dispute engine
(``signing_api.verification``) on it with the operator's archive as trust (``trust_from_archive``:
our CA certificates and every CRL ever issued) and the operator's records of the signatures
(``operator_evidence``), exactly as the disputes API does, at the runtime's clock, and renders:
the verdict in its colour, the §8.4 conclusion, the seven steps of each signature with their
evidence, and every input with its SHA-256. ``POST /disputes/report.pdf`` verifies the same files
again and answers the commission's PDF (``verification.pdf``) as an attachment; the result page's
"download" button re-posts the files it was given (hidden fields, base64), since nothing is kept.

Nothing is stored, charged or journalled: the page changes nothing, so it needs no login and no
CSRF token (a stored, charged dispute case is the API's). Every answer is HTML (or the PDF);
bad input (no file, a file that is not a signature, a PDF without signatures, a body over the
limit) gets the form again with what was wrong and a 4xx status. The pages load no script and
set ``Content-Security-Policy: default-src 'self'``; the style sheet is ``/disputes/disputes.css``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from flask import Blueprint, Response, render_template, request
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from signing_api.verification import pdf as report_pdf
from signing_api.verification import wording
from signing_api.verification.archive import operator_evidence, trust_from_archive
from signing_api.verification.engine import (
    OperatorEvidence,
    package_signatures,
    verify_package,
    verify_pdf,
    verify_signature,
)
from signing_api.verification.inputs import NamedBytes, UnreadableInput
from signing_api.verification.report import (
    TIME_PROOF_MEANING,
    DocumentReport,
    Indication,
    StepStatus,
)
from signing_api.web.context import now, runtime
from signing_api.web.contract import Reply, operation
from signing_api.web.limits import MIB, body_limit

__all__ = ["MAX_FILE_BYTES", "blueprint"]

log = logging.getLogger("tamga.disputes")
blueprint = Blueprint("disputes_ui", __name__, template_folder="templates")

# One uploaded file (the signed file or the document) may not be larger than this; the page's
# body limits (web/limits.py) leave room for both and for the base64 of the re-post.
MAX_FILE_BYTES = 12 * MIB
HTML = "text/html"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # a result names a document and its signers
}
_VERDICT_CLASS = {
    Indication.TOTAL_PASSED: "passed",
    Indication.TOTAL_FAILED: "failed",
    Indication.INDETERMINATE: "indeterminate",
}
_STATUS_CLASS = {status: status.value for status in StepStatus}
_FORM_SCHEMA = {
    "type": "object",
    "required": ["signed"],
    "properties": {
        "signed": {
            "type": "string",
            "format": "binary",
            "description": "a CMS signature (.p7s, DER or PEM), a signed PDF, or a report's"
            " evidence package (.zip)",
        },
        "document": {
            "type": "string",
            "format": "binary",
            "description": "the signed document, for a detached signature",
        },
    },
}
_PAGE_ERRORS = {
    400: Reply(None, "The form again: no signed file, or a re-post not in base64", media_type=HTML),
    413: Reply(None, "The form again: a file or the body is too large", media_type=HTML),
    422: Reply(None, "The form again: a file is not what it should be", media_type=HTML),
}
_UNREADABLE = (
    "the files are not a signature, a signed PDF or a report package the engine can read, or"
    " the PDF or package holds no signature, or a file is empty, or a document is sent beside"
    " a PDF or a package (which carry theirs)"
)


class BadUpload(Exception):
    """What the commission sent cannot be checked; the form says why, with this status."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Upload:
    """The files of one check: the signed file, and the document of a detached signature."""

    signed: NamedBytes
    document: NamedBytes | None

    @property
    def kind(self) -> str:
        return _kind(self.signed.data)


def _kind(data: bytes) -> str:
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "package"
    return "signature"


_KIND_WORDS = {
    "pdf": "подписанный PDF / signed PDF",
    "package": "пакет отчёта / report package",
    "signature": "подпись CMS / CMS signature",
}


def _file_name(name: str | None, default: str) -> str:
    """The name an upload was given, as a label: its last path part, printable, at most 200."""
    base = re.split(r"[\\/]", name or "")[-1]
    shown = "".join(c for c in base if unicodedata.category(c)[0] not in "CZ" or c == " ")
    return shown.strip()[:200] or default


def _sized(name: str, data: bytes) -> NamedBytes:
    if len(data) > MAX_FILE_BYTES:
        raise BadUpload(f"{name}: larger than {MAX_FILE_BYTES // MIB} MiB", 413)
    return NamedBytes(name, data)


def _from_file(field: str, default: str) -> NamedBytes | None:
    upload: FileStorage | None = request.files.get(field)
    if upload is None or not (upload.filename or "").strip():
        return None
    data = upload.stream.read(MAX_FILE_BYTES + 1)
    name = _file_name(upload.filename, default)
    if not data:
        raise BadUpload(f"{name}: the file is empty")
    return _sized(name, data)


def _from_hidden(field: str, default: str) -> NamedBytes | None:
    """A file re-posted by the result page's download form: base64 in a hidden field."""
    encoded = request.form.get(f"{field}_b64")
    if not encoded:
        return None
    if len(encoded) > (MAX_FILE_BYTES * 4) // 3 + 8:
        raise BadUpload(f"{field}: larger than {MAX_FILE_BYTES // MIB} MiB", 413)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadUpload(
            f"{field}: the re-posted file is not base64; upload it again", 400
        ) from None
    name = _file_name(request.form.get(f"{field}_name"), default)
    if not data:
        raise BadUpload(f"{name}: the file is empty")
    return _sized(name, data)


def _read_upload() -> Upload:
    # the form's text fields (the re-post's base64) may be as large as the route's body
    request.max_form_memory_size = body_limit(request.endpoint)
    signed = _from_file("signed", "signed") or _from_hidden("signed", "signed")
    document = _from_file("document", "document") or _from_hidden("document", "document")
    if signed is None:
        raise BadUpload(
            "выберите подписанный файл / choose the signed file: a signature (.p7s), a signed"
            " PDF or a report package (.zip)",
            400,
        )
    upload = Upload(signed, document)
    if document is not None and upload.kind != "signature":
        raise BadUpload(f"{signed.name} is a {upload.kind}: it carries its document; send it alone")
    return upload


def _evidence(session: Session, upload: Upload) -> Sequence[OperatorEvidence]:
    """The operator's own records of the signatures (received for a report, made in the HSM),
    looked up as the disputes API does, so the page and a case judge alike."""
    if upload.kind == "signature":
        return operator_evidence(session, [upload.signed.data])
    if upload.kind == "package":
        try:
            signatures = package_signatures(upload.signed.data)
        except Exception:  # a hostile ZIP (zlib, CRC …): the engine names what is wrong with it
            log.warning("cannot list the signatures of %r", upload.signed.name, exc_info=True)
            return ()
        return operator_evidence(session, signatures)
    return ()


def _verify(upload: Upload) -> DocumentReport:
    with runtime().transaction() as session:
        trust = trust_from_archive(session)
        evidence = _evidence(session, upload)
    moment, signed = now(), upload.signed
    try:
        if upload.kind == "pdf":
            report = verify_pdf(signed, trust, now=moment)
        elif upload.kind == "package":
            report = verify_package(signed, trust, now=moment, evidence=evidence)
        else:
            report = verify_signature(
                signature=signed, document=upload.document, trust=trust, now=moment,
                evidence=evidence,
            )  # fmt: skip
    except UnreadableInput as ex:
        raise BadUpload(str(ex)) from None
    except Exception as ex:
        # The engine is pure (no database, no network): whatever it raises on these bytes is
        # the file's fault or the engine's, never a reason for a 500 page. Logged in full.
        log.warning("unreadable %s %r", upload.kind, signed.name, exc_info=True)
        kind = _KIND_WORDS[upload.kind]
        raise BadUpload(
            f"{signed.name}: cannot be read as a {kind} ({type(ex).__name__})"
        ) from None
    if not report.signatures:
        problems = "; ".join(report.problems) or "no signature was found"
        raise BadUpload(f"{signed.name}: {problems}")
    return report


def _page(template: str, status: int = 200, **context: Any) -> Response:
    html = render_template(template, w=wording, **context)
    response = Response(html, status=status, mimetype=HTML)
    response.headers.update(SECURITY_HEADERS)
    return response


def _form(message: str | None = None, status: int = 200) -> Response:
    return _page(
        "disputes/form.html",
        status,
        message=message,
        max_mib=MAX_FILE_BYTES // MIB,
    )


def _encoded(item: NamedBytes | None) -> str:
    return "" if item is None else base64.b64encode(item.data).decode("ascii")


@blueprint.get("/disputes/")
@operation(
    "getDisputePage",
    "The commission's page: upload a signed document to check it (§8)",
    tag="disputes",
    roles=None,
    responses={200: Reply(None, "The form (HTML)", media_type=HTML)},
)
def form() -> Response:
    return _form()


@blueprint.post("/disputes/verify")
@operation(
    "verifyDisputePage",
    "Check a signature, a signed PDF or a report package; the verdict as an HTML page",
    tag="disputes",
    roles=None,
    responses={200: Reply(None, "The verdict (HTML)", media_type=HTML), **_PAGE_ERRORS},
    raw_body="multipart/form-data",
    raw_schema=_FORM_SCHEMA,
    refusals={422: _UNREADABLE},
    description=(
        "Nothing is stored or charged. Trust: the operator's CA certificates and every CRL it"
        " ever issued; the time: the server's."
    ),
)
def verify() -> Response:
    try:
        upload = _read_upload()
        report = _verify(upload)
    except BadUpload as ex:
        return _form(ex.message, ex.status)
    return _page(
        "disputes/result.html",
        report=report,
        kind=_KIND_WORDS[upload.kind],
        verdict_class=_VERDICT_CLASS,
        status_class=_STATUS_CLASS,
        proof_meaning=TIME_PROOF_MEANING,
        signed_name=upload.signed.name,
        signed_b64=_encoded(upload.signed),
        document_name=upload.document.name if upload.document else "",
        document_b64=_encoded(upload.document),
    )


@blueprint.post("/disputes/report.pdf")
@operation(
    "disputeReportPdf",
    "The same check as /disputes/verify, as the commission's PDF report",
    tag="disputes",
    roles=None,
    responses={
        200: Reply(
            None,
            "The report (PDF, an attachment)",
            media_type="application/pdf",
            headers={"Content-Disposition": "attachment; filename=dispute-report-<sha256>.pdf"},
        ),
        **_PAGE_ERRORS,
    },
    raw_body="multipart/form-data",
    raw_schema=_FORM_SCHEMA,
    refusals={422: _UNREADABLE},
    description=(
        "The files as uploads (fields `signed`, `document`) or as the result page re-posts them"
        " (`signed_b64`, `signed_name`, `document_b64`, `document_name`). Nothing is stored."
    ),
)
def report_pdf_download() -> Response:
    try:
        report = _verify(_read_upload())
    except BadUpload as ex:
        return _form(ex.message, ex.status)
    body = report_pdf.render_report_pdf(report)
    tag = (report.document_sha256 or "")[:12] or "document"
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="dispute-report-{tag}.pdf"'
    response.headers.update(
        {k: v for k, v in SECURITY_HEADERS.items() if k != "Content-Security-Policy"}
    )
    return response


@blueprint.get("/disputes/disputes.css")
@operation(
    "getDisputePageStyle",
    "The commission's page's style sheet",
    tag="disputes",
    roles=None,
    responses={200: Reply(None, "CSS", media_type="text/css")},
)
def style() -> Response:
    css = (
        resources.files("signing_api.web.ui").joinpath("static", "disputes.css").read_text("utf-8")
    )
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.errorhandler(RequestEntityTooLarge)
def too_large(ex: RequestEntityTooLarge) -> Response:
    limit = body_limit(request.endpoint) // MIB
    return _form(
        f"файлы слишком велики / the files are too large: at most {MAX_FILE_BYTES // MIB} MiB"
        f" each, {limit} MiB together",
        413,
    )


@blueprint.errorhandler(400)
def bad_request(ex: HTTPException) -> Response:
    return _form(f"запрос не прочитан / the request could not be read: {ex.description}", 400)

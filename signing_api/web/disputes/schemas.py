"""The typed contract of ``/api/v1/disputes``: the case, its list and the list's query.

The request itself is multipart/form-data (files), so it has no JSON model: its schema is the
``MULTIPART`` fragment, and ``signing_api.verification.cases`` checks every part.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from signing_api.web.contract import Inn, Query, Text, Tyiyn, View

__all__ = [
    "MULTIPART",
    "DisputeCaseView",
    "DisputeFee",
    "DisputeFile",
    "DisputeLinks",
    "DisputeList",
    "DisputeQuery",
    "DisputeReportView",
]

CaseId = Annotated[
    str,
    Text(
        pattern="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        says="a case id (a UUID)",
    ),
]

_FILE = {"type": "string", "format": "binary"}
MULTIPART: dict[str, Any] = {
    "type": "object",
    "required": ["subscriber_inn"],
    "properties": {
        "subscriber_inn": {
            "type": "string",
            "pattern": "^[0-9]{14}$",
            "description": "The subscriber who asked for the procedure and pays its fee (§8.5)",
        },
        "signature": _FILE | {"description": "A CMS/CAdES signature (DER or PEM)"},
        "document": _FILE | {"description": "The document a detached signature covers"},
        "pdf": _FILE | {"description": "A PDF with its embedded (PAdES) signatures"},
        "package": _FILE | {"description": "A filed report's evidence package (ZIP)"},
    },
    "additionalProperties": False,
    "description": (
        "Exactly one form: signature (with document when it is detached), or pdf, or package."
    ),
}


class DisputeQuery(Query):
    limit: int = Field(100, ge=1, le=1000)
    before: CaseId | None = Field(
        None, description="The last case id of the previous page (the answer's next)"
    )
    inn: Inn | None = None


class DisputeFile(View):
    name: str
    sha256: str
    size: int


class DisputeFee(View):
    tariff: str
    amount: Tyiyn
    ledger_key: str
    transaction: int


class DisputeLinks(View):
    self: str
    report_json: str
    report_pdf: str


class DisputeReportView(View):
    """The engine's report (``report.json``): the verdict on the document and on each signature,
    the seven §8.2 steps of each with their evidence, and every input with its SHA-256."""

    type: Literal["tamga-dispute-report"]
    version: int
    engine: str
    validation_time: str
    indication: Literal["TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"]
    sub_indication: str | None
    conclusion: str
    document_sha256: str | None
    problems: list[str]
    signatures: list[dict[str, Any]]
    inputs: list[dict[str, Any]]


class DisputeCaseView(View):
    id: str
    subscriber_inn: str
    created_at: str
    opened_by: str
    opened_as: Literal["officer", "commission"]
    form: Literal["cms", "pdf", "package"]
    document: DisputeFile | None = Field(
        description="The detached document, the PDF or the package as uploaded"
    )
    signature: DisputeFile | None = Field(description="The signature (form cms)")
    indication: Literal["TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"]
    sub_indication: str | None
    engine: str
    report_sha256: str = Field(description="SHA-256 of report.json's bytes")
    fee: DisputeFee
    links: DisputeLinks
    report: DisputeReportView | None = Field(
        None, description="The report (report.json parsed); absent from lists"
    )


class DisputeList(View):
    disputes: list[DisputeCaseView]
    next: str | None = Field(description="Pass as before for the next page; null: no more")

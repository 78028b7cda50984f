"""The typed contract of ``/api/v1/reports``, ``/api/v1/agencies`` and agency answers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from policies.filing import REPORT_KINDS
from signing_api.web.contract import Body, Inn, Query, Text, View

__all__ = [
    "AgencyList",
    "AgencyRegistration",
    "AgencyView",
    "OfficeRegistration",
    "ReportFiling",
    "ReportList",
    "ReportQuery",
    "ReportSignatureRequest",
    "ReportStop",
    "ReportView",
    "ResultAck",
]

Base64 = Annotated[
    str, Text(pattern=r"^[A-Za-z0-9+/]*={0,2}$", says="base64 (RFC 4648, with padding)")
]
Delivery = Literal[
    "awaiting_signatures",
    "awaiting_head",
    "awaiting_accountant",
    "awaiting_payment",
    "queued",
    "sent",
    "delivered",
    "stopped",
]
Check = Literal["none", "awaiting_check", "accepted", "rejected"]
Kind = Annotated[str, Field(json_schema_extra={"enum": sorted(REPORT_KINDS)})]
AgencyCode = Literal["tax", "social-fund", "statistics"]
Period = Annotated[
    str,
    Text(
        pattern=r"^20[0-9]{2}(?:-(?:0[1-9]|1[0-2])|-Q[1-4])?$",
        says="a month (2026-11), a quarter (2026-Q3) or a year (2026)",
    ),
]
OfficeCode = Annotated[
    str, Text(pattern="^[A-Za-z0-9-]{1,16}$", says="1 to 16 letters, digits or hyphens")
]
FileName = Annotated[str, Text(limit=200)]


class ReportFiling(Body):
    inn: Inn
    kind: Kind
    period: Period
    agency: AgencyCode
    office: OfficeCode
    file_name: FileName
    document: Base64 = Field(description="the report file, base64; kept byte for byte")


class ReportSignatureRequest(Body):
    """One of two forms: ``cms`` (a detached CMS made elsewhere, e.g. on a RuToken), or
    ``credentialID`` + ``SAD`` (a cloud signature made here over the report's SHA-256)."""

    cms: Base64 | None = None
    credentialID: (
        Annotated[str, Text(pattern="^[0-9A-Fa-f]{1,40}$", says="a hex serial")] | None
    ) = None
    SAD: Annotated[str, Text(pattern="^[A-Za-z0-9_-]{16,200}$", says="a SAD")] | None = None
    role: Literal["head", "accountant"] | None = None


class ReportStop(Body):
    reason: Annotated[str, Text(limit=500, lines=True)]


class ReportQuery(Query):
    inn: Inn | None = None
    delivery_status: Delivery | None = None
    limit: int = Field(100, ge=1, le=1000)


class SignatureView(View):
    role: Literal["head", "accountant"]
    form: Literal["cms", "cloud"]
    serial: str
    signed_at: str
    time_source: str
    recorded_at: str


class Charges(View):
    tariff: str | None
    price: int | None
    charged_at: str | None
    transaction: int | None
    storage_transaction: int | None
    reversal_transaction: int | None


class DeliveryView(View):
    completed_at: str | None
    queued_at: str | None
    sent_at: str | None
    delivered_at: str | None
    attempts: int
    next_attempt_at: str | None
    last_error: str | None


class EventView(View):
    at: str
    event: str
    actor: str
    delivery_status: Delivery
    check_status: Check
    details: dict[str, object]
    has_document: bool


class ReportView(View):
    id: str
    inn: str
    kind: str
    period: str
    agency: str
    office: str
    file_name: str
    size: int
    document_sha256: str
    filed_at: str
    delivery_status: Delivery
    check_status: Check
    check_message: str | None
    registration_number: str | None
    signatures: list[SignatureView]
    charges: Charges
    delivery: DeliveryView
    events: list[EventView] | None = None


class ReportList(View):
    reports: list[ReportView]


class AgencyRegistration(Body):
    code: AgencyCode
    name: Annotated[str, Text(limit=200)]
    endpoint: Annotated[
        str,
        Text(
            pattern=r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$",
            says="an http(s) base URL (ASCII host, optional port and path)",
        ),
        Field(max_length=500),
    ]
    receipt_certificate: Annotated[str, Text(pattern=r"^-----BEGIN CERTIFICATE-----", says="PEM")]


class OfficeRegistration(Body):
    code: OfficeCode
    name: Annotated[str, Text(limit=200)]


class AgencyView(View):
    code: str
    name: str
    endpoint: str
    active: bool
    certificate_subject: str
    certificate_sha256: str
    offices: list[dict[str, str]]


class AgencyList(View):
    agencies: list[AgencyView]


class ResultAck(View):
    """What an agency is told: only what it sent (the caller has no token)."""

    report_id: str
    check_status: Check

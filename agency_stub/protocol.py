"""The delivery body (``PUT /reports/<report_id>``) as the agency reads it, and the JSON it signs.

The stub checks the shape of every field, that ``document`` hashes to ``document_sha256`` and
that every signature parses as a CMS SignedData; it does not verify the signatures (a real
gateway would).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms

__all__ = ["BadReport", "Report", "canonical_json", "parse_report", "utc_now_iso"]

INN = re.compile(r"[0-9]{14}")
PERIOD = re.compile(r"[0-9]{4}(-(0[1-9]|1[0-2])|-Q[1-4])?")
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
FIELDS = {
    "report_id",
    "agency",
    "office",
    "inn",
    "kind",
    "period",
    "document",
    "document_sha256",
    "signatures",
    "dispatch_confirmation",
}


class BadReport(ValueError):
    """A malformed delivery body (400)."""


@dataclass(frozen=True)
class Report:
    report_id: str
    agency: str
    office: str
    inn: str
    kind: str
    period: str
    document: bytes
    document_sha256: str
    signatures: tuple[bytes, ...]
    dispatch_confirmation: bytes


def utc_now_iso() -> str:
    """Now, ISO-8601 UTC to the second with a ``Z``."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def canonical_json(value: dict[str, Any]) -> bytes:
    """The UTF-8 JSON the agency signs (compact, key order as written)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _text(body: dict[str, Any], name: str, limit: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadReport(f"{name} must be a non-empty string of at most {limit} characters")
    return value


def _base64(name: str, value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise BadReport(f"{name} must be a non-empty base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as ex:
        raise BadReport(f"{name} is not valid base64") from ex


def _signed_data(name: str, der: bytes) -> None:
    """``der`` must parse as a CMS ContentInfo holding a SignedData with a signer."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise BadReport(f"{name} is a CMS {info['content_type'].native}, not signed data")
        if len(info["content"]["signer_infos"]) == 0:
            raise BadReport(f"{name} has no signer")
    except BadReport:
        raise
    except Exception as ex:  # asn1crypto parses lazily and raises several kinds
        raise BadReport(f"{name} is not a DER CMS SignedData") from ex


def parse_report(report_id: str, body: Any, agency: str) -> Report:
    """The delivery body, checked; ``BadReport`` names the first field at fault."""
    try:
        if str(uuid.UUID(report_id)) != report_id:
            raise ValueError(report_id)
    except ValueError as ex:
        raise BadReport("the report id in the path must be a UUID (lower-case, hyphens)") from ex
    if not isinstance(body, dict):
        raise BadReport("the body must be a JSON object")
    missing = sorted(FIELDS - body.keys())
    if missing:
        raise BadReport(f"missing fields: {', '.join(missing)}")
    if body["report_id"] != report_id:
        raise BadReport("report_id in the body differs from the one in the path")
    if body["agency"] != agency:
        raise BadReport(f"this gateway is agency {agency!r}, the report is for {body['agency']!r}")
    office = _text(body, "office", 32)
    inn = body["inn"]
    if not isinstance(inn, str) or not INN.fullmatch(inn):
        raise BadReport("inn must be 14 digits")
    kind = _text(body, "kind", 64)
    period = body["period"]
    if not isinstance(period, str) or not PERIOD.fullmatch(period):
        raise BadReport("period must be YYYY, YYYY-MM or YYYY-Qn")
    document = _base64("document", body["document"])
    digest = body["document_sha256"]
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
        raise BadReport("document_sha256 must be 64 hexadecimal digits")
    digest = digest.lower()
    if hashlib.sha256(document).hexdigest() != digest:
        raise BadReport("document does not hash to document_sha256")
    signatures = body["signatures"]
    if not isinstance(signatures, list) or not signatures:
        raise BadReport("signatures must be a non-empty list")
    parsed = []
    for index, signature in enumerate(signatures):
        der = _base64(f"signatures[{index}]", signature)
        _signed_data(f"signatures[{index}]", der)
        parsed.append(der)
    confirmation = _base64("dispatch_confirmation", body["dispatch_confirmation"])
    _signed_data("dispatch_confirmation", confirmation)
    return Report(
        report_id=report_id,
        agency=agency,
        office=office,
        inn=inn,
        kind=kind,
        period=period,
        document=document,
        document_sha256=digest,
        signatures=tuple(parsed),
        dispatch_confirmation=confirmation,
    )

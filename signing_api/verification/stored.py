"""A stored report read back: the JSON of :meth:`DocumentReport.to_json` as the same values.

A dispute case keeps its report as canonical JSON bytes (what ``report.json`` serves); the PDF
is rendered from those bytes, never from a second run of the engine, so the two always say the
same thing. Derived texts (the conclusion, a step's clause and name, what a time proof means)
are not read: they follow from the values, as when the report was made.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from signing_api.verification.report import (
    DocumentReport,
    Evidence,
    Indication,
    InputFile,
    SignatureReport,
    SigningTime,
    StepResult,
    StepStatus,
    SubIndication,
    TimeProof,
)

__all__ = ["canonical_json", "report_from_json"]


def canonical_json(report: DocumentReport) -> bytes:
    """The report as stored and served: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        report.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _sub(value: str | None) -> SubIndication | None:
    return None if value is None else SubIndication(value)


def _evidence(data: dict[str, Any]) -> Evidence:
    return Evidence(
        kind=data["kind"],
        description=data["description"],
        sha256=data.get("sha256"),
        at=_moment(data.get("at")),
    )


def _step(data: dict[str, Any]) -> StepResult:
    return StepResult(
        number=int(data["number"]),
        status=StepStatus(data["status"]),
        detail=data["detail"],
        evidence=tuple(_evidence(e) for e in data.get("evidence", ())),
    )


def _signing_time(data: dict[str, Any] | None) -> SigningTime | None:
    if data is None:
        return None
    at = _moment(data["at"])
    if at is None:
        raise ValueError("a signing time without its moment")
    return SigningTime(at=at, proof=TimeProof(data["proof"]), claimed=_moment(data.get("claimed")))


def _signature(data: dict[str, Any]) -> SignatureReport:
    signer = data.get("signer") or {}
    serial = signer.get("serial")
    return SignatureReport(
        label=data["label"],
        indication=Indication(data["indication"]),
        sub_indication=_sub(data.get("sub_indication")),
        steps=tuple(_step(s) for s in data.get("steps", ())),
        signer_subject=signer.get("subject"),
        signer_serial=None if serial is None else int(serial, 16),
        signer_issuer=signer.get("issuer"),
        signing_time=_signing_time(data.get("signing_time")),
        chain=tuple(data.get("chain", ())),
        revocation=data.get("revocation"),
        notes=tuple(data.get("notes", ())),
    )


def _input(data: dict[str, Any]) -> InputFile:
    return InputFile(
        role=data["role"],
        name=data["name"],
        sha256=data["sha256"],
        size=int(data["size"]),
        detail=data.get("detail", ""),
    )


def report_from_json(data: bytes | dict[str, Any]) -> DocumentReport:
    """The :class:`DocumentReport` whose ``to_json()`` is ``data`` (bytes or parsed)."""
    doc: dict[str, Any] = json.loads(data) if isinstance(data, bytes) else data
    if doc.get("type") != "tamga-dispute-report":
        raise ValueError("not a tamga-dispute-report")
    validated = _moment(doc["validation_time"])
    if validated is None:
        raise ValueError("a report without its validation time")
    return DocumentReport(
        indication=Indication(doc["indication"]),
        sub_indication=_sub(doc.get("sub_indication")),
        document_sha256=doc.get("document_sha256"),
        signatures=tuple(_signature(s) for s in doc.get("signatures", ())),
        inputs=tuple(_input(i) for i in doc.get("inputs", ())),
        validation_time=validated,
        engine=doc["engine"],
        problems=tuple(doc.get("problems", ())),
    )

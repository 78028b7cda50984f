"""A report's evidence package: everything a dispute commission needs, in one ZIP.

``document/<file name>`` (the bytes as filed), ``signatures/<slot>.p7s`` (detached CMS, DER),
``dispatch-confirmation.p7m`` (Tamga's signed, time-stamped statement that the report left),
``receipt.p7m`` and ``check-result.p7m`` (the agency's own signed answers, as received),
``agency.pem`` (the agency's certificate they verify with), ``ca.pem`` (our root and issuing
CA), ``events.json`` (the whole history) and ``README.txt`` with the openssl commands that
check each piece.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from filing.agencies import agency_certificate
from filing.models import Agency, Report, ReportEvent
from filing.reports import signatures_of
from policies.dates import iso_utc

__all__ = ["events_of", "package", "report_json"]


def events_of(session: Session, report_id: str) -> list[ReportEvent]:
    return list(
        session.scalars(
            select(ReportEvent).where(ReportEvent.report_id == report_id).order_by(ReportEvent.id)
        )
    )


def _event_json(row: ReportEvent) -> dict[str, Any]:
    return {
        "at": iso_utc(row.at),
        "event": row.event,
        "actor": row.actor,
        "delivery_status": row.delivery_status,
        "check_status": row.check_status,
        "details": row.details,
        "has_document": row.document is not None,
    }


def report_json(session: Session, report: Report, *, with_events: bool = True) -> dict[str, Any]:
    """The report as the API and the CLI show it: statuses, signatures, charges, history."""

    def at(value: Any) -> str | None:
        return None if value is None else iso_utc(value)

    view: dict[str, Any] = {
        "id": report.id,
        "inn": report.inn,
        "kind": report.kind,
        "period": report.period,
        "agency": report.agency_code,
        "office": report.office_code,
        "file_name": report.file_name,
        "size": report.size,
        "document_sha256": report.document_sha256,
        "filed_at": iso_utc(report.filed_at),
        "delivery_status": report.delivery_status,
        "check_status": report.check_status,
        "check_message": report.check_message,
        "registration_number": report.registration_number,
        "signatures": [
            {
                "role": s.slot,
                "form": s.form,
                "serial": s.serial,
                "signed_at": iso_utc(s.signed_at),
                "time_source": s.time_source,
                "recorded_at": iso_utc(s.recorded_at),
            }
            for s in signatures_of(session, report.id)
        ],
        "charges": {
            "tariff": report.tariff,
            "price": report.price,
            "charged_at": at(report.charged_at),
            "transaction": report.charge_txn,
            "storage_transaction": report.storage_txn,
            "reversal_transaction": report.reversal_txn,
        },
        "delivery": {
            "completed_at": at(report.completed_at),
            "queued_at": at(report.queued_at),
            "sent_at": at(report.sent_at),
            "delivered_at": at(report.delivered_at),
            "attempts": report.attempts,
            "next_attempt_at": at(report.next_attempt_at),
            "last_error": report.last_error,
        },
    }
    if with_events:
        view["events"] = [_event_json(e) for e in events_of(session, report.id)]
    return view


_README = """Evidence package of report {id}
INN {inn}, form {kind}, period {period}, to {agency} office {office}.

Check each piece with openssl (any machine, no Tamga needed):

  # the signatures over the document, chained to Tamga's root CA
  openssl cms -verify -binary -inform DER -in signatures/head.p7s \\
      -content "document/{name}" -CAfile ca.pem -purpose any -out /dev/null
  openssl cms -verify -binary -inform DER -in signatures/accountant.p7s \\
      -content "document/{name}" -CAfile ca.pem -purpose any -out /dev/null
  # Tamga's dispatch confirmation (prints the statement: report, document hash, sent_at)
  openssl cms -verify -inform DER -in dispatch-confirmation.p7m -CAfile ca.pem -purpose any
  # the agency's receipt and check result, with the agency's own certificate
  openssl cms -verify -inform DER -in receipt.p7m -CAfile agency.pem -partial_chain \\
      -purpose any
  openssl cms -verify -inform DER -in check-result.p7m -CAfile agency.pem -partial_chain \\
      -purpose any
  # the document's hash
  sha256sum "document/{name}"     # {sha256}

events.json is the report's whole history as Tamga recorded it.
"""


def package(session: Session, report: Report, ca_chain: Sequence[x509.Certificate]) -> bytes:
    """The ZIP (deterministic member order; the bytes exactly as filed and received)."""
    agency = session.get_one(Agency, report.agency_code)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:

        def put(name: str, data: bytes) -> None:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0)), data)

        put(
            "README.txt",
            _README.format(
                id=report.id,
                inn=report.inn,
                kind=report.kind,
                period=report.period,
                agency=report.agency_code,
                office=report.office_code,
                name=report.file_name,
                sha256=report.document_sha256,
            ).encode(),
        )
        put(f"document/{report.file_name}", report.document)
        for signature in signatures_of(session, report.id):
            put(f"signatures/{signature.slot}.p7s", signature.cms)
        if report.dispatch_confirmation is not None:
            put("dispatch-confirmation.p7m", report.dispatch_confirmation)
        if report.receipt is not None:
            put("receipt.p7m", report.receipt)
        if report.check_result is not None:
            put("check-result.p7m", report.check_result)
        put("agency.pem", agency_certificate(agency).public_bytes(Encoding.PEM))
        put("ca.pem", b"".join(c.public_bytes(Encoding.PEM) for c in ca_chain))
        events = [_event_json(e) for e in events_of(session, report.id)]
        put(
            "events.json",
            json.dumps(
                {"report": report_json(session, report, with_events=False), "events": events},
                ensure_ascii=False,
                indent=2,
            ).encode(),
        )
    return buffer.getvalue()

"""What the agency does with a delivery: register it once, answer its receipt (the same bytes on
every replay), decide its check result."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from agency_stub.controls import Controls, Settings
from agency_stub.pki import AgencyKeys, names_of
from agency_stub.protocol import Report, canonical_json, utc_now_iso
from agency_stub.store import Store

__all__ = ["Conflict", "Stub"]

log = logging.getLogger("agency_stub")


class Conflict(Exception):
    """The report id was received before with another document (409)."""

    def __init__(self, report_id: str, known_sha256: str) -> None:
        super().__init__(
            f"report {report_id} was received with document_sha256 {known_sha256}; "
            "a report id names one document"
        )


@dataclass
class Stub:
    """One agency gateway: its keys, its state, its controls."""

    keys: AgencyKeys
    store: Store
    controls: Controls

    @classmethod
    def open(cls, home: Path, keys: AgencyKeys, settings: Settings) -> Stub:
        return cls(keys, Store(home / "state.sqlite3"), Controls(settings))

    @property
    def agency(self) -> str:
        return self.keys.agency

    def receive(self, report: Report, settings: Settings) -> bytes:
        """The receipt (encapsulated CMS, DER) of ``report``: made and stored on the first
        delivery, the stored bytes on a replay; ``Conflict`` for another document."""
        with self.store.transaction() as db:
            known = self.store.find(db, report.report_id)
            if known is None:
                return self._register(db, report, settings)
            if known["document_sha256"] == report.document_sha256:
                self.store.count_replay(db, report.report_id)
                log.info("replay of report %s: the same receipt", report.report_id)
                receipt: bytes = known["receipt"]
                return receipt
            self.store.count_conflict(db, report.report_id)
            known_sha256: str = known["document_sha256"]
        raise Conflict(report.report_id, known_sha256)

    def _register(self, db: sqlite3.Connection, report: Report, settings: Settings) -> bytes:
        received_at = utc_now_iso()
        year = int(received_at[:4])
        prefix = names_of(self.agency)[2]
        registration = f"{prefix}-{year}-{self.store.next_registration(db, year):06d}"
        receipt = self.keys.sign(
            canonical_json(
                {
                    "type": "delivery-receipt",
                    "report_id": report.report_id,
                    "agency": self.agency,
                    "office": report.office,
                    "document_sha256": report.document_sha256,
                    "received_at": received_at,
                    "registration_number": registration,
                }
            )
        )
        check = {"accept": "accepted", "reject": "rejected"}.get(settings.check)
        self.store.insert(
            db,
            report_id=report.report_id,
            document_sha256=report.document_sha256,
            registration_number=registration,
            received_at=received_at,
            request_json=_summary(report),
            receipt=receipt,
            check_result=check,
            check_message=settings.reject_message if check == "rejected" else "",
            result_copies=2 if settings.duplicate_results else 1,
            result_status="none" if check is None else "pending",
            next_attempt_at=None if check is None else time.time() + settings.check_delay,
        )
        log.info("report %s registered as %s", report.report_id, registration)
        return receipt


def _summary(report: Report) -> str:
    """What the stub keeps of a delivery besides its receipt (not the document itself)."""
    return canonical_json(
        {
            "report_id": report.report_id,
            "office": report.office,
            "inn": report.inn,
            "kind": report.kind,
            "period": report.period,
            "document_bytes": len(report.document),
            "signatures": len(report.signatures),
        }
    ).decode()

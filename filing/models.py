"""Database rows of filing: agencies and offices, reports, their signatures and events.

``report_signatures`` and ``report_events`` are append-only (migration 0010's triggers): a
report's history is evidence a commission reads; a correction is a new event, never an edit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime

__all__ = ["Agency", "AgencyOffice", "Report", "ReportEvent", "ReportSignature"]

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Agency(Base):
    """A state agency reports go to: its delivery endpoint and the certificate it signs with."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)  # tax, social-fund, ...
    name: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(500))  # base URL of its gateway
    # The agency's receipt-signing certificate (DER): receipts and results verify with it only.
    receipt_certificate: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgencyOffice(Base):
    """One office of an agency (a district tax office): reports are charged per office."""

    __tablename__ = "agency_offices"
    __table_args__ = (UniqueConstraint("agency_code", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Report(Base):
    """A report as filed: its bytes exactly as received, its state, what it cost."""

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint(
            "delivery_status IN ('awaiting_signatures', 'awaiting_head', 'awaiting_accountant',"
            " 'awaiting_payment', 'queued', 'sent', 'delivered', 'stopped')",
            name="delivery_status_known",
        ),
        CheckConstraint(
            "check_status IN ('none', 'awaiting_check', 'accepted', 'rejected')",
            name="check_status_known",
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUID, the agency sees it
    inn: Mapped[str] = mapped_column(ForeignKey("subscribers.inn"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"))
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(8))
    period_type: Mapped[str] = mapped_column(String(16))
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    office_code: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(200))
    document: Mapped[bytes] = mapped_column(LargeBinary)
    document_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    filed_by: Mapped[str] = mapped_column(String(64))
    request_key: Mapped[str | None] = mapped_column(String(250), unique=True)  # idempotency
    request_print: Mapped[str | None] = mapped_column(String(64))
    delivery_status: Mapped[str] = mapped_column(String(24), index=True)
    check_status: Mapped[str] = mapped_column(String(16))
    check_message: Mapped[str | None] = mapped_column(String(2000))
    # Completion (the second signature) and what it cost.
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    tariff: Mapped[str | None] = mapped_column(String(64))
    price: Mapped[int | None] = mapped_column(BigInteger)
    charge_txn: Mapped[int | None] = mapped_column(BigInteger)  # ledger transaction id
    storage_txn: Mapped[int | None] = mapped_column(BigInteger)  # the month's storage fee
    reversal_txn: Mapped[int | None] = mapped_column(BigInteger)  # a stop's refund
    charged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Delivery: a worker holds the report until lease_until; retries wait for next_attempt_at.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    dispatch_confirmation: Mapped[bytes | None] = mapped_column(LargeBinary)
    registration_number: Mapped[str | None] = mapped_column(String(64))
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary)  # the agency's signed receipt
    check_result: Mapped[bytes | None] = mapped_column(LargeBinary)  # its signed verdict
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReportSignature(Base):
    """One of a report's two signatures (append-only): a slot filled by a verified CMS."""

    __tablename__ = "report_signatures"
    __table_args__ = (
        UniqueConstraint("report_id", "slot"),
        CheckConstraint("slot IN ('head', 'accountant')", name="slot_known"),
        CheckConstraint("form IN ('cms', 'cloud')", name="form_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), index=True)
    slot: Mapped[str] = mapped_column(String(16))
    form: Mapped[str] = mapped_column(String(8))  # an uploaded CMS, or made here with a cloud key
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    serial: Mapped[str] = mapped_column(String(40))
    cms: Mapped[bytes] = mapped_column(LargeBinary)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    time_source: Mapped[str] = mapped_column(String(24))
    claimed_signing_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(64))


class ReportEvent(Base):
    """One transition of a report (append-only): when, who, the statuses after it, any document."""

    __tablename__ = "report_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    delivery_status: Mapped[str] = mapped_column(String(24))
    check_status: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    document: Mapped[bytes | None] = mapped_column(LargeBinary)  # a receipt, a result, a CMS

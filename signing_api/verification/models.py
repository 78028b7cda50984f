"""Database rows of the dispute procedure: one ``dispute_cases`` row per case opened.

A case keeps the material exactly as uploaded (with SHA-256s), the report the engine made of it
(canonical JSON bytes and their SHA-256), the verdict, the engine's version, who opened it, who
paid (§8.5: the subscriber) and the ledger transaction of the fee. The table is append-only
(migration 0011's triggers): a case is evidence; a second look is a new case.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime

__all__ = ["DisputeCase"]


class DisputeCase(Base):
    """One dispute case: the material, the report, the verdict and the fee (append-only)."""

    __tablename__ = "dispute_cases"
    __table_args__ = (
        CheckConstraint("form IN ('cms', 'pdf', 'package')", name="form_known"),
        CheckConstraint(
            "indication IN ('TOTAL-PASSED', 'TOTAL-FAILED', 'INDETERMINATE')",
            name="indication_known",
        ),
        CheckConstraint(
            "(form = 'cms' AND signature IS NOT NULL)"
            " OR (form <> 'cms' AND signature IS NULL AND document IS NOT NULL)",
            name="material_fits_form",
        ),
        CheckConstraint("fee > 0", name="fee_positive"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a random UUID
    # §8.5: the subscriber who asked for the procedure pays its fee.
    subscriber_inn: Mapped[str] = mapped_column(ForeignKey("customer_accounts.inn"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"))
    opened_by: Mapped[str] = mapped_column(String(64))  # the journal's actor ("client:7")
    opened_as: Mapped[str] = mapped_column(String(16))  # the client's role: commission, officer
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    request_key: Mapped[str | None] = mapped_column(String(250), unique=True)  # idempotency
    request_print: Mapped[str] = mapped_column(String(64))
    # The material: ``cms`` = a signature (detached with its document, or encapsulated);
    # ``pdf`` and ``package`` = one file, kept in the document columns.
    form: Mapped[str] = mapped_column(String(8))
    document_name: Mapped[str | None] = mapped_column(String(200))
    document: Mapped[bytes | None] = mapped_column(LargeBinary)
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    document_size: Mapped[int | None] = mapped_column(BigInteger)
    signature_name: Mapped[str | None] = mapped_column(String(200))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature_sha256: Mapped[str | None] = mapped_column(String(64))
    signature_size: Mapped[int | None] = mapped_column(BigInteger)
    # The report: canonical JSON (sorted keys, no spaces, UTF-8), served byte for byte.
    report: Mapped[bytes] = mapped_column(LargeBinary)
    report_sha256: Mapped[str] = mapped_column(String(64))
    indication: Mapped[str] = mapped_column(String(16))
    sub_indication: Mapped[str | None] = mapped_column(String(48))
    engine: Mapped[str] = mapped_column(String(200))
    # The fee: the tariff, the amount (tyiyn) and its ledger transaction (key ``dispute:<id>``).
    tariff: Mapped[str] = mapped_column(String(64))
    fee: Mapped[int] = mapped_column(BigInteger)
    fee_key: Mapped[str] = mapped_column(String(250), unique=True)
    fee_txn: Mapped[int] = mapped_column(BigInteger)

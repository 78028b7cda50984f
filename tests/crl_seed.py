"""Certificate rows in bulk for CRL tests and bench/crl.py: Core inserts, no HSM, no ORM.

The rows are registry rows like the ones issuance leaves (status, dates, reason), without a
signed body: the CRL builders read only serial, status, revocation fields and validity.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ca.models import Certificate

__all__ = ["certificate_rows", "seed_certificates"]

_REASONS = ("key_compromise", "superseded", "cessation_of_operation", "unspecified",
            "certificate_hold")  # fmt: skip


def certificate_rows(
    *, inn: str, holder_id: int, count: int, now: datetime, status: str = "revoked"
) -> Iterator[dict[str, object]]:
    """``count`` certificate rows of holder ``holder_id``: revoked (reasons in turn; a third
    with an invalidity date; certificateHold ones suspended) or ``active``."""
    for index in range(count):
        serial = secrets.randbits(159) | 1 << 158
        reason = _REASONS[index % len(_REASONS)] if status != "active" else None
        row_status = status
        if reason == "certificate_hold":
            row_status = "suspended"
        yield {
            "serial": f"{serial:x}",
            "subscriber_inn": inn,
            "holder_id": holder_id,
            "role": "head",
            "storage": "rutoken",
            "key_spec": "ec-p256",
            "key_label": None,
            "spki_sha256": f"{serial:064x}"[-64:],
            "subject": "CN=bench",
            "requisites": {},
            "not_before": now - timedelta(days=30),
            "not_after": now + timedelta(days=335),
            "status": row_status,
            "tbs_sha256": "0" * 64,
            "der": None,
            "tariff": "bench",
            "price": 0,
            "payment_key": f"bench:{serial:x}",
            "auto_renew": False,
            "created_at": now - timedelta(days=30),
            "created_by": "bench",
            "issued_at": now - timedelta(days=30),
            "revoked_at": None if status == "active" else now - timedelta(seconds=index + 1),
            "revocation_reason": reason,
            "invalidity_date": now - timedelta(days=2) if reason and index % 3 == 0 else None,
        }


def seed_certificates(
    session: Session,
    *,
    inn: str,
    holder_id: int,
    count: int,
    now: datetime,
    status: str = "revoked",
    batch: int = 20_000,
) -> None:
    """Insert ``count`` rows (:func:`certificate_rows`) in batches of ``batch``."""
    rows = certificate_rows(inn=inn, holder_id=holder_id, count=count, now=now, status=status)
    chunk: list[dict[str, object]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch:
            session.execute(insert(Certificate), chunk)
            chunk = []
    if chunk:
        session.execute(insert(Certificate), chunk)

"""The mail outbox: a message is written in the transaction that decided to send it.

A domain service that must tell someone something (an activation code to a holder, a notice of
a contact change) calls :func:`enqueue` inside its own transaction, so the message exists if and
only if the decision was committed. Delivery happens afterwards, outside any transaction, through
a real SMTP client (``signing_api.mail``): at the end of the request that enqueued it and, for
what failed, by ``tamga mail send``.

A delivered message keeps its envelope (recipient, subject, purpose, times) as a record of what
was sent, but its **body is erased**: bodies may carry one-time secrets (activation codes), which
must not rest in the database once they have left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from db.base import Base, UTCDateTime

__all__ = ["Message", "OutboxMail", "claim_pending", "enqueue", "mark_failed", "mark_sent"]

BigId = BigInteger().with_variant(Integer(), "sqlite")
MAX_ATTEMPTS = 20  # after this many failed deliveries a message stays for an operator to see


class OutboxMail(Base):
    """One message to send; ``body`` is None once it is sent."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(64))  # e.g. "activation-code"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))


@dataclass(frozen=True)
class Message:
    """What a sender needs of one pending message."""

    id: int
    recipient: str
    subject: str
    body: str


def enqueue(
    session: Session, *, recipient: str, subject: str, body: str, purpose: str, now: datetime
) -> int:
    """Add a message to the outbox (in the caller's transaction); its id."""
    row = OutboxMail(
        recipient=recipient,
        subject=subject,
        body=body,
        purpose=purpose,
        created_at=now,
        attempts=0,
    )
    session.add(row)
    session.flush()
    return row.id


def claim_pending(
    session: Session, *, limit: int = 50, ids: list[int] | None = None
) -> list[Message]:
    """Unsent messages, oldest first, locked so that two senders never send one twice."""
    query = (
        select(OutboxMail)
        .where(OutboxMail.sent_at.is_(None), OutboxMail.attempts < MAX_ATTEMPTS)
        .order_by(OutboxMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        query = query.where(OutboxMail.id.in_(ids))
    return [
        Message(row.id, row.recipient, row.subject, row.body or "")
        for row in session.scalars(query)
    ]


def mark_sent(session: Session, message_id: int, *, now: datetime) -> None:
    row = session.get_one(OutboxMail, message_id)
    row.sent_at, row.body, row.last_error = now, None, None
    row.attempts += 1


def mark_failed(session: Session, message_id: int, *, error: str) -> None:
    row = session.get_one(OutboxMail, message_id)
    row.attempts += 1
    row.last_error = error[:500]

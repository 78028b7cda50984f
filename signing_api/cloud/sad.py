"""Using a SAD: once, for exactly the hashes, client, company and role it was authorised for."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ca.models import Certificate
from signing_api.cloud.errors import Refusal, SigningRefused
from signing_api.cloud.models import SignatureActivation

__all__ = ["consume"]


def consume(
    session: Session,
    *,
    sad: object,
    certificate: Certificate,
    client_id: int,
    hashes: list[str],
    now: datetime,
) -> SignatureActivation:
    """The SAD's activation, used up now: SigningRefused unless every binding matches."""
    if not isinstance(sad, str) or not sad:
        raise SigningRefused(Refusal.INVALID_REQUEST, "SAD is required", field="SAD")
    digest = hashlib.sha256(sad.encode()).hexdigest()
    row = session.scalars(
        select(SignatureActivation).where(SignatureActivation.sad_sha256 == digest)
    ).one_or_none()
    refused = SigningRefused(
        Refusal.INVALID_REQUEST, "the SAD is not valid for this request", field="SAD"
    )
    if row is None or row.certificate_id != certificate.id or row.client_id != client_id:
        raise refused
    if sorted(row.hashes) != sorted(hashes) or len(hashes) > row.num_signatures:
        raise SigningRefused(
            Refusal.INVALID_REQUEST, "the SAD was authorised for other hashes", field="SAD"
        )
    if row.used_at is not None:
        raise SigningRefused(Refusal.INVALID_REQUEST, "the SAD was used already", field="SAD")
    if row.expires_at <= now:
        raise SigningRefused(Refusal.INVALID_REQUEST, "the SAD has expired", field="SAD")
    won = session.execute(
        update(SignatureActivation)
        .where(SignatureActivation.id == row.id, SignatureActivation.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent request used it
        raise SigningRefused(Refusal.INVALID_REQUEST, "the SAD was used already", field="SAD")
    session.refresh(row)
    return row

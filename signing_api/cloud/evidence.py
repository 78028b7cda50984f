"""Evidence of cloud signatures: one row per signed hash, one journal entry per call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ca.models import Certificate
from db import audit
from signing_api.cloud.models import CloudSignature, SignatureActivation

__all__ = ["record_signatures"]


def record_signatures(
    session: Session,
    *,
    kind: str,
    certificate: Certificate,
    activation: SignatureActivation,
    hash_algorithm: str,
    document_hashes: list[bytes],
    now: datetime,
    actor: str,
    tst_serial: str | None = None,
    signature: bytes | None = None,
) -> list[CloudSignature]:
    """The evidence rows of one call (one per hash) and its one audit entry, written last.

    One journal entry per call, listing every hash, keeps the journal's head lock — taken by
    the append and held to the commit — as short as one entry whatever the batch size.
    """
    rows = [
        CloudSignature(
            kind=kind,
            certificate_id=certificate.id,
            serial=certificate.serial,
            activation_id=activation.id,
            client_id=activation.client_id,
            inn=activation.inn,
            role=activation.role,
            end_user_ip=activation.end_user_ip,
            hash_algorithm=hash_algorithm,
            document_hash=digest.hex(),
            signed_at=now,
            tst_serial=tst_serial,
            signature=signature,
        )
        for digest in document_hashes
    ]
    session.add_all(rows)
    session.flush()
    details: dict[str, Any] = {
        "signatures": [row.id for row in rows],
        "serial": certificate.serial,
        "inn": activation.inn,
        "role": activation.role,
        "sad": activation.id,
        "hashes": [row.document_hash for row in rows],
        "hash_algorithm": hash_algorithm,
        "end_user_ip": activation.end_user_ip,
    }
    if tst_serial:
        details["tst_serial"] = tst_serial
    audit.append(
        session,
        actor=actor,
        action=f"csc.signature.{kind}",
        object=f"certificate:{certificate.serial}",
        details=details,
        now=now,
    )
    return rows

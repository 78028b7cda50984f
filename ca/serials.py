"""Certificate serial numbers: 159 bits from the OS CSPRNG, unique in the database."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.errors import CAError
from ca.models import CertificateSerial
from policies.ca_profiles import SERIAL_BITS

__all__ = ["reserve_serial"]


def reserve_serial(session: Session, *, issuer: str, purpose: str, now: datetime) -> int:
    """Draw a fresh serial and record it, in the caller's transaction."""
    for _ in range(8):
        serial = secrets.randbits(SERIAL_BITS)
        if serial < 1 << 64:  # astronomically rare; keep at least 64 bits of entropy visible
            continue
        key = format(serial, "x")
        if session.scalar(select(CertificateSerial).where(CertificateSerial.serial == key)):
            continue
        session.add(CertificateSerial(serial=key, issuer=issuer, purpose=purpose, reserved_at=now))
        session.flush()
        return serial
    raise CAError("could not draw an unused certificate serial")  # pragma: no cover

"""100,000 certificate serials drawn through ``reserve_serial`` (the production path).

RFC 5280 §4.1.2.2: positive, at most 20 octets, unique per CA. Run on both databases: the
uniqueness guarantee is the table's primary key, and the draw must never hand out a reserved one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from ca import CertificateSerial, reserve_serial
from policies.ca_profiles import SERIAL_BITS
from signing_api.runtime import Runtime

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

COUNT = 100_000
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def test_100k_serials_are_unique_positive_and_below_2_159(runtime: Runtime) -> None:
    if runtime.config.database_url.startswith("sqlite"):
        pytest.skip("the 100k draw runs on PostgreSQL (about 50 s); the logic is the same")
    drawn: list[int] = []
    for _ in range(COUNT // 10_000):  # ten transactions, as ten busy minutes would make them
        with runtime.transaction() as session:
            drawn += [
                reserve_serial(session, issuer="issuing", purpose="test", now=NOW)
                for _ in range(10_000)
            ]
    assert len(drawn) == COUNT == len(set(drawn))
    assert all(1 << 64 <= s < 1 << SERIAL_BITS for s in drawn)
    # The high bit of the 20th octet stays clear: the DER INTEGER is positive in 20 octets.
    assert all(len(s.to_bytes(20, "big", signed=True)) == 20 for s in drawn)
    with runtime.transaction() as session:
        stored = session.scalar(select(func.count()).select_from(CertificateSerial))
        assert stored == COUNT
        assert {int(h, 16) for h in session.scalars(select(CertificateSerial.serial))} == set(drawn)
    # 159 random bits: about half of them have the top bit set (a biased draw would not).
    top = sum(s >> (SERIAL_BITS - 1) for s in drawn)
    assert 0.48 * COUNT < top < 0.52 * COUNT

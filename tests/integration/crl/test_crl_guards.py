"""CRL guarantees (docs/crl.md) that mutation testing (``make mutation``, area ``revocation``)
found unproved, on SQLite and PostgreSQL with the CA key in SoftHSM: an entry whose certificate
expired before thisUpdate leaves the CRL without taking the entries after it along, and an
entry whose notAfter *is* thisUpdate (not before it) stays."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crl import RevokedEntry
from signing_api.runtime import Runtime
from tests.integration.crl.test_crl import NOW, _hierarchy, _issue, _serial

pytestmark = [pytest.mark.hsm, pytest.mark.db]


def test_expired_entries_leave_alone_and_expiry_at_this_update_stays(runtime: Runtime) -> None:
    _hierarchy(runtime)
    expired = RevokedEntry(_serial(), NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    at_edge = RevokedEntry(_serial(), NOW - timedelta(days=1), not_after=NOW)
    live = RevokedEntry(_serial(), NOW - timedelta(hours=1), not_after=NOW + timedelta(days=9))
    issued = _issue(runtime, "issuing", (expired, at_edge, live))
    assert issued.this_update == NOW
    listed = {entry.serial_number for entry in issued.load()}
    assert listed == {at_edge.serial, live.serial}
    assert issued.entries == 2

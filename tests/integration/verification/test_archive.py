"""``trust_from_archive``: the operator's CA certificates and every CRL, parsed once per process."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crl import CRLIssue
from signing_api.verification.archive import trust_from_archive
from tests.ca_fixtures import CaApi
from tests.integration.verification.test_disputes_page import publish_crls

pytestmark = [pytest.mark.hsm, pytest.mark.db]


def test_the_archive_is_read_once_then_only_new_crls(ca_api: CaApi) -> None:
    publish_crls(ca_api)
    with ca_api.runtime.transaction() as session:
        first = trust_from_archive(session)
        again = trust_from_archive(session)
        count = session.scalar(select(func.count(CRLIssue.id)))
    assert again is first  # nothing changed: the parsed archive is reused
    assert len(first.crls) == count and len(first.anchors) == 1

    publish_crls(ca_api)  # two more CRLs (root and issuing)
    with ca_api.runtime.transaction() as session:
        later = trust_from_archive(session)
        ders = set(session.scalars(select(CRLIssue.der)))
    assert later is not first
    assert {crl.dump() for crl in later.crls} == ders
    assert later.anchors == first.anchors
    assert len([f for f in later.files if f.role == "crl"]) == len(ders) == count + 2


def test_another_database_is_never_answered_from_the_cache(ca_api: CaApi) -> None:
    """A second installation (other keys, other CRLs) gets its own archive."""
    publish_crls(ca_api)
    with ca_api.runtime.transaction() as session:
        mine = trust_from_archive(session)
        key = str(session.get_bind().engine.url)
    from signing_api.verification import archive

    stale = archive._parsed[key]
    # Pretend the cache came from another history: the last CRL it read is not in this database.
    archive._parsed[key] = archive._Parsed(
        stale.database, stale.ca_state, (stale.last_crl[0], "0" * 64), stale.trust
    )
    with ca_api.runtime.transaction() as session:
        fresh = trust_from_archive(session)
    assert fresh is not mine
    assert [c.dump() for c in fresh.crls] == [c.dump() for c in mine.crls]

"""CRL guarantees (docs/crl.md) that mutation testing (``make mutation``, area ``revocation``)
found unproved, on SQLite and PostgreSQL with the CA key in SoftHSM: an entry whose certificate
expired before thisUpdate leaves the CRL without taking the entries after it along, and an
entry whose notAfter *is* thisUpdate (not before it) stays; the published file is replaced by a
rename from the same directory, and a failed publication leaves no temporary file."""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from crl import RevokedEntry, write_crl_files
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


def test_the_crl_is_renamed_into_place_from_its_own_directory() -> None:
    """docs/crl.md (crl/publish.py): the DER goes to a temporary file *in the same directory*
    and is renamed over the old name, so the publish directory may be any volume: here a tmpfs
    other than the temporary directory's file system (a rename cannot cross file systems).

    Mutants killed: ``write_crl_files`` 14, 17 (the temporary file made in the default
    temporary directory: the rename failed with EXDEV).
    """
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev:
        pytest.skip("needs /dev/shm on a file system other than the temporary directory's")
    with tempfile.TemporaryDirectory(dir=shm) as volume:
        target = write_crl_files(b"crl", "issuing", Path(volume) / "crl")
        assert target.read_bytes() == b"crl"
        assert os.listdir(target.parent) == ["issuing.crl"]


def test_a_failed_publication_raises_its_error_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    """crl/publish.py: a reader sees the old file or the new one, and a failure removes the
    temporary file and raises the failure itself (here the target name is taken by a
    directory, so the rename fails).

    Mutant killed: ``write_crl_files`` 38 (the clean-up unlinked ``Path(None)``: a TypeError
    instead of the failure, and the temporary file left behind).
    """
    directory = tmp_path / "crl"
    (directory / "root.crl").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        write_crl_files(b"crl", "root", directory)
    assert os.listdir(directory) == ["root.crl"]

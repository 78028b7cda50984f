"""``tamga verify`` as a commission runs it: a subprocess, files only, no ``var/`` anywhere near.

Exit status 0 exactly when TOTAL-PASSED (``chain``: valid at ``--at``), 1 when not, 2 for usage
errors and unreadable input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.verification_pki import PKI

pytestmark = pytest.mark.slow  # each case starts the `tamga` command

DOCUMENT = "Отчёт в Социальный фонд, ноябрь 2026\n".encode()


def tamga(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMGA_")}
    return subprocess.run(
        [sys.executable, "-c", "from signing_api.cli import main; main()", *args],
        cwd=cwd,
        env=env | {"PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A PKI written out as a commission receives it: root, issuing CA, CRL directory, material."""
    now = datetime.now(UTC)
    pki = PKI()
    holder = pki.subscriber("Исакова Айгуль", now - timedelta(days=30), now + timedelta(days=300))
    revoked = pki.subscriber("Revoked Holder", now - timedelta(days=30), now + timedelta(days=300))
    pki.issue_crl(now - timedelta(days=2))
    (tmp_path / "report.xml").write_bytes(DOCUMENT)
    (tmp_path / "head.p7s").write_bytes(
        pki.sign(DOCUMENT, holder, now - timedelta(hours=5), stamp_at=now - timedelta(hours=5))
    )
    (tmp_path / "revoked.p7s").write_bytes(pki.sign(DOCUMENT, revoked, now - timedelta(hours=5)))
    pki.revoke(revoked, now - timedelta(hours=2))
    pki.issue_crl(now - timedelta(hours=2))
    (tmp_path / "root.pem").write_bytes(pki.root.pem)
    (tmp_path / "issuing.der").write_bytes(pki.issuing.der)
    (tmp_path / "holder.pem").write_bytes(holder.pem)
    (tmp_path / "revoked.pem").write_bytes(revoked.pem)
    crls = tmp_path / "crls"
    crls.mkdir()
    for index, der in enumerate(pki.crl_ders()):
        (crls / f"{index:03d}.crl").write_bytes(der)
    (crls / "README.txt").write_text("not a CRL: ignored by --crl-dir\n")
    return tmp_path


TRUST = ("--trust", "root.pem", "--intermediate", "issuing.der", "--crl-dir", "crls")


def test_a_genuine_signature_exits_0_with_the_verdict_and_the_steps(files: Path) -> None:
    done = tamga(
        files, "verify", "signature", "--document", "report.xml", "--signature", "head.p7s", *TRUST
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("verdict: TOTAL-PASSED")
    for clause in ("8.2.1", "8.2.2", "8.2.3", "8.2.4", "8.2.5", "8.2.6", "8.2.7"):
        assert f"  {clause} " in done.stdout
    assert "Исакова Айгуль" in done.stdout


def test_json_prints_the_whole_report(files: Path) -> None:
    done = tamga(
        files,
        "verify",
        "signature",
        "--document",
        "report.xml",
        "--signature",
        "head.p7s",
        *TRUST,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["indication"] == "TOTAL-PASSED"
    assert [s["clause"] for s in report["signatures"][0]["steps"]] == [
        f"8.2.{n}" for n in range(1, 8)
    ]
    roles = {i["role"] for i in report["inputs"]}
    assert {"document", "signature", "trust-anchor", "intermediate", "crl"} <= roles


def test_a_changed_document_exits_1(files: Path) -> None:
    (files / "changed.xml").write_bytes(DOCUMENT + b" ")
    done = tamga(
        files, "verify", "signature", "--document", "changed.xml", "--signature", "head.p7s", *TRUST
    )
    assert done.returncode == 1
    assert "TOTAL-FAILED / HASH_FAILURE" in done.stdout


def test_revoked_without_a_time_stamp_exits_1_indeterminate(files: Path) -> None:
    done = tamga(
        files,
        "verify",
        "signature",
        "--document",
        "report.xml",
        "--signature",
        "revoked.p7s",
        *TRUST,
    )
    assert done.returncode == 1
    assert "INDETERMINATE / REVOKED_NO_POE" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--document", "report.xml", "--signature", "report.xml"), "not a CMS signature"),
        (("--document", "report.xml", "--signature", "missing.p7s"), "missing.p7s"),
        (("--document", "report.xml"), "give exactly one of"),
        (("--signature", "head.p7s", "--pdf", "head.p7s"), "give exactly one of"),
        (("--pdf", "report.xml"), "not a readable PDF"),
        (("--package", "report.xml"), "not a ZIP package"),
    ],
)
def test_usage_errors_and_unreadable_input_exit_2(
    files: Path, args: tuple[str, ...], message: str
) -> None:
    done = tamga(files, "verify", "signature", *args, *TRUST)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_certificate_given_as_trust_that_is_not_one_exits_2(files: Path) -> None:
    done = tamga(
        files,
        "verify",
        "signature",
        "--document",
        "report.xml",
        "--signature",
        "head.p7s",
        "--trust",
        "report.xml",
    )
    assert done.returncode == 2
    assert "report.xml" in done.stderr and "Traceback" not in done.stderr


def test_chain_is_valid_now_and_not_after_the_revocation(files: Path) -> None:
    good = tamga(files, "verify", "chain", "holder.pem", *TRUST)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("path: VALID")
    before = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = tamga(files, "verify", "chain", "revoked.pem", *TRUST, "--at", before)
    assert earlier.returncode == 0, earlier.stdout + earlier.stderr
    later = tamga(files, "verify", "chain", "revoked.pem", *TRUST, "--json")
    assert later.returncode == 1
    assert json.loads(later.stdout)["sub_indication"] == "REVOKED"


def test_chain_refuses_a_moment_without_a_time_zone(files: Path) -> None:
    done = tamga(files, "verify", "chain", "holder.pem", *TRUST, "--at", "2026-11-30T12:00:00")
    assert done.returncode == 2
    assert "time zone" in done.stderr


def test_it_needs_no_installation(files: Path) -> None:
    """Run where no var/ exists and no TAMGA_HOME is set: nothing is created, the verdict comes."""
    before = sorted(p.name for p in files.iterdir())
    done = tamga(
        files, "verify", "signature", "--document", "report.xml", "--signature", "head.p7s", *TRUST
    )
    assert done.returncode == 0
    assert sorted(p.name for p in files.iterdir()) == before

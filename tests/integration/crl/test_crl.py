"""CRLs on real SoftHSM2 and real databases, checked by openssl and pkilint."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from ca import ensure_hierarchy
from ca.errors import HierarchyNotReady
from crl import (
    CRLIssue,
    ForeignIssuer,
    IssuedCRL,
    RevokedEntry,
    UnknownIssuer,
    crl_due,
    current_crl,
    issue_crl,
    write_crl_files,
)
from db import AuditEntry, verify_chain
from policies.ca_profiles import ISSUING_CA
from policies.crl import CRL_POLICY
from signing_api.app import create_app
from signing_api.runtime import Runtime
from tests.pki_tools import write_pem
from tests.tamga_fixtures import RunTamga

pytestmark = [pytest.mark.hsm, pytest.mark.db]

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
URL = "http://ca.example.kg"
_VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"


def _hierarchy(runtime: Runtime, now: datetime = NOW) -> tuple[x509.Certificate, x509.Certificate]:
    with runtime.transaction() as session:
        status = ensure_hierarchy(session, runtime.ca_token, public_url=URL, now=now)
    assert status.issuing is not None
    return status.root, status.issuing


def _issue(
    runtime: Runtime, issuer: str, revoked: tuple[RevokedEntry, ...] = (), now: datetime = NOW
) -> IssuedCRL:
    with runtime.transaction() as session:
        return issue_crl(
            session,
            issuer=issuer,
            token=runtime.ca_token,
            revoked=revoked,
            now=now,
            actor="test",
        )


def _serial() -> int:
    return secrets.randbits(159) | 1 << 158


def _write_crl(path: Path, issued: IssuedCRL) -> Path:
    path.write_bytes(issued.load().public_bytes(serialization.Encoding.PEM))
    return path


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def _openssl_crl_verified(der_file: Path, ca_file: Path) -> str:
    """``openssl crl -verify`` of a DER CRL against ``ca_file``; returns the ``-text`` dump."""
    checked = _openssl("crl", "-inform", "DER", "-in", str(der_file), "-CAfile", str(ca_file))
    assert checked.returncode == 0, checked.stderr
    verified = _openssl(
        "crl", "-inform", "DER", "-in", str(der_file), "-CAfile", str(ca_file), "-noout", "-verify"
    )
    assert verified.returncode == 0 and "verify OK" in verified.stdout + verified.stderr, (
        verified.stdout + verified.stderr
    )
    dump = _openssl("crl", "-inform", "DER", "-in", str(der_file), "-noout", "-text")
    assert dump.returncode == 0, dump.stderr
    return dump.stdout


def _pkilint_crl(der_file: Path) -> None:
    """pkilint's RFC 5280 CRL profile: no ERROR or FATAL finding."""
    tool = shutil.which("lint_crl") or str(_VENV_BIN / "lint_crl")
    result = subprocess.run(
        [tool, "lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR", str(der_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), (
        f"pkilint findings for {der_file.name}:\n{result.stdout}{result.stderr}"
    )


def _entries() -> tuple[RevokedEntry, ...]:
    return (
        RevokedEntry(
            serial=_serial(),
            revoked_at=NOW - timedelta(hours=2),
            reason=x509.ReasonFlags.key_compromise,
            invalidity_date=NOW - timedelta(days=3),
            not_after=NOW + timedelta(days=200),
        ),
        RevokedEntry(
            serial=_serial(),
            revoked_at=NOW - timedelta(hours=1),
            reason=x509.ReasonFlags.certificate_hold,
            not_after=NOW + timedelta(days=100),
        ),
        RevokedEntry(
            serial=_serial(),
            revoked_at=NOW - timedelta(days=1),
            reason=x509.ReasonFlags.unspecified,
        ),
        RevokedEntry(  # expired yesterday: no longer listed
            serial=_serial(),
            revoked_at=NOW - timedelta(days=30),
            reason=x509.ReasonFlags.superseded,
            not_after=NOW - timedelta(days=1),
        ),
    )


def test_issuing_crl_contents_pass_openssl_and_pkilint(runtime: Runtime, tmp_path: Path) -> None:
    root, issuing = _hierarchy(runtime)
    entries = _entries()
    issued = _issue(runtime, "issuing", entries)
    assert (issued.number, issued.entries) == (1, 3)
    assert issued.this_update == NOW and issued.next_update == NOW + timedelta(hours=48)
    crl = issued.load()
    assert crl.issuer == issuing.subject
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert isinstance(crl.signature_hash_algorithm, hashes.SHA384)
    compromised, held, unspecified, expired = entries
    assert crl.get_revoked_certificate_by_serial_number(expired.serial) is None
    listed = crl.get_revoked_certificate_by_serial_number(compromised.serial)
    assert listed is not None
    assert listed.revocation_date_utc == compromised.revoked_at
    assert listed.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.key_compromise
    )
    invalidity = listed.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == compromised.invalidity_date
    plain = crl.get_revoked_certificate_by_serial_number(unspecified.serial)
    assert plain is not None and len(plain.extensions) == 0  # unspecified: no reasonCode

    der_file = tmp_path / "issuing.crl"
    der_file.write_bytes(issued.der)
    dump = _openssl_crl_verified(der_file, write_pem(tmp_path / "chain.pem", issuing, root))
    for expected in ("X509v3 CRL Number", "Key Compromise", "Certificate Hold", "Invalidity Date"):
        assert expected in dump
    assert f"{held.serial:X}" in dump.replace(":", "").upper()
    _pkilint_crl(der_file)


def test_root_crl_is_empty_and_valid(runtime: Runtime, tmp_path: Path) -> None:
    root, _ = _hierarchy(runtime)
    issued = _issue(runtime, "root")
    assert issued.entries == 0 and list(issued.load()) == []
    der_file = tmp_path / "root.crl"
    der_file.write_bytes(issued.der)
    _openssl_crl_verified(der_file, write_pem(tmp_path / "root.pem", root))
    _pkilint_crl(der_file)


def test_numbers_increase_per_issuer_and_are_journaled(runtime: Runtime) -> None:
    _hierarchy(runtime)
    numbers = [_issue(runtime, "issuing", now=NOW + timedelta(minutes=i)).number for i in range(3)]
    assert numbers == [1, 2, 3]
    assert _issue(runtime, "root").number == 1  # each issuer has its own sequence
    with runtime.transaction() as session:
        newest = current_crl(session, "issuing", NOW + timedelta(hours=1))
        assert newest is not None and newest.number == 3
        assert current_crl(session, "issuing", NOW - timedelta(seconds=1)) is None
        assert not crl_due(session, "issuing", NOW + timedelta(hours=23))
        assert crl_due(session, "issuing", NOW + timedelta(minutes=2) + CRL_POLICY.reissue_every)
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "crl.issued")).all()
        assert [(r.object, r.details_dict()["number"]) for r in rows] == [
            ("crl:issuing", 1),
            ("crl:issuing", 2),
            ("crl:issuing", 3),
            ("crl:root", 1),
        ]
        assert verify_chain(session) > 4
    with pytest.raises(UnknownIssuer):
        _issue(runtime, "nope")


def test_crl_rows_are_append_only(runtime: Runtime) -> None:
    _hierarchy(runtime)
    _issue(runtime, "issuing")
    for statement in ("UPDATE crl_issues SET entries = 5", "DELETE FROM crl_issues"):
        with pytest.raises(DBAPIError), runtime.transaction() as session:
            session.execute(text(statement))
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CRLIssue)) == 1


def test_bad_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RevokedEntry(serial=5, revoked_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        RevokedEntry(serial=0, revoked_at=NOW)
    with pytest.raises(ValueError, match="20 octets"):
        RevokedEntry(serial=1 << 159, revoked_at=NOW)
    assert RevokedEntry(serial=(1 << 159) - 1, revoked_at=NOW).serial.bit_length() == 159
    with pytest.raises(ValueError, match="delta CRLs"):
        RevokedEntry(serial=5, revoked_at=NOW, reason=x509.ReasonFlags.remove_from_crl)


def test_concurrent_issuers_take_distinct_consecutive_numbers(runtime: Runtime) -> None:
    _hierarchy(runtime)
    numbers: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def issue() -> None:
        try:
            start.wait()
            numbers.append(_issue(runtime, "issuing").number)  # own session per thread
        except BaseException as ex:  # pragma: no cover - reported below
            errors.append(ex)

    threads = [threading.Thread(target=issue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(numbers) == list(range(1, 9))
    with runtime.transaction() as session:
        stored = session.scalars(select(CRLIssue.number).order_by(CRLIssue.id)).all()
        # Commit order is number order: no node ever publishes a smaller number after a larger.
        assert list(stored) == sorted(stored) == list(range(1, 9))
        assert verify_chain(session) > 8


def _end_entity(runtime: Runtime, issuing: x509.Certificate) -> x509.Certificate:
    """A throwaway subscriber certificate signed by the issuing CA key in the HSM."""
    key = ec.generate_private_key(ec.SECP256R1())
    ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Holder")]))
        .issuer_name(issuing.subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    return builder.sign(runtime.ca_token.private_key(ISSUING_CA.key_label), hashes.SHA384())


def test_revoked_certificate_fails_openssl_crl_check(runtime: Runtime, tmp_path: Path) -> None:
    root, issuing = _hierarchy(runtime)
    cert = _end_entity(runtime, issuing)
    files = [
        str(write_pem(tmp_path / "root.pem", root)),
        str(write_pem(tmp_path / "issuing.pem", issuing)),
        str(write_pem(tmp_path / "ee.pem", cert)),
    ]
    at = str(int((NOW + timedelta(hours=1)).timestamp()))

    def verify(issued: IssuedCRL) -> subprocess.CompletedProcess[str]:
        crl_file = _write_crl(tmp_path / f"issuing-{issued.number}.pem", issued)
        return _openssl(
            "verify", "-attime", at, "-crl_check", "-CRLfile", str(crl_file),
            "-CAfile", files[0], "-untrusted", files[1], files[2],
        )  # fmt: skip

    clean = verify(_issue(runtime, "issuing"))
    assert clean.returncode == 0 and "OK" in clean.stdout, clean.stdout + clean.stderr
    revoked = RevokedEntry(
        serial=cert.serial_number,
        revoked_at=NOW,
        reason=x509.ReasonFlags.key_compromise,
        invalidity_date=NOW - timedelta(hours=5),
        not_after=cert.not_valid_after_utc,
    )
    refused = verify(_issue(runtime, "issuing", (revoked,), now=NOW + timedelta(minutes=1)))
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr


def test_http_route_serves_with_caching_headers(runtime: Runtime) -> None:
    app = create_app(runtime.config)
    app.extensions["tamga"] = runtime
    client = app.test_client()
    missing = client.get("/crl/root.crl")  # no hierarchy yet
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    nope = client.get("/crl/nope.crl")
    assert nope.status_code == 404 and nope.mimetype == "application/problem+json"
    assert json.loads(nope.data)["type"] == "urn:tamga:problem:not-found"

    now = datetime.now(UTC)
    _hierarchy(runtime, now - timedelta(days=2))
    first = client.get("/crl/issuing.crl")
    assert first.status_code == 200 and first.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(first.data)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    etag = first.headers["ETag"]
    assert etag == f'"{hashlib.sha256(first.data).hexdigest()}"'
    last_modified = parsedate_to_datetime(first.headers["Last-Modified"])
    assert last_modified == crl.last_update_utc
    assert first.headers["Cache-Control"].startswith("public")
    max_age = int(first.headers["Cache-Control"].split("max-age=")[1])
    assert 48 * 3600 - 120 <= max_age <= 48 * 3600
    assert (runtime.config.crl_publish_dir / "issuing.crl").read_bytes() == first.data

    again = client.get("/crl/issuing.crl")  # fresh: served from the database, not reissued
    assert again.headers["ETag"] == etag
    assert client.get("/crl/issuing.crl", headers={"If-None-Match": etag}).status_code == 304
    since = format_datetime(last_modified, usegmt=True)
    assert client.get("/crl/issuing.crl", headers={"If-Modified-Since": since}).status_code == 304
    assert client.get("/crl/issuing.crl", headers={"If-None-Match": '"other"'}).status_code == 200

    _issue(runtime, "root", now=now - timedelta(hours=25))  # past its reissue time
    root = client.get("/crl/root.crl")
    assert root.status_code == 200
    number = x509.load_der_x509_crl(root.data).extensions.get_extension_for_class(x509.CRLNumber)
    assert number.value.crl_number == 2


def test_external_root_crl_is_not_ours(runtime: Runtime) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test National Root")])
    national = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    with runtime.transaction() as session:
        ensure_hierarchy(session, runtime.ca_token, public_url=URL, now=NOW, external_root=national)
    with pytest.raises(ForeignIssuer, match="not on token"):
        _issue(runtime, "root")
    with pytest.raises(HierarchyNotReady):  # the issuing certificate awaits import
        _issue(runtime, "issuing")
    app = create_app(runtime.config)
    app.extensions["tamga"] = runtime
    response = app.test_client().get("/crl/root.crl")
    assert response.status_code == 404 and "not on token" in json.loads(response.data)["detail"]


def test_write_crl_files_replaces_atomically(tmp_path: Path) -> None:
    target = write_crl_files(b"first", "root", tmp_path / "crl")
    first_inode = target.stat().st_ino
    with target.open("rb") as reader:  # a web server in the middle of sending the old CRL
        assert write_crl_files(b"second", "root", tmp_path / "crl") == target
        # Replaced by a rename, not rewritten in place: the open file is still the whole old CRL.
        assert reader.read() == b"first"
    assert target.stat().st_ino != first_inode
    assert target.read_bytes() == b"second" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == ["root.crl"]
    with pytest.raises(UnknownIssuer):
        write_crl_files(b"x", "../../etc", tmp_path)


def test_cli_publish_and_show(run_tamga: RunTamga, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_tamga(home, "init")
    first = run_tamga(home, "crl", "publish").stdout
    assert "root: CRL number 1" in first and "issuing: CRL number 1" in first
    # the issuing CA's delta follows its base, in the same number sequence
    assert "issuing: delta CRL number 2 (base 1)" in first
    second = run_tamga(home, "crl", "publish", "--issuer", "issuing").stdout
    assert "issuing: CRL number 3" in second and "root:" not in second
    assert "issuing: delta CRL number 4 (base 3)" in second
    delta_only = run_tamga(home, "crl", "publish", "--delta").stdout
    assert "issuing: delta CRL number 5 (base 3)" in delta_only
    assert "issuing: CRL number" not in delta_only
    root_pem = run_tamga(home, "ca", "export", "root").stdout
    issuing_pem = run_tamga(home, "ca", "export", "issuing").stdout
    chain = tmp_path / "chain.pem"
    chain.write_text(issuing_pem + root_pem)
    for name in ("root", "issuing", "issuing-delta"):
        _openssl_crl_verified(home / "publish" / "crl" / f"{name}.crl", chain)
        _pkilint_crl(home / "publish" / "crl" / f"{name}.crl")
    shown = run_tamga(home, "crl", "show", "issuing").stdout
    assert "number:     3" in shown and "entries:    0" in shown and "kind:       full" in shown
    delta = run_tamga(home, "crl", "show", "issuing", "--delta").stdout
    assert "number:     5" in delta and "base:       3" in delta and "kind:       delta" in delta
    assert run_tamga(home, "crl", "show", "root", "--delta", check=False).returncode == 2
    bad = run_tamga(home, "crl", "show", "nope", check=False)
    assert bad.returncode == 2

"""``tamga crl export-archive DIR``: every CRL ever issued and every CA certificate, checked by
openssl and sha256sum, not by our own parser.

A home made by ``tamga init`` (SQLite, SoftHSM): two certificates issued from CSRs, one revoked,
the CRLs published a few times; the export then holds each CRL as DER (``openssl crl``), the CA
certificates as PEM, and manifests that ``sha256sum -c`` accepts; ``openssl verify -crl_check``
with the exported root and issuing certificates and the newest issuing CRL accepts the valid
certificate and refuses the revoked one.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import billing
from signing_api.config import Config
from signing_api.runtime import Runtime
from tests.tamga_fixtures import RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

INN = "01234567890123"
CRL_NAME = re.compile(
    r"^(root|issuing)(-delta)?-([0-9]{6})-([0-9]{8}T[0-9]{6}Z)-([0-9]{8}T[0-9]{6}Z)\.crl$"
)


def _pay(home: Path, account: str, amount: int, receipt: str) -> None:
    with Runtime(Config.from_env(tamga_env(home))).transaction() as session:
        billing.record_payment(
            session, channel="cash", provider="", external_id=receipt, account=account,
            amount=amount, paid_at=datetime.now(UTC), now=datetime.now(UTC), actor="test",
        )  # fmt: skip


def _issue(tamga: RunTamga, home: Path, tmp: Path, holder: str, name: str) -> tuple[str, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
        .sign(key, hashes.SHA256())
    )
    csr_file = tmp / f"{name}.csr"
    csr_file.write_bytes(csr.public_bytes(serialization.Encoding.DER))
    out = tmp / f"{name}.pem"
    args = ["ca", "issue", "--holder", holder, "--role", "accountant", "--storage", "rutoken",
            "--csr", str(csr_file), "-o", str(out), "--json"]  # fmt: skip
    unpaid = tamga(home, *args, check=False)
    if unpaid.returncode == 1 and "payment account" in unpaid.stderr:
        _pay(home, unpaid.stderr.split("payment account ")[1][:16], 1200_00, f"{name}-1")
    elif unpaid.returncode == 0:
        return json.loads(unpaid.stdout)["serial"], out
    else:
        _pay(home, INN, 1200_00, f"{name}-2")
    return json.loads(tamga(home, *args).stdout)["serial"], out


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)


def test_export_archive_writes_every_crl_and_ca_certificate(
    run_tamga: RunTamga, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    run_tamga(home, "init")
    subscriber = ["--inn", INN, "--name", 'ОсОО "Тест"', "--legal-form", "ОсОО",
                  "--locality", "Бишкек", "--email", "office@test.kg"]  # fmt: skip
    run_tamga(home, "ca", "subscriber", "add", *subscriber)
    person = ["--inn", INN, "--full-name", "Асанова Айгуль", "--position", "Главный бухгалтер",
              "--passport-series", "ID1234567", "--email", "acc@test.kg", "--phone",
              "+996555123456", "--identity-document", "office file 2026/7"]  # fmt: skip
    holder = json.loads(run_tamga(home, "ca", "holder", "add", *person, "--json").stdout)["id"]
    valid, valid_pem = _issue(run_tamga, home, tmp_path, str(holder), "valid")
    revoked, revoked_pem = _issue(run_tamga, home, tmp_path, str(holder), "revoked")
    run_tamga(home, "crl", "publish")
    run_tamga(home, "ca", "revoke", revoked, "--reason", "keyCompromise")  # publishes again
    run_tamga(home, "crl", "publish", "--issuer", "issuing")

    archive = tmp_path / "archive" / "2027"  # the parent is missing too: both are created
    done = run_tamga(home, "crl", "export-archive", str(archive))
    assert "CA certificates written to" in done.stdout
    names = sorted(p.name for p in archive.iterdir())
    crls = [n for n in names if n.endswith(".crl")]
    certs = [n for n in names if n.endswith(".crt")]
    assert {"MANIFEST.txt", "manifest.json"} <= set(names)
    assert set(names) == {*crls, *certs, "MANIFEST.txt", "manifest.json"}

    # every CRL ever issued, each a DER CRL openssl reads, named issuer-number-dates
    issued = [CRL_NAME.match(n) for n in crls]
    assert all(issued), crls
    numbers = {(m[1], int(m[3])) for m in issued if m}
    # base and delta CRLs share the issuer's one number sequence
    issuing_numbers = sorted(n for issuer, n in numbers if issuer == "issuing")
    assert len(issuing_numbers) >= 3 and issuing_numbers == list(range(1, len(issuing_numbers) + 1))
    assert any(issuer == "root" for issuer, _ in numbers)
    for name in crls:
        checked = _openssl("crl", "-inform", "DER", "-noout", "-in", archive / name)
        assert checked.returncode == 0, (name, checked.stderr)
    assert f"{len(crls)} CRLs and {len(certs)} CA certificates" in done.stdout

    # every CA certificate, PEM: root, issuing, the TSA's and the dispatch key's
    kinds = {name.split("-")[0] for name in certs}
    assert {"root", "issuing", "tsa", "dispatch"} <= kinds, certs
    for name in certs:
        assert (archive / name).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")

    # the manifests: sha256sum checks the copy without Tamga; the JSON says what each file is
    summed = subprocess.run(["sha256sum", "-c", "--strict", "MANIFEST.txt"], cwd=archive,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert summed.returncode == 0, summed.stdout + summed.stderr
    assert summed.stdout.count(": OK") == len(names) - 1  # everything but MANIFEST.txt itself
    manifest = json.loads((archive / "manifest.json").read_text())
    assert manifest["type"] == "tamga-crl-archive"
    assert {f["file"] for f in manifest["files"]} == set(crls) | set(certs)
    described = {f["file"]: f for f in manifest["files"]}
    assert all(described[n]["kind"] == "crl" and described[n]["number"] > 0 for n in crls)
    # deltas are told apart: by name, and by crl_kind and the base they are relative to
    deltas = [m for m in issued if m and m[2]]
    assert deltas, crls
    for m in issued:
        assert m is not None
        about = described[m[0]]
        if m[2]:
            assert about["crl_kind"] == "delta" and 0 < about["base_number"] < about["number"]
            assert (m[1], about["base_number"]) in numbers
        else:
            assert about["crl_kind"] == "full" and about["base_number"] is None

    # openssl verify -crl_check with the exported certificates and the newest issuing CRL
    by_kind = {kind: sorted(n for n in certs if n.startswith(f"{kind}-")) for kind in kinds}
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(b"".join((archive / n).read_bytes() for n in by_kind["root"]))
    untrusted = tmp_path / "issuing.pem"
    untrusted.write_bytes(b"".join((archive / n).read_bytes() for n in by_kind["issuing"]))
    fulls = (m for m in issued if m and m[1] == "issuing" and not m[2])
    newest = max(fulls, key=lambda m: int(m[3]))
    crl_pem = tmp_path / "issuing-crl.pem"
    converted = _openssl("crl", "-inform", "DER", "-in", archive / newest[0], "-out", crl_pem)
    assert converted.returncode == 0, converted.stderr
    verify = ("verify", "-crl_check", "-CAfile", ca_file, "-untrusted", untrusted,
              "-CRLfile", crl_pem)  # fmt: skip
    ok = _openssl(*verify, valid_pem)
    assert ok.returncode == 0 and ": OK" in ok.stdout, ok.stdout + ok.stderr
    refused = _openssl(*verify, revoked_pem)
    assert refused.returncode != 0 and "revoked" in refused.stdout + refused.stderr
    assert valid != revoked


def test_export_archive_refuses_a_directory_that_is_not_empty(
    run_tamga: RunTamga, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    run_tamga(home, "init")
    run_tamga(home, "crl", "publish")
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "notes.txt").write_text("keep me")
    refused = run_tamga(home, "crl", "export-archive", str(archive), check=False)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "not empty" in refused.stderr, refused.stderr
    assert [p.name for p in archive.iterdir()] == ["notes.txt"]  # nothing written
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    not_dir = run_tamga(home, "crl", "export-archive", str(a_file), check=False)
    assert not_dir.returncode == 1 and not_dir.stderr.count("\n") == 1, not_dir.stderr
    assert a_file.read_text() == "x"

    forced = run_tamga(home, "crl", "export-archive", str(archive), "--force")
    assert "written to" in forced.stdout
    names = {p.name for p in archive.iterdir()}
    assert "notes.txt" in names and "MANIFEST.txt" in names
    assert (archive / "notes.txt").read_text() == "keep me"
    again = run_tamga(home, "crl", "export-archive", str(archive), "--force")  # same files again
    assert again.stdout == forced.stdout
    summed = subprocess.run(["sha256sum", "-c", "--strict", "MANIFEST.txt"], cwd=archive,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert summed.returncode == 0, summed.stdout + summed.stderr

"""``tamga ca issue|show|list|suspend|resume|revoke|renew-due|renewals`` as an officer runs them.

Real subprocesses on a home made by ``tamga init`` (SQLite and SoftHSM under it): a RuToken
certificate from a CSR file, unpaid refusal naming the amount, openssl on the written file,
a revocation that lands in the published CRL.
"""

from __future__ import annotations

import json
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
from tests.pki_tools import openssl_verify, pkilint
from tests.tamga_fixtures import RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

INN = "01234567890123"


def test_officer_issues_and_revokes_from_the_console(run_tamga: RunTamga, tmp_path: Path) -> None:
    home = tmp_path / "home"

    def tamga(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(home, *args, check=check)

    tamga("init")
    tamga("ca", "subscriber", "add", "--inn", INN, "--name", 'ОсОО "Тест"', "--legal-form",
          "ОсОО", "--locality", "Бишкек", "--email", "office@test.kg")  # fmt: skip
    holder = json.loads(
        tamga(
            "ca",
            "holder",
            "add",
            "--inn",
            INN,
            "--full-name",
            "Асанова Айгуль",
            "--position",
            "Главный бухгалтер",
            "--passport-series",
            "ID1234567",
            "--email",
            "acc@test.kg",
            "--phone",
            "+996555123456",
            "--identity-document",  # the officer saw the passport at the office (§3.3)
            "office file 2026/7",
            "--json",
        ).stdout
    )["id"]
    key = ec.generate_private_key(ec.SECP384R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
        .sign(key, hashes.SHA384())
    )
    csr_file = tmp_path / "token.csr"
    csr_file.write_bytes(csr.public_bytes(serialization.Encoding.DER))
    issue = ["ca", "issue", "--holder", str(holder), "--role", "accountant", "--storage",
             "rutoken", "--csr", str(csr_file)]  # fmt: skip
    unpaid = tamga(*issue, check=False)
    assert unpaid.returncode == 1 and "payment account" in unpaid.stderr
    account = unpaid.stderr.split("payment account ")[1][:16]
    assert account.isdigit()
    _pay(home, account, 1200_00)
    out = tmp_path / "acc.pem"
    done = json.loads(tamga(*issue, "-o", str(out), "--json").stdout)
    serial = done["serial"]
    chain = tmp_path / "chain.pem"
    chain.write_text(tamga("ca", "export", "root").stdout)
    issuing = tmp_path / "issuing.pem"
    issuing.write_text(tamga("ca", "export", "issuing").stdout)
    assert "OK" in openssl_verify(chain, out, "-untrusted", str(issuing))
    pkilint(out)
    assert serial in tamga("ca", "list", "--inn", INN).stdout
    assert "valid" in tamga("ca", "show", serial).stdout

    early = tamga("ca", "renewal-request", serial, check=False)
    assert early.returncode == 1 and "renewal of" in early.stderr and "opens on" in early.stderr
    cloud_only = tamga("ca", "auto-renewal", serial, "--off", check=False)
    assert cloud_only.returncode == 1 and "only cloud" in cloud_only.stderr
    assert "suspended" in tamga("ca", "suspend", serial, "--note", "проверка").stdout
    assert "active" in tamga("ca", "resume", serial).stdout
    revoked = tamga("ca", "revoke", serial, "--reason", "keyCompromise").stdout
    assert "revoked" in revoked and "CRL number" in revoked
    crl = x509.load_der_x509_crl((home / "publish" / "crl" / "issuing.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    again = tamga("ca", "revoke", serial, "--reason", "superseded", check=False)
    assert again.returncode == 1 and "revoked (final)" in again.stderr
    assert tamga("ca", "show", "ffff", check=False).returncode == 1

    due = tamga("ca", "renew-due").stdout
    assert "0 renewed" in due
    assert json.loads(tamga("ca", "renewals", "--json").stdout)["count"] == 0

    # A holder registered without a document check gets no certificate until an officer
    # verifies it (§3.3); the refusal is one line and nothing is issued.
    added = tamga("ca", "holder", "add", "--inn", INN, "--full-name", "Бекова Айым",
                  "--position", "Руководитель", "--passport-series", "ID7654321", "--email",
                  "head@test.kg", "--phone", "+996555000111")  # fmt: skip
    assert added.stdout.rstrip().endswith("identity NOT verified"), added.stdout
    head = added.stdout.split(":")[0].removeprefix("registered holder ")
    _pay(home, INN, 1200_00, "К-2")
    csr_file.write_bytes(_csr(ec.generate_private_key(ec.SECP256R1())))
    second = ["ca", "issue", "--holder", head, "--role", "head", "--storage", "rutoken",
              "--csr", str(csr_file), "--json"]  # fmt: skip
    refused = tamga(*second, check=False)
    assert refused.returncode == 1 and "identity not verified" in refused.stderr, refused.stderr
    assert serial in tamga("ca", "list", "--inn", INN).stdout
    assert json.loads(tamga("ca", "list", "--inn", INN, "--json").stdout)["count"] == 1
    checked = tamga("ca", "holder", "verify", head, "--document", "office file 2026/8").stdout
    assert checked.startswith(f"verified holder {head}:") and "office file 2026/8" in checked
    issued = json.loads(tamga(*second).stdout)["serial"]

    # Terminating the contract revokes the valid certificate and publishes the CRL at once.
    ended = tamga("billing", "terminate", INN, "--reason", "Письмо №9").stdout
    assert f"revoked (cessationOfOperation): {issued}" in ended and "CRL number" in ended
    assert "revoked" in tamga("ca", "show", issued).stdout
    dump = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-noout", "-text", "-in",
         str(home / "publish" / "crl" / "issuing.crl")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Cessation Of Operation" in dump and "Key Compromise" in dump, dump
    crl = x509.load_der_x509_crl((home / "publish" / "crl" / "issuing.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(issued, 16))
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.cessation_of_operation


def _csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def _pay(home: Path, account: str, amount: int, receipt: str = "К-1") -> None:
    """The payment account is paid (as a terminal would), in the home's own database."""
    with Runtime(Config.from_env(tamga_env(home))).transaction() as session:
        billing.record_payment(
            session, channel="cash", provider="", external_id=receipt, account=account,
            amount=amount, paid_at=datetime.now(UTC), now=datetime.now(UTC), actor="test",
        )  # fmt: skip

"""Dispatch confirmations on real SoftHSM2 and real databases, checked by openssl and pkilint.

``confirm_dispatch`` signs with the ``tamga-dispatch`` key of the CA token and has our TSA
time-stamp the signature; ``openssl cms -verify`` checks the confirmation against the root and
the issuing CA and prints the statement, ``openssl ts -verify`` checks the time-stamp token taken
out of the unsigned attribute against the TSA chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import create_engine, func, select, text

from ca import CACertificate, active_certificate
from ca.cms import CMSInvalid, verify_encapsulated
from ca.dispatch import (
    DispatchUnavailable,
    confirm_dispatch,
    dispatch_chain,
    ensure_dispatch,
    read_confirmation,
)
from ca.errors import InvalidFields
from ca.profiles import Severity, lint_certificate
from db import AuditEntry, verify_chain
from policies.ca_profiles import DISPATCH, DISPATCH_POLICY_OID, ISSUING_CA
from tests.ca_fixtures import CA_NOW, CA_URL, CaApi
from tests.hsm_fixtures import PKCS11_MODULE, TEST_PINS
from tests.pki_tools import openssl_verify, pkilint, write_pem
from tests.tamga_fixtures import RunTamga, tamga_env

pytestmark = [pytest.mark.hsm, pytest.mark.db]

CHECK_TOKEN_KEYS = Path(__file__).resolve().parents[2] / "check_token_keys.py"
SENT_AT = CA_NOW + timedelta(minutes=5)
STAMPED_AT = SENT_AT + timedelta(seconds=2)  # the TSA's own clock, read after signing
# openssl checks the chain at this moment: the hierarchy is made at CA_NOW by the fixtures.
ATTIME = str(int((CA_NOW + timedelta(hours=1)).timestamp()))
STATEMENT = {
    "report_id": "6f1c2a64-4f0e-4a55-9d43-2b7f0e8f1a10",
    "document_sha256": hashlib.sha256(b"the report").hexdigest(),
    "agency": "tax",
    "office": "003",
    "inn": "01234567890123",
    "kind": "STI-001",
    "period": "2026-11",
    "sent_at": "2026-11-23T06:05:00Z",
    "signatures": f"accountant:{'a' * 64},head:{'b' * 64}",
}


@dataclass
class Dispatch:
    api: CaApi
    cert: x509.Certificate
    dir: Path
    root_pem: Path
    issuing_pem: Path
    tsa_pem: Path


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=False)


@pytest.fixture(name="d")
def dispatch_fixture(ca_api: CaApi, tmp_path: Path) -> Dispatch:
    """The CA of ``ca_api`` with its dispatch key and certificate, and the PEM files openssl
    reads."""
    runtime = ca_api.runtime
    with runtime.transaction() as session:
        cert = ensure_dispatch(
            session, runtime.ca_token, public_url=CA_URL, now=CA_NOW, actor="test"
        )
        root = active_certificate(session, "root")
        issuing = active_certificate(session, "issuing")
        tsa = active_certificate(session, "tsa")
    return Dispatch(
        ca_api,
        cert,
        tmp_path,
        write_pem(tmp_path / "root.pem", root),
        write_pem(tmp_path / "issuing.pem", issuing),
        write_pem(tmp_path / "tsa.pem", tsa),
    )


def _confirm(d: Dispatch, statement: dict[str, str] | None = None, actor: str = "test") -> bytes:
    runtime = d.api.runtime
    with runtime.transaction() as session:
        return confirm_dispatch(
            session,
            runtime.dispatch_signer,
            statement=statement or STATEMENT,
            tsa=runtime.tsa_signer,
            tsa_clock=lambda: STAMPED_AT,
            now=SENT_AT,
            actor=actor,
        )


def _canonical(statement: dict[str, str]) -> bytes:
    document = statement | {"type": "dispatch-confirmation"}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _chain(d: Dispatch) -> list[x509.Certificate]:
    with d.api.runtime.transaction() as session:
        return dispatch_chain(session)


def _active(d: Dispatch, name: str) -> x509.Certificate:
    with d.api.runtime.transaction() as session:
        return active_certificate(session, name)


def _audits(d: Dispatch, action: str) -> list[AuditEntry]:
    with d.api.runtime.transaction() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        session.expunge_all()
    return list(entries)


def _token_keys(conf: Path, pin: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, str(CHECK_TOKEN_KEYS), PKCS11_MODULE, "tamga-ca", pin],
        env={"SOFTHSM2_CONF": str(conf), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    keys: list[dict[str, Any]] = json.loads(result.stdout)
    return keys


def _assert_sign_only_and_locked(key: dict[str, Any]) -> None:
    assert key["sensitive"] and key["always_sensitive"], key
    assert not key["extractable"] and key["never_extractable"], key
    assert not key["decrypt"] and not key["unwrap"] and not key["derive"], key
    assert key["sign"] and key["token"] and key["private"] and key["has_id"], key
    assert key["value_readable"] is False, key


# --- the confirmation ------------------------------------------------------------------------


def test_confirmation_verifies_with_openssl_and_prints_the_statement(d: Dispatch) -> None:
    confirmation = _confirm(d)
    (d.dir / "confirmation.der").write_bytes(confirmation)
    cafile = d.dir / "cafile.pem"
    cafile.write_bytes(d.root_pem.read_bytes() + d.issuing_pem.read_bytes())
    checked = _openssl(
        *("cms", "-verify", "-inform", "DER", "-in", "confirmation.der"),
        *("-CAfile", str(cafile), "-attime", ATTIME),
        cwd=d.dir,
    )
    assert checked.returncode == 0, checked.stderr.decode()
    assert b"Verification successful" in checked.stderr
    assert checked.stdout == _canonical(STATEMENT)
    assert json.loads(checked.stdout) == STATEMENT | {"type": "dispatch-confirmation"}

    # The root travels inside, but only the verifier's own trust anchor counts.
    alone = _openssl(
        *("cms", "-verify", "-inform", "DER", "-in", "confirmation.der"),
        *("-CAfile", str(d.issuing_pem), "-attime", ATTIME),
        cwd=d.dir,
    )
    assert alone.returncode != 0


def test_time_stamp_token_verifies_with_openssl_ts(d: Dispatch) -> None:
    confirmation = _confirm(d)
    signed_data = cms.ContentInfo.load(confirmation)["content"]
    # dispatch + issuing + root travel in the confirmation
    assert {c.chosen.dump() for c in signed_data["certificates"]} == {
        c.public_bytes(serialization.Encoding.DER) for c in _chain(d)
    }
    info = signed_data["signer_infos"][0]
    (attribute,) = info["unsigned_attrs"]
    assert attribute["type"].native == "signature_time_stamp_token"
    token = attribute["values"][0]
    imprint = hashlib.sha256(info["signature"].native).digest()
    tst_info = token["content"]["encap_content_info"]["content"].parsed
    assert tst_info["message_imprint"]["hashed_message"].native == imprint
    assert tst_info["gen_time"].native == STAMPED_AT  # the TSA's clock, not the signing-time
    (d.dir / "token.der").write_bytes(token.dump())
    untrusted = d.dir / "untrusted.pem"
    untrusted.write_bytes(d.issuing_pem.read_bytes() + d.tsa_pem.read_bytes())
    checked = _openssl(
        *("ts", "-verify", "-token_in", "-in", "token.der", "-digest", imprint.hex()),
        *("-CAfile", str(d.root_pem), "-untrusted", str(untrusted), "-attime", ATTIME),
        cwd=d.dir,
    )
    assert checked.returncode == 0 and b"Verification: OK" in checked.stdout, (
        checked.stdout + checked.stderr
    ).decode()


def test_verify_encapsulated_and_read_confirmation_round_trip(d: Dispatch) -> None:
    confirmation = _confirm(d)
    content, signed_at = verify_encapsulated(confirmation, d.cert)
    assert content == _canonical(STATEMENT) and signed_at == SENT_AT
    statement, signed_at = read_confirmation(confirmation, d.cert)
    assert statement == STATEMENT | {"type": "dispatch-confirmation"} and signed_at == SENT_AT
    chain = _chain(d)
    assert chain[0] == d.cert and [c.subject for c in chain[1:]] == [
        chain[0].issuer,
        chain[1].issuer,
    ]
    with pytest.raises(CMSInvalid, match="wrong signer"):
        verify_encapsulated(confirmation, chain[1])  # the issuing CA did not sign it
    with pytest.raises(CMSInvalid, match="wrong signer"):
        read_confirmation(confirmation, _active(d, "tsa"))


def test_each_confirmation_is_journaled_once(d: Dispatch) -> None:
    first = _confirm(d)
    second = _confirm(d, STATEMENT | {"report_id": "another", "office": "004"})
    entries = _audits(d, "dispatch.confirmed")
    assert [e.object for e in entries] == [f"report:{STATEMENT['report_id']}", "report:another"]
    details = json.loads(entries[0].details)
    assert details["confirmation_sha256"] == hashlib.sha256(first).hexdigest()
    assert details["document_sha256"] == STATEMENT["document_sha256"]
    assert details["certificate_serial"] == format(d.cert.serial_number, "x")
    assert (
        json.loads(entries[1].details)["confirmation_sha256"] == hashlib.sha256(second).hexdigest()
    )
    assert len(_audits(d, "tsa.token.issued")) == 2  # one time-stamp each
    with d.api.runtime.transaction() as session:
        verify_chain(session)


def test_a_bad_statement_names_every_field_and_signs_nothing(d: Dispatch) -> None:
    bad = dict(STATEMENT)
    del bad["kind"]
    bad |= {
        "document_sha256": "ABC",
        "inn": "123",
        "sent_at": "2026-11-23 06:05",  # no offset
        "office": " 003",
        "agency": "tax\u202e",
        "type": "delivery-receipt",
        "extra": "x",
        "signatures": "head:not-a-hash",
    }
    with pytest.raises(InvalidFields) as refused:
        _confirm(d, bad)
    assert set(refused.value.errors) == {
        "kind",
        "document_sha256",
        "inn",
        "sent_at",
        "office",
        "agency",
        "type",
        "extra",
        "signatures",
    }
    assert _audits(d, "dispatch.confirmed") == [] and _audits(d, "tsa.token.issued") == []
    # "type" may be given, with our value only
    assert _confirm(d, STATEMENT | {"type": "dispatch-confirmation"})


def test_only_the_dispatch_key_signs_confirmations(d: Dispatch) -> None:
    runtime = d.api.runtime
    with runtime.transaction() as session, pytest.raises(DispatchUnavailable, match="only"):
        confirm_dispatch(
            session,
            runtime.ca_token.signer(ISSUING_CA.key_label),
            statement=STATEMENT,
            tsa=runtime.tsa_signer,
            tsa_clock=lambda: STAMPED_AT,
            now=SENT_AT,
            actor="test",
        )
    with runtime.transaction() as session, pytest.raises(DispatchUnavailable, match="not valid"):
        confirm_dispatch(
            session,
            runtime.dispatch_signer,
            statement=STATEMENT,
            tsa=runtime.tsa_signer,
            tsa_clock=lambda: STAMPED_AT,
            now=CA_NOW - timedelta(days=1),
            actor="test",
        )


def test_without_a_dispatch_certificate_nothing_is_signed(ca_api: CaApi) -> None:
    runtime = ca_api.runtime
    with runtime.transaction() as session, pytest.raises(DispatchUnavailable, match="tamga init"):
        confirm_dispatch(
            session,
            runtime.dispatch_signer,
            statement=STATEMENT,
            tsa=runtime.tsa_signer,
            tsa_clock=lambda: STAMPED_AT,
            now=SENT_AT,
            actor="test",
        )


# --- the key and the certificate ---------------------------------------------------------


def test_dispatch_certificate_profile(d: Dispatch) -> None:
    cert = d.cert
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == (
        "Tamga dispatch confirmations"
    )
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_cert_sign and not ku.value.crl_sign
    assert not ku.value.key_encipherment and not ku.value.key_agreement
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == [DISPATCH_POLICY_OID]
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(f"{CA_URL}/crl/issuing.crl")]
    assert cert.not_valid_after_utc.year == CA_NOW.year + DISPATCH.validity_years
    assert cert.public_key() == d.api.runtime.dispatch_signer.public_key
    pem = write_pem(d.dir / "dispatch.pem", cert)
    pkilint(pem)
    assert lint_certificate(cert, Severity.WARNING) == []
    openssl_verify(d.root_pem, pem, "-untrusted", str(d.issuing_pem), "-purpose", "smimesign")


def test_ensure_dispatch_is_idempotent(d: Dispatch) -> None:
    runtime = d.api.runtime
    with runtime.transaction() as session:
        again = ensure_dispatch(
            session, runtime.ca_token, public_url=CA_URL, now=CA_NOW + timedelta(days=1), actor="t"
        )
        count = session.scalar(
            select(func.count()).select_from(CACertificate).where(CACertificate.name == "dispatch")
        )
    assert again == d.cert and count == 1
    assert runtime.ca_token.key_labels().count(DISPATCH.key_label) == 1


def test_the_dispatch_key_is_sensitive_and_never_extractable(d: Dispatch) -> None:
    keys = _token_keys(Path(os.environ["SOFTHSM2_CONF"]), TEST_PINS["tamga-ca"])
    (key,) = [k for k in keys if k["label"] == DISPATCH.key_label]
    _assert_sign_only_and_locked(key)


# --- tamga init ------------------------------------------------------------------------------


def _dispatch_rows(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT fingerprint_sha256 FROM ca_certificates WHERE name = 'dispatch'")
        ).scalars().all()  # fmt: skip
    engine.dispose()
    return list(rows)


def _forget_dispatch(home: Path, database_url: str) -> None:
    """Make ``home`` look like one made by a ``tamga init`` before dispatch confirmations."""
    pin = (home / "secrets" / "tamga-ca.pin").read_text().strip()
    script = (
        "import sys; from hsm import HSMToken; "
        "HSMToken(sys.argv[1], 'tamga-ca', sys.argv[2]).destroy_key(sys.argv[3])"
    )
    subprocess.run(
        [sys.executable, "-c", script, PKCS11_MODULE, pin, DISPATCH.key_label],
        env=tamga_env(home) | {"SOFTHSM2_CONF": str(home / "softhsm2.conf")},
        cwd=Path(__file__).resolve().parents[3],
        check=True,
    )
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ca_certificates WHERE name = 'dispatch'"))
    engine.dispose()
    for suffix in (".pem", ".crt"):
        (home / "public" / "ca" / f"dispatch{suffix}").unlink()


@pytest.mark.slow
def test_init_twice_makes_one_dispatch_key_and_certificate(
    run_tamga: RunTamga, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    run_tamga(home, "init", database_url=database_url)
    _forget_dispatch(home, database_url)  # an installation from before this feature ...
    first = run_tamga(home, "init", database_url=database_url)
    # ... gets the key and the certificate on its next init
    assert "created dispatch key" in first.stdout
    assert "created dispatch certificate" in first.stdout
    assert "created root" not in first.stdout and "created tsa" not in first.stdout
    dispatch_pem = (home / "public" / "ca" / "dispatch.pem").read_bytes()
    second = run_tamga(home, "init", database_url=database_url)
    assert "nothing to do" in second.stdout
    assert (home / "public" / "ca" / "dispatch.pem").read_bytes() == dispatch_pem

    fingerprints = _dispatch_rows(database_url)
    assert len(fingerprints) == 1
    pin = (home / "secrets" / "tamga-ca.pin").read_text().strip()
    keys = _token_keys(home / "softhsm2.conf", pin)
    dispatch_keys = [k for k in keys if k["label"] == DISPATCH.key_label]
    assert len(dispatch_keys) == 1
    _assert_sign_only_and_locked(dispatch_keys[0])

    cert = x509.load_pem_x509_certificate(dispatch_pem)
    assert cert.fingerprint(hashes.SHA256()).hex() == fingerprints[0]
    ca_dir = home / "public" / "ca"
    assert (ca_dir / "dispatch.crt").read_bytes() == cert.public_bytes(serialization.Encoding.DER)
    openssl_verify(
        ca_dir / "root.pem", ca_dir / "dispatch.pem", "-untrusted", str(ca_dir / "issuing.pem")
    )
    pkilint(ca_dir / "dispatch.pem")
    assert (
        "audit journal intact"
        in run_tamga(home, "audit", "verify", database_url=database_url).stdout
    )

"""The RFC 3161 TSA on real SoftHSM2 and real databases, checked by ``openssl ts`` and pkilint."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import create_engine, func, select, text

from ca import CACertificate, active_certificate
from ca.tsa import TimeStampRefused, TSAUnavailable, ensure_tsa, timestamp_token
from db import AuditEntry, verify_chain
from policies.ca_profiles import ISSUING_CA
from policies.tsa import TSA, TSA_POLICY_OID
from signing_api.web.public.tsa import MAX_REQUEST_BYTES
from tests.ca_fixtures import CA_NOW, CA_URL, CaApi
from tests.pki_tools import openssl_verify, pkilint, write_pem
from tests.tamga_fixtures import RunTamga

pytestmark = [pytest.mark.hsm, pytest.mark.db]

QUERY = "application/timestamp-query"
# openssl checks the chain at this moment: the hierarchy is made at CA_NOW by the fixtures.
ATTIME = str(int((CA_NOW + timedelta(hours=1)).timestamp()))


@dataclass
class Tsa:
    api: CaApi
    tsa: x509.Certificate
    dir: Path
    root_pem: Path
    chain_pem: Path  # issuing + TSA: what `openssl ts -verify -untrusted` gets


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def tsa(ca_api: CaApi, tmp_path: Path) -> Tsa:
    runtime = ca_api.runtime
    with runtime.transaction() as session:
        cert = ensure_tsa(session, runtime.ca_token, public_url=CA_URL, now=CA_NOW, actor="test")
        root = active_certificate(session, "root")
        issuing = active_certificate(session, "issuing")
    (tmp_path / "data.txt").write_bytes("Отчёт за ноябрь 2026\n".encode())
    return Tsa(
        ca_api,
        cert,
        tmp_path,
        write_pem(tmp_path / "root.pem", root),
        write_pem(tmp_path / "chain.pem", issuing, cert),
    )


def _query(t: Tsa, name: str, *args: str) -> bytes:
    made = _openssl("ts", "-query", "-data", "data.txt", *args, "-out", name, cwd=t.dir)
    assert made.returncode == 0, made.stderr
    return (t.dir / name).read_bytes()


def _post(t: Tsa, body: bytes, content_type: str = QUERY) -> bytes:
    response = t.api.client.post("/tsa", data=body, content_type=content_type)
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/timestamp-reply"
    assert "no-store" in response.headers["Cache-Control"]
    return bytes(response.data)


def _reply_text(t: Tsa, reply: bytes, name: str = "resp.tsr") -> str:
    (t.dir / name).write_bytes(reply)
    shown = _openssl("ts", "-reply", "-in", name, "-text", cwd=t.dir)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def _verify(t: Tsa, reply_file: str, *source: str) -> str:
    checked = _openssl(
        "ts",
        "-verify",
        *(source or ("-data", "data.txt")),
        "-in",
        reply_file,
        "-CAfile",
        str(t.root_pem),
        "-untrusted",
        str(t.chain_pem),
        "-attime",
        ATTIME,
        cwd=t.dir,
    )
    assert checked.returncode == 0 and "Verification: OK" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    return checked.stdout


def _token(reply: bytes) -> cms.ContentInfo:
    response = tsp.TimeStampResp.load(reply)
    assert response["status"]["status"].native == "granted"
    token: cms.ContentInfo = response["time_stamp_token"]
    return token


def _tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    encap = token["content"]["encap_content_info"]
    assert encap["content_type"].native == "tst_info"
    info: tsp.TSTInfo = encap["content"].parsed
    return info


# --- granted tokens ------------------------------------------------------------------------


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
def test_openssl_query_is_granted_and_verifies(tsa: Tsa, nonce: bool) -> None:
    query = _query(tsa, "req.tsq", "-sha256", "-cert", *(() if nonce else ("-no_nonce",)))
    reply = _post(tsa, query)
    shown = _reply_text(tsa, reply)
    assert "Status: Granted." in shown
    assert f"Policy OID: {TSA_POLICY_OID}" in shown
    assert "Accuracy: 0x01 seconds" in shown
    assert "Ordering: no" in shown
    assert "Time stamp: Nov 23 06:00:00 2026 GMT" in shown
    assert "CN=DOS TEK GROUP Time-Stamping Authority" in shown
    _verify(tsa, "resp.tsr")
    # Against the query too: imprint, nonce and policy are compared by openssl.
    _verify(tsa, "resp.tsr", "-queryfile", "req.tsq")
    (tsa.dir / "other.txt").write_bytes(b"another document")
    with pytest.raises(AssertionError, match="message imprint mismatch"):
        _verify(tsa, "resp.tsr", "-data", "other.txt")

    sent = tsp.TimeStampReq.load(query)
    info = _tst_info(_token(reply))
    assert info["nonce"].native == sent["nonce"].native
    assert (info["nonce"].native is None) is (not nonce)
    assert info["message_imprint"].dump() == sent["message_imprint"].dump()
    assert (
        info["message_imprint"]["hashed_message"].native
        == hashlib.sha256((tsa.dir / "data.txt").read_bytes()).digest()
    )
    signed = _token(reply)["content"]
    assert signed["version"].native == "v3"
    certificates = signed["certificates"].native
    assert [c["tbs_certificate"]["serial_number"] for c in certificates] == [tsa.tsa.serial_number]
    attributes = {a["type"].native for a in signed["signer_infos"][0]["signed_attrs"]}
    assert attributes == {"content_type", "message_digest", "signing_certificate_v2"}


def test_certificate_only_when_requested(tsa: Tsa) -> None:
    reply = _post(tsa, _query(tsa, "req.tsq", "-sha512"))
    assert not _token(reply)["content"]["certificates"].native
    assert _tst_info(_token(reply))["message_imprint"]["hash_algorithm"]["algorithm"].native == (
        "sha512"
    )
    _reply_text(tsa, reply)
    _verify(tsa, "resp.tsr")  # the TSA certificate comes from -untrusted


def test_serials_unique_and_each_token_journaled(tsa: Tsa) -> None:
    query = _query(tsa, "req.tsq", "-sha384", "-no_nonce")
    serials = {_tst_info(_token(_post(tsa, query)))["serial_number"].native for _ in range(50)}
    assert len(serials) == 50 and min(serials) >= 1 << 64
    digest = hashlib.sha384((tsa.dir / "data.txt").read_bytes()).hexdigest()
    with tsa.api.runtime.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "tsa.token.issued")
        ).all()
        assert verify_chain(session) >= 50
    assert {int(json.loads(r.details)["serial"], 16) for r in rows} == serials
    for row in rows:
        assert json.loads(row.details) == {
            "serial": row.object.removeprefix("tsa:"),
            "hash_algorithm": "sha384",
            "imprint": digest,
        }
        assert row.actor == "http:tsa"


# --- rejections ------------------------------------------------------------------------------


def _rejected(t: Tsa, reply: bytes, failure: str) -> None:
    shown = _reply_text(t, reply)
    assert "Status: Rejected." in shown and f"Failure info: {failure}" in shown, shown
    assert "TST info:\nNot included." in shown


def test_nonce_bounds(tsa: Tsa) -> None:
    """Issue #12 finding 10: a negative or 20,000-bit nonce was accepted (and echoed into the
    signed token). 0 to 2^160 - 1 is granted; outside, badDataFormat and no token."""
    sent = tsp.TimeStampReq.load(_query(tsa, "n.tsq", "-sha256"))

    def with_nonce(nonce: int) -> bytes:
        request = {"version": "v1", "message_imprint": sent["message_imprint"], "nonce": nonce}
        return _post(tsa, tsp.TimeStampReq(request).dump())

    for bad in (-1, 2**160, 2**20000):
        _rejected(tsa, with_nonce(bad), "the data submitted has the wrong format")
    for good in (0, 2**64 - 1, 2**160 - 1):
        answer = tsp.TimeStampResp.load(with_nonce(good))
        assert answer["status"]["status"].native == "granted", answer["status"].native
        info = answer["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
        assert info["nonce"].native == good


def test_rejections_name_the_reason(tsa: Tsa) -> None:
    _rejected(
        tsa,
        _post(tsa, _query(tsa, "sha1.tsq", "-sha1")),
        "unrecognized or unsupported algorithm identifier",
    )
    _rejected(
        tsa,
        _post(tsa, _query(tsa, "md5.tsq", "-md5")),
        "unrecognized or unsupported algorithm identifier",
    )
    # The last: a mutated openssl query, found by fuzzing, on which asn1crypto's parser raised
    # AttributeError (an EXTERNAL where the nonce belongs).
    fuzzed = bytes.fromhex(
        "30500201013031300d060960864801650304020105000420"
        + "00" * 32
        + "060b2b06010401868d1f010201020805119d62e730c3ec0801ff"
    )
    garbage = (b"garbage", b"", b"\x30\x03\x02\x01\x01", _query(tsa, "ok.tsq") + b"\x00", fuzzed)
    for body in garbage:
        _rejected(tsa, _post(tsa, body), "the data submitted has the wrong format")
    _rejected(
        tsa,
        _post(tsa, _query(tsa, "policy.tsq", "-tspolicy", "1.2.3.4")),
        "the requested TSA policy is not supported by the TSA",
    )
    sent = tsp.TimeStampReq.load(_query(tsa, "ext.tsq", "-sha256"))
    with_extension = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": sent["message_imprint"],
            "extensions": [{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}],
        }
    )
    _rejected(
        tsa,
        _post(tsa, with_extension.dump()),
        "the requested extension is not supported by the TSA",
    )
    short_digest = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": b"\x01" * 20,
            },
        }
    )
    _rejected(tsa, _post(tsa, short_digest.dump()), "the data submitted has the wrong format")
    with tsa.api.runtime.transaction() as session:
        issued = session.scalar(select(func.count()).where(AuditEntry.action == "tsa.token.issued"))
    assert issued == 0


def test_our_policy_is_granted(tsa: Tsa) -> None:
    reply = _post(tsa, _query(tsa, "req.tsq", "-tspolicy", TSA_POLICY_OID))
    assert _tst_info(_token(reply))["policy"].native == TSA_POLICY_OID


def test_http_envelope_errors_are_problems(tsa: Tsa) -> None:
    query = _query(tsa, "req.tsq")
    wrong = tsa.api.client.post("/tsa", data=query, content_type="application/octet-stream")
    assert wrong.status_code == 415 and wrong.mimetype == "application/problem+json"
    assert wrong.json is not None and wrong.json["status"] == 415
    assert tsa.api.client.post("/tsa", data=query).status_code == 415  # no Content-Type
    big = tsa.api.client.post("/tsa", data=b"\x30" * (MAX_REQUEST_BYTES + 1), content_type=QUERY)
    assert big.status_code == 413 and big.mimetype == "application/problem+json"
    assert tsa.api.client.get("/tsa").status_code == 405


def test_without_a_tsa_certificate_the_answer_is_system_failure(
    ca_api: CaApi, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from ca.models import CACertificate

    with ca_api.runtime.transaction() as session:  # the fixture made one: take it out of use
        session.execute(
            update(CACertificate).where(CACertificate.name == "tsa").values(active=False)
        )
    (tmp_path / "data.txt").write_bytes(b"x")
    made = _openssl("ts", "-query", "-data", "data.txt", "-out", "req.tsq", cwd=tmp_path)
    assert made.returncode == 0
    response = ca_api.client.post(
        "/tsa", data=(tmp_path / "req.tsq").read_bytes(), content_type=QUERY
    )
    assert response.status_code == 503 and response.mimetype == "application/timestamp-reply"
    (tmp_path / "resp.tsr").write_bytes(response.data)
    shown = _openssl("ts", "-reply", "-in", "resp.tsr", "-text", cwd=tmp_path).stdout
    assert "Failure info: the request cannot be handled due to system failure" in shown
    assert ca_api.client.get("/ca/tsa.crt").status_code == 404


# --- the TSA certificate -------------------------------------------------------------------


def test_tsa_certificate_profile(tsa: Tsa) -> None:
    cert = tsa.tsa
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(f"{CA_URL}/crl/issuing.crl")]
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location == x509.UniformResourceIdentifier(f"{CA_URL}/ca/issuing.crt")
    assert cert.not_valid_after_utc.year == CA_NOW.year + TSA.validity_years
    pem = write_pem(tsa.dir / "tsa.pem", cert)
    pkilint(pem)
    openssl_verify(tsa.root_pem, pem, "-untrusted", str(tsa.chain_pem), "-purpose", "timestampsign")
    served = tsa.api.client.get("/ca/tsa.crt")
    assert served.status_code == 200 and served.mimetype == "application/pkix-cert"
    assert x509.load_der_x509_certificate(served.data) == cert


def test_ensure_tsa_is_idempotent(tsa: Tsa) -> None:
    runtime = tsa.api.runtime
    with runtime.transaction() as session:
        again = ensure_tsa(
            session, runtime.ca_token, public_url=CA_URL, now=CA_NOW + timedelta(days=1), actor="t"
        )
        count = session.scalar(
            select(func.count()).select_from(CACertificate).where(CACertificate.name == "tsa")
        )
    assert again == tsa.tsa and count == 1


# --- timestamp_token (what CAdES-B-T embeds) ---------------------------------------------


def test_timestamp_token_for_a_digest(tsa: Tsa) -> None:
    runtime = tsa.api.runtime
    digest = hashlib.sha256(b"signature value").digest()
    with runtime.transaction() as session:
        der = timestamp_token(
            session, runtime.tsa_signer, digest, "sha256", now=CA_NOW, actor="test", nonce=7
        )
        for bad_hash, bad_digest in (("sha1", b"\x00" * 20), ("sha256", b"\x00" * 31)):
            with pytest.raises(TimeStampRefused):
                timestamp_token(
                    session, runtime.tsa_signer, bad_digest, bad_hash, now=CA_NOW, actor="test"
                )
    token = cms.ContentInfo.load(der)
    assert token["content_type"].native == "signed_data"
    info = _tst_info(token)
    assert info["message_imprint"]["hashed_message"].native == digest
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert info["nonce"].native == 7 and info["policy"].native == TSA_POLICY_OID
    (tsa.dir / "token.der").write_bytes(der)
    _verify(tsa, "token.der", "-token_in", "-digest", digest.hex())


def test_the_tsa_signs_only_with_its_own_key(tsa: Tsa) -> None:
    """Handed any other key of the CA token (the issuing CA's), the TSA refuses to sign."""
    runtime = tsa.api.runtime
    digest = hashlib.sha256(b"signature value").digest()
    with runtime.transaction() as session, pytest.raises(TSAUnavailable, match="signs only"):
        timestamp_token(
            session,
            runtime.ca_token.signer(ISSUING_CA.key_label),
            digest,
            "sha256",
            now=CA_NOW,
            actor="test",
        )


# --- tamga init ------------------------------------------------------------------------------


@pytest.mark.slow
def test_init_twice_leaves_one_tsa_certificate(
    run_tamga: RunTamga, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    first = run_tamga(home, "init", database_url=database_url)
    assert "created tsa key" in first.stdout and "created tsa certificate" in first.stdout
    tsa_pem = (home / "public" / "ca" / "tsa.pem").read_bytes()
    second = run_tamga(home, "init", database_url=database_url)
    assert "nothing to do" in second.stdout
    assert (home / "public" / "ca" / "tsa.pem").read_bytes() == tsa_pem
    engine = create_engine(database_url)
    with engine.connect() as conn:
        fingerprints = conn.execute(
            text("SELECT fingerprint_sha256 FROM ca_certificates WHERE name = 'tsa'")
        ).scalars().all()  # fmt: skip
    engine.dispose()
    assert len(fingerprints) == 1
    ca_dir = home / "public" / "ca"
    chain = tmp_path / "chain.pem"
    chain.write_bytes((ca_dir / "issuing.pem").read_bytes())
    openssl_verify(
        ca_dir / "root.pem",
        ca_dir / "tsa.pem",
        "-untrusted",
        str(chain),
        "-purpose",
        "timestampsign",
    )
    pkilint(ca_dir / "tsa.pem")
    # The published files (PEM and the DER /ca/tsa.crt) are the certificate in the database,
    # issued by the issuing CA for time stamping only.
    cert = x509.load_pem_x509_certificate(tsa_pem)
    assert cert.fingerprint(hashes.SHA256()).hex() == fingerprints[0]
    assert (ca_dir / "tsa.crt").read_bytes() == cert.public_bytes(serialization.Encoding.DER)
    issuing = x509.load_pem_x509_certificate((ca_dir / "issuing.pem").read_bytes())
    assert cert.issuer == issuing.subject
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]

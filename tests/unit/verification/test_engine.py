"""The §8 engine on a PKI whose every date the test chooses (tests/verification_pki.py).

Each case is a dispute a commission could face: the verdict, the sub-indication and the step
that decided it are asserted, and the inputs are checked with openssl where openssl can say the
same thing (the time-stamp token, the signature, the CRLs).
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509

from signing_api.verification import (
    Indication,
    NamedBytes,
    StepStatus,
    SubIndication,
    TimeProof,
    UnreadableInput,
    load_trust,
    verify_chain,
    verify_signature,
)
from tests.verification_pki import PKI, at

DOCUMENT = "Налоговая декларация за ноябрь 2026 года\n".encode()


def trust_of(pki: PKI, *, anchors: PKI | None = None):
    root = (anchors or pki).root
    return load_trust(
        [NamedBytes("root.pem", root.pem)],
        [NamedBytes("issuing.pem", pki.issuing.pem)],
        [NamedBytes(f"crl-{i}.crl", der) for i, der in enumerate(pki.crl_ders())],
    )


def check(
    pki: PKI, signature: bytes, *, now, document: bytes = DOCUMENT, anchors: PKI | None = None
):
    return verify_signature(
        signature=NamedBytes("signature.p7s", signature),
        document=NamedBytes("report.xml", document),
        trust=trust_of(pki, anchors=anchors),
        now=now,
    )


@pytest.fixture
def pki() -> PKI:
    return PKI()


def test_a_genuine_time_stamped_signature_passes_every_step(pki: PKI, tmp_path: Path) -> None:
    holder = pki.subscriber("Асанов Бакыт")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10, 0.01))
    pki.issue_crl(at(10, 1))

    report = check(pki, signature, now=at(20))

    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.sub_indication is None
    [sig] = report.signatures
    assert [s.status for s in sig.steps] == [
        StepStatus.PASSED,
        StepStatus.PASSED,
        StepStatus.PASSED,
        StepStatus.PASSED,
        StepStatus.INFORMATIONAL,
        StepStatus.PASSED,
        StepStatus.PASSED,
    ]
    assert sig.signing_time is not None and sig.signing_time.proof is TimeProof.TIME_STAMP
    assert sig.signing_time.at == at(10, 0.01).replace(microsecond=0)
    assert sig.chain[-1].startswith("Common Name: Test Root CA")
    assert "Асанов Бакыт" in (sig.signer_subject or "")
    # every input is named with its hash: the document, the signature, the anchor, the CRLs
    roles = [i.role for i in report.inputs]
    assert roles.count("document") == 1 and roles.count("signature") == 1
    assert roles.count("trust-anchor") == 1 and roles.count("crl") == 4
    # openssl agrees: the signature verifies over the document to the same root
    (tmp_path / "doc").write_bytes(DOCUMENT)
    (tmp_path / "sig").write_bytes(signature)
    (tmp_path / "root.pem").write_bytes(pki.root.pem)
    (tmp_path / "issuing.pem").write_bytes(pki.issuing.pem)
    done = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "sig",
         "-content", tmp_path / "doc", "-CAfile", tmp_path / "root.pem",
         "-certfile", tmp_path / "issuing.pem", "-purpose", "any", "-attime",
         str(int(at(20).timestamp())), "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_time_stamp_token_is_one_openssl_accepts(pki: PKI, tmp_path: Path) -> None:
    """The test TSA's tokens are real RFC 3161 tokens: not judged by our own parser only."""
    token = pki.timestamp(b"signature value", at(3))
    (tmp_path / "token.tst").write_bytes(token)
    (tmp_path / "data").write_bytes(b"signature value")
    (tmp_path / "chain.pem").write_bytes(pki.root.pem + pki.issuing.pem)
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-token_in", "-in", tmp_path / "token.tst", "-data",
         tmp_path / "data", "-CAfile", tmp_path / "chain.pem",
         "-attime", str(int(at(4).timestamp()))],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_one_changed_byte_in_the_document_is_a_hash_failure(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))
    changed = bytearray(DOCUMENT)
    changed[5] ^= 0x01

    report = check(pki, signature, now=at(11), document=bytes(changed))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.HASH_FAILURE,
    )
    [sig] = report.signatures
    assert sig.step(2).status is StepStatus.FAILED
    assert all(sig.step(n).status is StepStatus.NOT_CHECKED for n in range(3, 8))


def test_a_forged_signature_value_is_a_crypto_failure(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10))
    info = cms.ContentInfo.load(signature)
    signer = info["content"]["signer_infos"][0]
    value = bytearray(signer["signature"].native)
    value[-3] ^= 0x40
    signer["signature"] = bytes(value)
    forged = info.dump(force=True)

    report = check(pki, forged, now=at(10, 1))

    assert report.indication is Indication.TOTAL_FAILED
    assert report.sub_indication in (SubIndication.SIG_CRYPTO_FAILURE, SubIndication.FORMAT_FAILURE)


def test_revoked_after_the_time_stamp_still_passes_with_the_revocation_recorded(pki: PKI) -> None:
    """§8.3: a certificate revoked after the signing time does not invalidate the signature."""
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))
    pki.issue_crl(at(10, 1))
    pki.revoke(holder, at(12))
    pki.issue_crl(at(12))

    report = check(pki, signature, now=at(30))

    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    [sig] = report.signatures
    assert "after the signing time" in (sig.revocation or "")
    assert "2026-01-13" in sig.step(7).detail  # the revocation's date is in the step's finding


def test_revoked_before_the_time_stamp_fails(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    pki.revoke(holder, at(5))
    pki.issue_crl(at(5))
    # the key signs after its certificate was revoked (a stolen key, say), and gets a time-stamp
    signature = pki.sign(DOCUMENT, holder, at(8), stamp_at=at(8))
    pki.issue_crl(at(9))

    report = check(pki, signature, now=at(30))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.REVOKED,
    )
    step = report.signatures[0].step(7)
    assert step.status is StepStatus.FAILED and step.clause == "8.2.7"
    assert (
        "the signer's certificate was revoked (key_compromise) at 2026-01-06T00:00:00Z"
        in step.detail
    )
    assert "before the signing time 2026-01-09T00:00:00Z (§8.3)" in step.detail
    assert any(e.kind == "crl" for e in step.evidence)


def test_revoked_without_a_time_stamp_is_indeterminate(pki: PKI) -> None:
    """Nothing proves the signature predates the revocation: REVOKED_NO_POE, not pass or fail."""
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(3))  # claims day 3, proves nothing
    pki.revoke(holder, at(5))
    pki.issue_crl(at(5))

    report = check(pki, signature, now=at(5, 2))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.REVOKED_NO_POE,
    )
    [sig] = report.signatures
    assert sig.signing_time is not None and sig.signing_time.proof is TimeProof.VALIDATION_TIME
    assert sig.signing_time.claimed == at(3)
    step = sig.step(7)
    assert step.status is StepStatus.INDETERMINATE and step.clause == "8.2.7"
    assert step.detail.startswith(
        "the signer's certificate was revoked (key_compromise) at 2026-01-06"
    )
    assert "nothing proves the signature existed before that" in step.detail
    assert any(e.kind == "crl" for e in step.evidence)


@pytest.mark.parametrize("claimed", [at(6), at(5)], ids=["after", "at-the-same-second"])
def test_the_signers_own_claim_after_the_revocation_counts_against_them(pki: PKI, claimed) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    pki.revoke(holder, at(5))
    pki.issue_crl(at(5))
    signature = pki.sign(DOCUMENT, holder, claimed)  # the signer itself says: not before it
    pki.issue_crl(at(6))

    report = check(pki, signature, now=at(6, 1))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.REVOKED,
    )
    step = report.signatures[0].step(7)
    assert step.status is StepStatus.FAILED and step.clause == "8.2.7"
    assert step.detail.startswith(
        "the signer's certificate was revoked (key_compromise) at 2026-01-06"
    )
    assert f"the signer's own claimed time {claimed.strftime('%Y-%m-%dT%H:%M:%SZ')}" in step.detail
    assert any(e.kind == "crl" for e in step.evidence)


def test_a_revoked_issuing_ca_without_proof_of_time_is_revoked_ca_no_poe(pki: PKI) -> None:
    """The root's CRL lists the issuing CA: nothing proves the signature predates that."""
    from cryptography.hazmat.primitives import hashes

    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(1))
    stamped = pki.sign(DOCUMENT, holder, at(1), stamp_at=at(1))
    pki.issue_crl(at(2))
    root_crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.cert.subject)
        .last_update(at(3))
        .next_update(at(4))
        .add_extension(x509.CRLNumber(99), critical=False)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(pki.issuing.cert.serial_number)
            .revocation_date(at(2, 12))
            .add_extension(x509.CRLReason(x509.ReasonFlags.ca_compromise), critical=False)
            .build()
        )
        .sign(pki.root.key, hashes.SHA256())
    )
    pki.root_crls.append(root_crl)
    pki.issue_crl(at(3))
    pki.root_crls.remove(pki.root_crls[-1])  # the helper's own root CRL of day 3: keep ours
    pki.root_crls.append(root_crl)

    report = check(pki, signature, now=at(3, 1))
    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.REVOKED_CA_NO_POE,
    ), report.to_json()
    step = report.signatures[0].step(7)
    assert step.detail.startswith("a CA certificate of the path was revoked (ca_compromise)")

    proven = check(pki, stamped, now=at(3, 1))  # time-stamped on day 1, before the CA's revocation
    assert proven.indication is Indication.TOTAL_PASSED, proven.to_json()


def test_signed_while_suspended_fails_even_though_the_suspension_was_lifted(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    pki.revoke(holder, at(5), x509.ReasonFlags.certificate_hold)
    pki.issue_crl(at(5))
    signature = pki.sign(DOCUMENT, holder, at(6), stamp_at=at(6))
    pki.resume(holder)
    pki.issue_crl(at(7))  # the hold is gone from every later CRL

    report = check(pki, signature, now=at(30))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.REVOKED,
    )
    assert "certificateHold" in report.signatures[0].step(7).detail


def test_suspended_after_signing_and_resumed_passes(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(4), stamp_at=at(4))
    pki.issue_crl(at(4, 1))
    pki.revoke(holder, at(5), x509.ReasonFlags.certificate_hold)
    pki.issue_crl(at(5))
    pki.resume(holder)
    pki.issue_crl(at(7))

    report = check(pki, signature, now=at(30))

    assert report.indication is Indication.TOTAL_PASSED, report.to_json()


def test_a_chain_to_a_foreign_root_is_no_certificate_chain_found(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))

    report = check(pki, signature, now=at(11), anchors=PKI(name="Foreign"))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )
    assert report.signatures[0].step(4).status is StepStatus.INDETERMINATE


def test_time_stamped_after_the_certificate_expired_fails_as_expired(pki: PKI) -> None:
    holder = pki.subscriber("Holder", at(-10), at(9))
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(8), stamp_at=at(9, 5))
    pki.issue_crl(at(9, 6))

    report = check(pki, signature, now=at(30))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.EXPIRED,
    )
    assert report.signatures[0].step(6).status is StepStatus.FAILED


def test_an_expired_certificate_without_a_time_stamp_is_out_of_bounds(pki: PKI) -> None:
    holder = pki.subscriber("Holder", at(-10), at(9))
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(8))
    pki.issue_crl(at(20))

    report = check(pki, signature, now=at(20, 1))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.OUT_OF_BOUNDS_NO_POE,
    )
    [sig] = report.signatures
    assert sig.step(6).status is StepStatus.INDETERMINATE
    assert sig.step(7).status is StepStatus.NOT_CHECKED
    assert not sig.notes


def test_no_crl_covering_the_signing_time_is_try_later(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))  # valid to day 1; nothing after
    signature = pki.sign(DOCUMENT, holder, at(10))

    report = check(pki, signature, now=at(10, 1))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.TRY_LATER,
    )


def test_a_time_stamp_from_an_untrusted_tsa_proves_nothing(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    rogue = PKI(name="Rogue")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(3), stamp_at=at(3), stamp_by=rogue)
    pki.revoke(holder, at(5))
    pki.issue_crl(at(5))

    report = check(pki, signature, now=at(6))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.REVOKED_NO_POE,
    )
    step3 = report.signatures[0].step(3)
    assert any("not used" in e.description for e in step3.evidence)


def test_ten_signers_are_each_judged(pki: PKI) -> None:
    holders = [pki.subscriber(f"Holder {n}") for n in range(10)]
    pki.issue_crl(at(0))
    parts = [
        cms.ContentInfo.load(pki.sign(DOCUMENT, h, at(1), stamp_at=at(1)))["content"]
        for h in holders
    ]
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [
                cms.CertificateChoices.load(p["certificates"][0].dump()) for p in parts
            ],
            "signer_infos": [cms.SignerInfo.load(p["signer_infos"][0].dump()) for p in parts],
        }
    )
    first = cms.ContentInfo({"content_type": "signed_data", "content": signed})
    pki.issue_crl(at(2))

    report = check(pki, first.dump(), now=at(3))

    assert len(report.signatures) == 10
    assert report.indication is Indication.TOTAL_PASSED


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"not a signature at all", "not a CMS signature"),
        (b"", "empty file"),
    ],
)
def test_unreadable_signatures_are_refused_by_name(pki: PKI, data: bytes, fragment: str) -> None:
    pki.issue_crl(at(0))
    with pytest.raises(UnreadableInput, match=fragment):
        check(pki, data, now=at(1))


def test_a_truncated_signature_is_unreadable(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(0, 1))
    with pytest.raises(UnreadableInput, match=r"signature\.p7s"):
        check(pki, signature[: len(signature) // 2], now=at(0, 2))


def test_a_cms_without_signers_fails_with_format_failure(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    part = cms.ContentInfo.load(pki.sign(DOCUMENT, holder, at(0, 1)))["content"]
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [cms.CertificateChoices.load(part["certificates"][0].dump())],
            "signer_infos": [],
        }
    )
    empty = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()

    report = check(pki, empty, now=at(0, 2))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
    )
    assert report.problems and "no signature" in report.problems[0]


def test_a_detached_signature_without_its_document_is_refused(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(0, 1))
    with pytest.raises(UnreadableInput, match="give the document"):
        verify_signature(
            signature=NamedBytes("s.p7s", signature), document=None, trust=trust_of(pki), now=at(1)
        )


def test_chain_is_valid_at_a_moment_and_not_after_revocation(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    pki.revoke(holder, at(5))
    pki.issue_crl(at(5))
    pki.issue_crl(at(6))
    cert = NamedBytes("holder.pem", holder.pem)

    before = verify_chain(cert, trust_of(pki), at=at(4), now=at(6, 1))
    after = verify_chain(cert, trust_of(pki), at=at(5, 12), now=at(6, 1))

    assert before.valid and len(before.chain) == 3
    assert not after.valid and after.sub_indication is SubIndication.REVOKED


def test_the_report_names_the_time_stamp_and_crls_it_used(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(2), stamp_at=at(2))
    pki.issue_crl(at(2, 1) + timedelta(minutes=1))

    report = check(pki, signature, now=at(3))

    [sig] = report.signatures
    kinds = {e.kind for e in sig.step(3).evidence}
    assert "time-stamp" in kinds
    crl_hashes = {e.sha256 for e in sig.step(7).evidence if e.kind == "crl"}
    inputs = {i.sha256 for i in report.inputs if i.role == "crl"}
    assert crl_hashes and crl_hashes <= inputs
    as_json = report.to_json()
    assert as_json["signatures"][0]["steps"][6]["clause"] == "8.2.7"


def test_corrupted_signatures_give_a_verdict_or_a_refusal_never_a_crash(pki: PKI) -> None:
    """Every byte position flipped in turn (a sample): UnreadableInput or a report, nothing else."""
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(0, 1), stamp_at=at(0, 1))
    trust = trust_of(pki)
    verdicts = set()
    for position in range(0, len(signature), 7):
        corrupted = bytearray(signature)
        corrupted[position] ^= 0xFF
        try:
            report = verify_signature(
                signature=NamedBytes("s.p7s", bytes(corrupted)),
                document=NamedBytes("d", DOCUMENT),
                trust=trust,
                now=at(0, 2),
            )
        except UnreadableInput:
            verdicts.add("unreadable")
            continue
        verdicts.add(report.indication.value)
    # a flipped byte never makes a signature pass unless it sits in an unsigned, unused field
    assert "unreadable" in verdicts and "TOTAL-FAILED" in verdicts


@pytest.mark.parametrize("form", ["SMIME", "PEM", "DER"])
def test_openssl_signatures_in_every_output_form_are_read(
    pki: PKI, tmp_path: Path, form: str
) -> None:
    """What a RuToken holder's ``openssl cms -sign`` writes: S/MIME by default, PEM or DER."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives import serialization

    now = datetime.now(UTC)
    holder = pki.subscriber("RuToken Holder", now - timedelta(days=1), now + timedelta(days=30))
    pki.issue_crl(now - timedelta(hours=1))
    (tmp_path / "cert.pem").write_bytes(holder.pem)
    (tmp_path / "key.pem").write_bytes(
        holder.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "doc").write_bytes(DOCUMENT)
    subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-in", tmp_path / "doc",
         "-signer", tmp_path / "cert.pem", "-inkey", tmp_path / "key.pem",
         "-outform", form, "-out", tmp_path / "sig"],
        check=True, capture_output=True,
    )  # fmt: skip
    signature = (tmp_path / "sig").read_bytes()
    document = None if form == "SMIME" else NamedBytes("doc", DOCUMENT)

    report = verify_signature(
        signature=NamedBytes("sig", signature), document=document, trust=trust_of(pki), now=now
    )

    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.signatures[0].signing_time is not None
    assert report.signatures[0].signing_time.proof is TimeProof.VALIDATION_TIME


def _issue_under(
    issuer_cert: x509.Certificate,
    issuer_key: object,
    cn: str,
    *,
    ca: bool,
    extensions: list[tuple[object, bool]] = (),
) -> tuple[x509.Certificate, object]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(at(-50))
        .not_valid_after(at(500))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier("http://x.test/c.crl")], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)  # type: ignore[arg-type]
    return builder.sign(issuer_key, hashes.SHA256()), key  # type: ignore[arg-type]


def _chain_verdict(
    pki: PKI, cert: x509.Certificate, extra: list[x509.Certificate], crls: tuple[bytes, ...] = ()
):
    from cryptography.hazmat.primitives import serialization

    pki.issue_crl(at(0))
    trust = load_trust(
        [NamedBytes("root.pem", pki.root.pem)],
        [NamedBytes("issuing.pem", pki.issuing.pem)]
        + [
            NamedBytes(f"extra{i}.pem", c.public_bytes(serialization.Encoding.PEM))
            for i, c in enumerate(extra)
        ],
        [NamedBytes(f"crl-{i}.crl", der) for i, der in enumerate([*pki.crl_ders(), *crls])],
    )
    leaf = NamedBytes("leaf.pem", cert.public_bytes(serialization.Encoding.PEM))
    return verify_chain(leaf, trust, at=at(0, 1), now=at(0, 1))


def test_a_subscriber_certificate_cannot_act_as_a_ca(pki: PKI) -> None:
    """RFC 5280 basicConstraints: a certificate 'issued' by a subscriber's key has no valid path."""
    holder = pki.subscriber("Holder")
    forged, _ = _issue_under(holder.cert, holder.key, "Forged", ca=False)
    report = _chain_verdict(pki, forged, [holder.cert])
    assert not report.valid
    assert report.sub_indication in (
        SubIndication.CHAIN_CONSTRAINTS_FAILURE,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    ), report.detail


def test_an_unknown_critical_extension_invalidates_the_path(pki: PKI) -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00")
    leaf, _ = _issue_under(
        pki.issuing.cert, pki.issuing.key, "Odd", ca=False, extensions=[(unknown, True)]
    )
    report = _chain_verdict(pki, leaf, [])
    assert not report.valid, report.detail


def test_name_constraints_of_a_sub_ca_bind_what_it_issues(pki: PKI) -> None:
    from cryptography.x509.oid import NameOID

    allowed = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")])
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DirectoryName(allowed)], excluded_subtrees=None
    )
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    sub_ca, sub_key = _issue_under(
        pki.issuing.cert,
        pki.issuing.key,
        "Sub CA",
        ca=True,
        extensions=[(constraints, True), (usage, True)],
    )
    leaf, _ = _issue_under(sub_ca, sub_key, "Outside the constraint", ca=False)
    from cryptography.hazmat.primitives import hashes, serialization

    sub_crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(sub_ca.subject)
        .last_update(at(0))
        .next_update(at(1))
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(sub_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    crl = sub_crl.public_bytes(serialization.Encoding.DER)
    report = _chain_verdict(pki, leaf, [sub_ca], (crl,))
    assert not report.valid
    assert report.sub_indication is SubIndication.CHAIN_CONSTRAINTS_FAILURE, report.detail


def test_digests_are_judged_at_the_signing_time() -> None:
    from datetime import UTC, datetime

    from policies.verification import digest_acceptable_at, key_acceptable_at

    assert digest_acceptable_at("sha1", datetime(2015, 6, 1, tzinfo=UTC))
    assert not digest_acceptable_at("sha1", datetime(2026, 6, 1, tzinfo=UTC))
    assert not digest_acceptable_at("md5", datetime(2000, 1, 1, tzinfo=UTC))
    assert not digest_acceptable_at("whirlpool", datetime(2000, 1, 1, tzinfo=UTC))
    assert key_acceptable_at("rsa", 1024, datetime(2015, 6, 1, tzinfo=UTC))
    assert not key_acceptable_at("rsa", 1024, datetime(2026, 6, 1, tzinfo=UTC))
    assert key_acceptable_at("ec", 256, datetime(2026, 6, 1, tzinfo=UTC))


def _package(pki: PKI, signature: bytes, *, listed: bool, sent_at) -> bytes:
    """A report package as filing writes it, with a dispatch confirmation by the operator."""
    import hashlib
    import io
    import json
    import zipfile

    from ca.cms import sign_encapsulated

    operator = pki.subscriber("Tamga dispatch confirmations")
    statement = {
        "type": "dispatch-confirmation",
        "report_id": "r-1",
        "document_sha256": hashlib.sha256(DOCUMENT).hexdigest(),
        "sent_at": sent_at.isoformat(),
    }
    if listed:
        statement["signatures"] = f"head:{hashlib.sha256(signature).hexdigest()}"
    content = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()

    def timestamper(digest: bytes, hash_name: str) -> bytes:
        return pki.timestamp_digest(digest, sent_at)

    confirmation = sign_encapsulated(
        content,
        operator.cert,
        operator.key,
        [pki.issuing.cert],
        signing_time=sent_at,
        timestamper=timestamper,
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("document/report.xml", DOCUMENT)
        archive.writestr("signatures/head.p7s", signature)
        archive.writestr("dispatch-confirmation.p7m", confirmation)
        archive.writestr("ca.pem", pki.issuing.pem + pki.root.pem)
    return buffer.getvalue()


@pytest.mark.parametrize("listed", [True, False])
def test_a_packages_dispatch_confirmation_proves_when_its_signatures_existed(
    pki: PKI, listed: bool
) -> None:
    """A RuToken signature has no time-stamp of its own; the operator's time-stamped dispatch
    confirmation naming its SHA-256 proves it existed when the report left (§8.3 then applies)."""
    from signing_api.verification import verify_package

    holder = pki.subscriber("RuToken Head")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(1))  # no time-stamp
    package = _package(pki, signature, listed=listed, sent_at=at(1, 2))
    pki.issue_crl(at(1, 3))
    pki.revoke(holder, at(3))
    pki.issue_crl(at(3))
    trust = load_trust(
        [NamedBytes("root.pem", pki.root.pem)],  # the package's own ca.pem is never trusted
        [],
        [NamedBytes(f"crl-{i}.crl", der) for i, der in enumerate(pki.crl_ders())],
    )

    report = verify_package(NamedBytes("package.zip", package), trust, now=at(3, 1))

    [sig] = report.signatures
    if listed:
        assert report.indication is Indication.TOTAL_PASSED, report.to_json()
        assert (
            sig.signing_time is not None and sig.signing_time.proof is TimeProof.OPERATOR_EVIDENCE
        )
        assert sig.signing_time.at == at(1, 2)
    else:
        assert (report.indication, report.sub_indication) == (
            Indication.INDETERMINATE,
            SubIndication.REVOKED_NO_POE,
        )
        assert any("does not name the signatures" in note for note in sig.notes)


@pytest.mark.parametrize("case", ["expired", "not-yet-valid"])
def test_the_signers_own_claim_outside_the_validity_counts_against_them(
    pki: PKI, tmp_path: Path, case: str
) -> None:
    """openssl signs with today's signingTime whatever the certificate says: no proof of time,
    but the signer's own claim lies outside the validity, so TOTAL-FAILED (not INDETERMINATE)."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives import serialization

    now = datetime.now(UTC)
    if case == "expired":
        holder = pki.subscriber(
            "Expired Holder", now - timedelta(days=60), now - timedelta(days=30)
        )
    else:
        holder = pki.subscriber("Future Holder", now + timedelta(days=30), now + timedelta(days=60))
    pki.issue_crl(now - timedelta(hours=1))
    (tmp_path / "cert.pem").write_bytes(holder.pem)
    (tmp_path / "key.pem").write_bytes(
        holder.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "doc").write_bytes(DOCUMENT)
    subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-in", tmp_path / "doc",
         "-signer", tmp_path / "cert.pem", "-inkey", tmp_path / "key.pem",
         "-outform", "DER", "-out", tmp_path / "sig"],
        check=True, capture_output=True,
    )  # fmt: skip

    report = check(pki, (tmp_path / "sig").read_bytes(), now=now + timedelta(minutes=1))

    expected = SubIndication.EXPIRED if case == "expired" else SubIndication.NOT_YET_VALID
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_FAILED, expected)
    [sig] = report.signatures
    assert any("claimed signing time lies outside" in note for note in sig.notes)
    step = sig.step(6)
    assert step.status is StepStatus.INDETERMINATE and step.evidence
    assert step.detail.startswith("at ")
    assert sig.step(7).status is StepStatus.NOT_CHECKED
    assert "not valid at the signing time" in sig.step(7).detail


def _time_proof(report) -> tuple[TimeProof, str]:
    [sig] = report.signatures
    step3 = sig.step(3)
    unused = " ".join(e.description for e in step3.evidence if e.description.startswith("not used"))
    return sig.signing_time.proof, unused


def test_a_time_stamp_whose_own_signature_fails_proves_nothing(pki: PKI, monkeypatch) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    made = pki.timestamp_digest

    def corrupted(imprint: bytes, gen_time):
        token = bytearray(made(imprint, gen_time))
        token[-1] ^= 0x01  # the last byte of the TSA's ECDSA signature value
        return bytes(token)

    monkeypatch.setattr(pki, "timestamp_digest", corrupted)
    signature = pki.sign(DOCUMENT, holder, at(1), stamp_at=at(1))
    pki.issue_crl(at(1, 1))

    proof, unused = _time_proof(check(pki, signature, now=at(1, 2)))

    assert proof is TimeProof.VALIDATION_TIME
    assert "the time-stamp's own signature does not verify" in unused


def test_a_time_stamp_by_a_certificate_without_eku_time_stamping_proves_nothing(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.tsa = pki.subscriber("Not a TSA")  # trusted chain, but no id-kp-timeStamping
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(1), stamp_at=at(1))
    pki.issue_crl(at(1, 1))

    proof, unused = _time_proof(check(pki, signature, now=at(1, 2)))

    assert proof is TimeProof.VALIDATION_TIME
    assert "has no EKU timeStamping" in unused


def test_a_time_stamp_made_a_minute_ago_is_a_proof(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(9, 12))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))

    report = check(pki, signature, now=at(10) + timedelta(minutes=1))

    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert _time_proof(report) == (TimeProof.TIME_STAMP, "")


def test_a_time_stamp_from_the_future_proves_nothing(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(9, 12))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10) + timedelta(minutes=6))

    proof, unused = _time_proof(check(pki, signature, now=at(10)))

    assert proof is TimeProof.VALIDATION_TIME
    assert "lies in the future" in unused and "2026-01-11T00:06:00Z" in unused


# --- steps 4 to 7 as the report states them (mutants of _path_steps) -------------------------


def test_each_step_is_numbered_once_in_order_and_names_its_evidence(pki: PKI) -> None:
    """The report a commission reads: steps 1–7 each once, the path's certificates by role."""
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))
    pki.issue_crl(at(10, 1))

    [sig] = check(pki, signature, now=at(20)).signatures

    assert [s.number for s in sig.steps] == [1, 2, 3, 4, 5, 6, 7]
    path = sig.step(4)
    assert path.detail.startswith(
        "a path of 3 certificates to the trust anchor Common Name: Test Root CA"
    )
    assert "RFC 5280 path validation (basic constraints, key usage" in path.detail
    roles = [e.description.split(":", 1)[0] for e in path.evidence]
    assert roles == ["signer", "CA", "trust anchor"]
    assert "Holder" in path.evidence[0].description
    assert sig.step(6).detail == (
        "every certificate of the path was within its validity at 2026-01-11T00:00:00Z"
    )
    assert [e.description.split(":", 1)[0] for e in sig.step(6).evidence] == roles
    assert sig.step(7).detail == (
        "not revoked or suspended at 2026-01-11T00:00:00Z by the CRLs covering that moment"
    )
    assert {e.kind for e in sig.step(7).evidence} == {"crl"}


def test_a_later_revocation_is_added_to_the_passed_finding(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))
    pki.issue_crl(at(10, 1))
    pki.revoke(holder, at(12))
    pki.issue_crl(at(12))

    step = check(pki, signature, now=at(30)).signatures[0].step(7)

    assert step.status is StepStatus.PASSED
    assert step.detail.startswith("not revoked or suspended at 2026-01-11T00:00:00Z by the CRLs")
    assert step.detail.endswith("(§8.3: a later revocation does not invalidate it)")


def test_a_backdated_claim_does_not_rescue_a_signature_time_stamped_after_revocation(
    pki: PKI,
) -> None:
    """The time-stamp proves the signature came after the revocation: the signer's earlier
    signingTime claim (a backdated signature) changes nothing and is not what decides."""
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    pki.revoke(holder, at(5))
    pki.issue_crl(at(5))
    signature = pki.sign(DOCUMENT, holder, at(3), stamp_at=at(8))  # claims day 3
    pki.issue_crl(at(9))

    report = check(pki, signature, now=at(30))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.REVOKED,
    )
    step = report.signatures[0].step(7)
    assert step.status is StepStatus.FAILED
    assert "before the signing time 2026-01-09T00:00:00Z (§8.3)" in step.detail
    assert "claimed" not in step.detail


def test_no_chain_names_step_4_and_stops_the_later_steps(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))

    [sig] = check(pki, signature, now=at(11), anchors=PKI(name="Foreign")).signatures

    assert [s.number for s in sig.steps] == [1, 2, 3, 4, 5, 6, 7]
    step = sig.step(4)
    assert step.detail == "no path from the signer's certificate to any trust anchor given"
    assert step.evidence == ()  # no path, so no certificate of one
    assert sig.step(5).status is StepStatus.INFORMATIONAL
    for number in (6, 7):
        later = sig.step(number)
        assert later.status is StepStatus.NOT_CHECKED
        assert later.detail == "not checked: no valid path to a trust anchor"


def test_an_invalid_path_says_why_at_step_4(pki: PKI) -> None:
    """A path exists but RFC 5280 refuses it (an unknown critical extension): step 4 says the
    path is not valid, not that there is none."""
    from tests.verification_pki import Issued

    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00")
    cert, key = _issue_under(
        pki.issuing.cert, pki.issuing.key, "Odd", ca=False, extensions=[(unknown, True)]
    )
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, Issued(cert, key), at(10), stamp_at=at(10))  # type: ignore[arg-type]
    pki.issue_crl(at(10, 1))

    report = check(pki, signature, now=at(20))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.CHAIN_CONSTRAINTS_FAILURE,
    )
    [sig] = report.signatures
    step = sig.step(4)
    assert step.status is StepStatus.INDETERMINATE
    assert step.detail.startswith("the path to the trust anchor is not valid: ")
    assert step.evidence[0].description.startswith("signer: ")
    assert sig.step(6).status is StepStatus.NOT_CHECKED


def test_no_crl_covering_the_moment_is_try_later_at_step_7(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))  # valid to day 2; nothing after
    signature = pki.sign(DOCUMENT, holder, at(10))

    [sig] = check(pki, signature, now=at(10, 1)).signatures

    step = sig.step(7)
    assert step.status is StepStatus.INDETERMINATE
    assert step.detail.startswith("no CRL given covers 2026-01-11T01:00:00Z")
    assert step.detail.endswith("Fetch the current CRLs (or the archive) and verify again")
    assert "2026-01-11T01:00:00Z (the newest is past its nextUpdate): " in step.detail
    assert [e.kind for e in step.evidence] == ["crl", "crl"]  # what was given, and too old
    assert [s.number for s in sig.steps] == [1, 2, 3, 4, 5, 6, 7]


def test_no_crl_at_all_is_try_later_without_a_staleness_note(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))

    [sig] = check(pki, signature, now=at(11)).signatures

    step = sig.step(7)
    assert step.status is StepStatus.INDETERMINATE
    assert step.detail.startswith("no CRL given covers 2026-01-12T00:00:00Z: ")  # now: no proof
    assert "nextUpdate" not in step.detail


def test_a_certificate_whose_issuer_signature_fails_is_a_chain_general_failure(pki: PKI) -> None:
    """Named as issued by our issuing CA, signed by another key: the path breaks on a signature."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.verification_pki import Issued

    cert, key = _issue_under(pki.issuing.cert, ec.generate_private_key(ec.SECP256R1()), "Fake",
                             ca=False)  # fmt: skip
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, Issued(cert, key), at(10), stamp_at=at(10))  # type: ignore[arg-type]
    pki.issue_crl(at(10, 1))

    report = check(pki, signature, now=at(20))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE,
    ), report.to_json()
    assert (
        report.signatures[0]
        .step(4)
        .detail.startswith("the path to the trust anchor is not valid: ")
    )


# --- steps 1 and 2: what the report says when they decide (mutants of _identify, _integrity) ---


def _stopped_at(sig, number: int, status: StepStatus, why: str) -> None:
    """Steps 1–7 listed once each; step ``number`` decided with ``status``; every later step is
    'not checked' for the reason ``why``."""
    assert [s.number for s in sig.steps] == [1, 2, 3, 4, 5, 6, 7]
    assert sig.step(number).status is status
    for later in range(number + 1, 8):
        assert sig.step(later).status is StepStatus.NOT_CHECKED
        assert sig.step(later).detail == f"not checked: {why}"


def _edit_signer(signature: bytes, edit) -> bytes:
    info = cms.ContentInfo.load(signature)
    edit(info["content"])
    return info.dump(force=True)


def test_steps_1_and_2_say_who_signed_and_with_what(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10))
    pki.issue_crl(at(10, 1))

    [sig] = check(pki, signature, now=at(20)).signatures

    first = sig.step(1)
    serial = f"{holder.cert.serial_number:x}"
    assert first.detail.startswith("the signature names issuer Common Name: Test Issuing CA")
    assert f", serial {serial}: Common Name: Holder" in first.detail
    assert [e.description.split(":", 1)[0] for e in first.evidence] == ["signer"]
    second = sig.step(2)
    assert second.detail == (
        "the message-digest matches the document and the ecdsa signature (EC 256 bits, SHA256) "
        "verifies with the signer's key"
    ), second.detail
    [seen] = second.evidence
    assert seen.kind == "document"
    assert seen.description == (
        f"SHA256 digest of the signed content: {hashlib.sha256(DOCUMENT).hexdigest()}"
    )


def test_a_changed_document_stops_at_step_2_with_the_digest_seen(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10))

    [sig] = check(pki, signature, now=at(11), document=DOCUMENT + b" ").signatures

    _stopped_at(sig, 2, StepStatus.FAILED, "the signature is not over this document")
    assert sig.step(2).detail == (
        "the document's digest differs from the message-digest the signer signed: the document "
        "is not the one signed, or it was changed"
    )
    assert sig.step(2).evidence[0].description.startswith("SHA256 digest of the signed content")


def test_a_signature_with_a_value_of_the_wrong_key_stops_at_step_2(pki: PKI) -> None:
    """A well-formed signature by another key, under the holder's certificate: CRYPTO failure."""
    holder, other = pki.subscriber("Holder"), pki.subscriber("Other")
    pki.issue_crl(at(0))
    theirs = cms.ContentInfo.load(pki.sign(DOCUMENT, other, at(10)))["content"]["signer_infos"][0]

    def swap(signed: cms.SignedData) -> None:
        signer = signed["signer_infos"][0]
        # the same signed attributes but the other key's value: only the value is wrong
        signer["signature"] = theirs["signature"].native

    report = check(pki, _edit_signer(pki.sign(DOCUMENT, holder, at(10)), swap), now=at(10, 1))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.SIG_CRYPTO_FAILURE,
    )
    [sig] = report.signatures
    _stopped_at(sig, 2, StepStatus.FAILED, "the signature value does not verify")
    step = sig.step(2)
    assert step.detail == "the signature value does not verify with the certificate's public key"
    assert [e.kind for e in step.evidence] == ["document"]


def test_an_unknown_digest_algorithm_cannot_be_checked(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))

    def odd(signed: cms.SignedData) -> None:
        signed["signer_infos"][0]["digest_algorithm"] = {"algorithm": "1.3.6.1.4.1.99999.1"}

    report = check(pki, _edit_signer(pki.sign(DOCUMENT, holder, at(10)), odd), now=at(10, 1))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
    )
    [sig] = report.signatures
    _stopped_at(sig, 2, StepStatus.FAILED, "the signature cannot be checked")
    assert sig.step(2).detail.startswith("the signature cannot be checked: ")


def test_a_signature_without_its_certificate_names_the_one_it_needs(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))

    def strip(signed: cms.SignedData) -> None:
        del signed["certificates"]

    report = check(pki, _edit_signer(pki.sign(DOCUMENT, holder, at(10)), strip), now=at(10, 1))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
    )
    [sig] = report.signatures
    _stopped_at(sig, 1, StepStatus.INDETERMINATE, "no signer certificate")
    serial = f"{holder.cert.serial_number:x}"
    assert sig.step(1).detail == (
        "the signature names issuer Common Name: Test Issuing CA, Organization: Тест PKI, "
        f"Country: KG, serial {serial}; no such certificate is in the signature or among the "
        "certificates given"
    )


def test_a_signing_certificate_v2_naming_another_certificate_stops_at_step_1(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))

    def rebind(signed: cms.SignedData) -> None:
        for attribute in signed["signer_infos"][0]["signed_attrs"]:
            if attribute["type"].native == "signing_certificate_v2":
                value = attribute["values"][0]
                first = value["certs"][0]
                first["cert_hash"] = bytes(32)
                value["certs"] = [first]
                attribute["values"] = [value]

    report = check(pki, _edit_signer(pki.sign(DOCUMENT, holder, at(10)), rebind), now=at(10, 1))

    assert (report.indication, report.sub_indication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
    )
    [sig] = report.signatures
    why = "the signer certificate is not the one the signature binds"
    _stopped_at(sig, 1, StepStatus.INDETERMINATE, why)
    assert sig.step(1).detail.endswith(": signing-certificate-v2 names another certificate")
    assert sig.step(1).evidence[0].description.startswith("signer: ")


@pytest.mark.parametrize(
    ("offset", "tag", "found"),
    [(0, 0xA5, "did not match"), (None, 0x04, "Integer")],
    ids=["unknown-sid-choice", "serial-not-an-integer"],
)
def test_an_unreadable_signer_identifier_is_a_format_failure_at_step_1(
    pki: PKI, offset: int | None, tag: int, found: str
) -> None:
    """The signer's sid is garbled in the DER (the rest parses): FORMAT_FAILURE, not a crash."""
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10))
    sid = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]["sid"].dump()
    bad = bytearray(sid)
    if offset is None:  # the serial's INTEGER tag, after the issuer Name
        offset = bad.index(0x02, 4 + bad[3])
    bad[offset] = tag
    start = signature.rindex(sid)
    garbled = signature[:start] + bytes(bad) + signature[start + len(sid) :]

    report = check(pki, garbled, now=at(11))

    assert (report.indication, report.sub_indication) == (
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
    )
    [sig] = report.signatures
    _stopped_at(sig, 1, StepStatus.FAILED, "the SignerInfo is unreadable")
    assert sig.step(1).detail.startswith("the SignerInfo is unreadable (")
    assert found in sig.step(1).detail


def test_a_signer_named_by_subject_key_identifier_is_found_and_named(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    ski = holder.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest

    def by_key_id(signed: cms.SignedData) -> None:
        signed["signer_infos"][0]["sid"] = cms.SignerIdentifier({"subject_key_identifier": ski})

    signature = _edit_signer(pki.sign(DOCUMENT, holder, at(10), stamp_at=at(10)), by_key_id)
    pki.issue_crl(at(10, 1))

    report = check(pki, signature, now=at(20))

    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.signatures[0].step(1).detail == (
        f"the signature names subject key identifier {ski.hex()}: Common Name: Holder, "
        "Organization: Тест PKI, Country: KG"
    )


# --- step 3: the earliest proof of existence (mutants of _signing_time) ----------------------


def _value_sha256(signature: bytes) -> str:
    signer = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
    return hashlib.sha256(signer["signature"].native).hexdigest()


@pytest.mark.parametrize("record_first", [True, False], ids=["record-earlier", "stamp-earlier"])
def test_the_earliest_of_a_time_stamp_and_an_operator_record_is_the_signing_time(
    pki: PKI, record_first: bool
) -> None:
    """Two proofs of existence: the earlier one decides, whichever kind it is; the claim is
    shown beside it."""
    from signing_api.verification import OperatorEvidence

    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    stamp, record = (at(10, 2), at(10, 1)) if record_first else (at(10, 1), at(10, 2))
    signature = pki.sign(DOCUMENT, holder, at(10), stamp_at=stamp)
    pki.issue_crl(at(10, 3))
    proof = OperatorEvidence(_value_sha256(signature), record, "accepted at intake")

    report = verify_signature(
        signature=NamedBytes("signature.p7s", signature),
        document=NamedBytes("report.xml", DOCUMENT),
        trust=trust_of(pki),
        now=at(20),
        evidence=[proof],
    )

    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    [sig] = report.signatures
    assert sig.signing_time is not None
    earliest = min(stamp, record)
    assert sig.signing_time.at == earliest
    expected = TimeProof.OPERATOR_EVIDENCE if record_first else TimeProof.TIME_STAMP
    assert sig.signing_time.proof is expected
    assert sig.signing_time.claimed == at(10)
    step = sig.step(3)
    source = "the operator's record" if record_first else "a verified signature-time-stamp"
    assert step.detail == f"signed no later than {earliest:%Y-%m-%dT%H:%M:%SZ}, proven by {source}"
    [claim] = [e for e in step.evidence if e.kind == "attribute"]
    assert claim.description == "signingTime claimed by the signer: 2026-01-11T00:00:00Z"
    assert claim.at == at(10)
    if record_first:
        [used] = [e for e in step.evidence if e.kind == "operator-record"]
        assert (used.description, used.at) == ("accepted at intake", record)


def test_without_a_proof_the_claim_is_named_and_proves_nothing(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(10))
    pki.issue_crl(at(10, 1))

    [sig] = check(pki, signature, now=at(10, 2)).signatures

    step = sig.step(3)
    assert step.status is StepStatus.INFORMATIONAL
    assert step.detail == (
        "no proof of existence (no usable signature-time-stamp, no operator record): the "
        "signature is judged as of the validation time 2026-01-11T02:00:00Z; the signer claims "
        "2026-01-11T00:00:00Z, which proves nothing"
    )
    assert sig.signing_time is not None and sig.signing_time.claimed == at(10)


def test_a_claimed_time_after_the_proof_and_in_the_future_is_noted(pki: PKI) -> None:
    holder = pki.subscriber("Holder")
    pki.issue_crl(at(0))
    signature = pki.sign(DOCUMENT, holder, at(40), stamp_at=at(10))  # claims a later day
    pki.issue_crl(at(10, 1))

    [sig] = check(pki, signature, now=at(20)).signatures

    assert "the claimed signing time 2026-02-10T00:00:00Z lies in the future" in sig.notes
    assert (
        "the claimed signing time 2026-02-10T00:00:00Z is after the proof of existence "
        "2026-01-11T00:00:00Z"
    ) in sig.notes

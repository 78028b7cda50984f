"""A dispute report built by hand (Cyrillic names, long hashes and names) for the renderers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from signing_api.verification.report import (
    DocumentReport,
    Evidence,
    Indication,
    InputFile,
    SignatureReport,
    SigningTime,
    StepResult,
    StepStatus,
    SubIndication,
    TimeProof,
)

SIGNED = datetime(2026, 12, 3, 10, 15, tzinfo=UTC)
CHECKED = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
HEAD = "CN=Асанова Айгуль Бакытовна, T=Директор, O=ОсОО «Ала-Тоо Консалтинг», L=Бишкек, C=KG"
ISSUING = "CN=Tamga Issuing CA, O=ОсОО «ДОС ТЭК ГРУПП», C=KG"
ROOT = "CN=Tamga Root CA, O=ОсОО «ДОС ТЭК ГРУПП», C=KG"
# a name with no space to break at: it must still wrap inside its cell
LONG_NAME = "отчёт_" + "НДС" * 40 + ".xml"


def digest(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def _steps(*, revoked: bool = False) -> tuple[StepResult, ...]:
    cert = Evidence("certificate", HEAD, digest("head-cert"), None)
    crl = Evidence("crl", "CRL of Tamga Issuing CA, number 42", digest("crl-42"), SIGNED)
    stamp = Evidence("time-stamp", "RFC 3161 token of Tamga TSA", digest("tst"), SIGNED)
    passed, failed = StepStatus.PASSED, StepStatus.FAILED
    return (
        StepResult(1, passed, "the signer's certificate is in the signature", (cert,)),
        StepResult(2, passed, "the signature over the document's SHA-256 verifies", ()),
        StepResult(3, passed, "signed at 2026-12-03T10:15:00Z, proved by a time-stamp", (stamp,)),
        StepResult(4, passed, "chain: Асанова → Tamga Issuing CA → Tamga Root CA", ()),
        StepResult(5, StepStatus.INFORMATIONAL, "valid now (until 2027-12-02)", ()),
        StepResult(6, passed, "valid at the signing time", ()),
        StepResult(
            7,
            failed if revoked else passed,
            "revoked 2026-12-01T00:00:00Z (keyCompromise), before signing"
            if revoked
            else "not on the CRL in force at the signing time",
            (crl,),
        ),
    )


def sample_report(indication: Indication = Indication.TOTAL_PASSED) -> DocumentReport:
    revoked = indication is Indication.TOTAL_FAILED
    head = SignatureReport(
        label="signatures/head.p7s",
        indication=indication,
        sub_indication=SubIndication.REVOKED if revoked else None,
        steps=_steps(revoked=revoked),
        signer_subject=HEAD,
        signer_serial=0x5F3A9C2E1B7D4A6F8E0C1D2B3A4F5E6D7C8B9A0,
        signer_issuer=ISSUING,
        signing_time=SigningTime(SIGNED, TimeProof.TIME_STAMP, SIGNED),
        chain=(HEAD, ISSUING, ROOT),
        revocation="revoked 2026-12-01: keyCompromise (before signing)"
        if revoked
        else "not revoked",
        notes=("Подпись сделана облачным ключом Tamga.",),
    )
    accountant = SignatureReport(
        label="signatures/accountant.p7s",
        indication=Indication.TOTAL_PASSED,
        sub_indication=None,
        steps=_steps(),
        signer_subject="CN=Бакиева Нургуль, T=Главный бухгалтер, O=ОсОО «Ала-Тоо Консалтинг», C=KG",
        signer_serial=0x1234ABCD,
        signer_issuer=ISSUING,
        signing_time=SigningTime(SIGNED, TimeProof.CLAIMED, SIGNED),
        chain=("CN=Бакиева Нургуль", ISSUING, ROOT),
        revocation="not revoked",
    )
    inputs = (
        InputFile("document", LONG_NAME, digest("document"), 12345),
        InputFile("signature", "head.p7s", digest("head.p7s"), 2345),
        InputFile("signature", "accountant.p7s", digest("accountant.p7s"), 2210),
        InputFile("trust-anchor", "archive:root.crt", digest("root"), 900, f"{ROOT}, serial 1a"),
        InputFile("intermediate", "archive:issuing.crt", digest("issuing"), 950, ISSUING),
        InputFile(
            "crl", "archive:issuing-000042.crl", digest("crl-42"), 400, "CRL of Tamga Issuing CA"
        ),
    )
    return DocumentReport(
        indication=indication,
        sub_indication=SubIndication.REVOKED if revoked else None,
        document_sha256=digest("document"),
        signatures=(head, accountant),
        inputs=inputs,
        validation_time=CHECKED,
        engine="tamga-verify 1.0",
        problems=("Документ подписан двумя подписями.",),
    )


CASE = {
    "case_id": "D-2027-0007",
    "inn": "01234567890123",
    "opened_at": "2027-02-01 09:00 UTC",
    "opened_by": "Комиссия ГНС, Иванов И. И.",
}

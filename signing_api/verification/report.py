"""The dispute report as immutable values: what the engine found, step by step, and why.

A :class:`DocumentReport` holds one :class:`SignatureReport` per signature found, each with the
seven steps of §8.2 as :class:`StepResult` values, the ETSI EN 319 102-1 indication and
sub-indication, and the evidence every step used. :class:`InputFile` names every input the
decision used (its role, its name and its SHA-256), so the verdict can be reproduced years later
from the same files. ``to_json()`` gives the machine-readable report (``--json``, ``report.json``);
the PDF and the page render the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "CONCLUSIONS",
    "STEP_NAMES",
    "ChainReport",
    "DocumentReport",
    "Evidence",
    "Indication",
    "InputFile",
    "SignatureReport",
    "SigningTime",
    "StepResult",
    "StepStatus",
    "SubIndication",
    "TimeProof",
]


class Indication(StrEnum):
    """ETSI EN 319 102-1 §5.1.3 main status indications."""

    TOTAL_PASSED = "TOTAL-PASSED"
    TOTAL_FAILED = "TOTAL-FAILED"
    INDETERMINATE = "INDETERMINATE"


class SubIndication(StrEnum):
    """ETSI EN 319 102-1 Table 5/6 sub-indications that this engine can give."""

    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    TRY_LATER = "TRY_LATER"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"


class StepStatus(StrEnum):
    """How one step of §8.2 ended."""

    PASSED = "passed"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"  # could not be decided from the inputs given
    NOT_CHECKED = "not-checked"  # an earlier step failed, so this one had nothing to check
    INFORMATIONAL = "informational"  # recorded, never decides (§8.2.5 validity now)


class TimeProof(StrEnum):
    """Where the signing time came from, strongest first (§8.2.3)."""

    TIME_STAMP = "signature-time-stamp"  # an RFC 3161 token over the signature value, verified
    OPERATOR_EVIDENCE = "operator-evidence"  # the operator's own signed or stored record
    CLAIMED = "claimed-signing-time"  # the signer's signingTime attribute: proves nothing
    VALIDATION_TIME = "validation-time"  # nothing better: the time of this verification


# What each time source proves, in the words the report uses.
TIME_PROOF_MEANING = {
    TimeProof.TIME_STAMP: "proof of existence: a trusted time-stamping authority saw the "
    "signature then",
    TimeProof.OPERATOR_EVIDENCE: "proof of existence: the operator's signed record shows the "
    "signature existed then",
    TimeProof.CLAIMED: "the signer's own claim; it proves nothing and counts only against the "
    "signer",
    TimeProof.VALIDATION_TIME: "no proof of an earlier time: the signature is judged as of now",
}

STEP_NAMES = {
    1: ("8.2.1", "identify the signer's certificate"),
    2: ("8.2.2", "verify the signature over the document"),
    3: ("8.2.3", "establish when it was signed"),
    4: ("8.2.4", "chain to a trusted root, each certificate's signature verified"),
    5: ("8.2.5", "certificate validity now"),
    6: ("8.2.6", "certificate validity at the signing time"),
    7: ("8.2.7", "revocation status at the signing time (§8.3)"),
}

# §8.4: the commission's conclusion, by indication.
CONCLUSIONS = {
    Indication.TOTAL_PASSED: "The electronic signature is authentic: it was made with the key of "
    "the certificate named, over this document, and the certificate was valid and not revoked "
    "when it was made (§8.4).",
    Indication.TOTAL_FAILED: "The electronic signature is not authentic (§8.4).",
    Indication.INDETERMINATE: "Authenticity cannot be confirmed from the material given; the "
    "reason and what would settle it are stated in the report (§8.4).",
}


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence a step used: what it is and how to find it again."""

    kind: str  # "certificate", "crl", "time-stamp", "attribute", "document", "operator-record", …
    description: str
    sha256: str | None = None  # of the DER / bytes, when the evidence is an object
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "sha256": self.sha256,
            "at": _iso(self.at),
        }


@dataclass(frozen=True)
class StepResult:
    """One step of §8.2: its number (1–7), clause, outcome, finding and evidence."""

    number: int
    status: StepStatus
    detail: str
    evidence: tuple[Evidence, ...] = ()

    @property
    def clause(self) -> str:
        return STEP_NAMES[self.number][0]

    @property
    def name(self) -> str:
        return STEP_NAMES[self.number][1]

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "clause": self.clause,
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass(frozen=True)
class SigningTime:
    """The time the signature is judged at, and what proves it."""

    at: datetime
    proof: TimeProof
    claimed: datetime | None  # the signingTime attribute, whatever the proof

    @property
    def meaning(self) -> str:
        return TIME_PROOF_MEANING[self.proof]

    def to_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "proof": self.proof.value,
            "meaning": self.meaning,
            "claimed": _iso(self.claimed),
        }


@dataclass(frozen=True)
class SignatureReport:
    """The verdict on one signature and the seven steps behind it."""

    label: str  # "signer 1", "signatures/head.p7s", the PDF field name, …
    indication: Indication
    sub_indication: SubIndication | None
    steps: tuple[StepResult, ...]
    signer_subject: str | None
    signer_serial: int | None
    signer_issuer: str | None
    signing_time: SigningTime | None
    chain: tuple[str, ...]  # subjects, signer first, trust anchor last
    revocation: str | None  # "not revoked", or "revoked 2026-…: keyCompromise (after signing)"
    notes: tuple[str, ...] = ()

    @property
    def conclusion(self) -> str:
        return CONCLUSIONS[self.indication]

    def step(self, number: int) -> StepResult:
        for found in self.steps:
            if found.number == number:
                return found
        raise KeyError(number)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "indication": self.indication.value,
            "sub_indication": self.sub_indication.value if self.sub_indication else None,
            "conclusion": self.conclusion,
            "signer": {
                "subject": self.signer_subject,
                "serial": None if self.signer_serial is None else format(self.signer_serial, "x"),
                "issuer": self.signer_issuer,
            },
            "signing_time": self.signing_time.to_json() if self.signing_time else None,
            "chain": list(self.chain),
            "revocation": self.revocation,
            "steps": [s.to_json() for s in self.steps],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class InputFile:
    """An input the decision used: its role, its name as given, its SHA-256 and size."""

    role: str  # "document", "signature", "pdf", "package", "trust-anchor", "intermediate", "crl"
    name: str
    sha256: str
    size: int
    detail: str = ""  # e.g. a certificate's subject, a CRL's issuer, number and dates

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DocumentReport:
    """The verdict on a document: one report per signature, and every input named.

    The document passes only when it has at least one signature and every signature passes; it
    fails when any signature fails; otherwise it is indeterminate.
    """

    indication: Indication
    sub_indication: SubIndication | None
    document_sha256: str | None
    signatures: tuple[SignatureReport, ...]
    inputs: tuple[InputFile, ...]
    validation_time: datetime
    engine: str
    problems: tuple[str, ...] = ()  # findings about the document as a whole (no signer, …)

    @property
    def conclusion(self) -> str:
        return CONCLUSIONS[self.indication]

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "tamga-dispute-report",
            "version": 1,
            "engine": self.engine,
            "validation_time": _iso(self.validation_time),
            "indication": self.indication.value,
            "sub_indication": self.sub_indication.value if self.sub_indication else None,
            "conclusion": self.conclusion,
            "document_sha256": self.document_sha256,
            "problems": list(self.problems),
            "signatures": [s.to_json() for s in self.signatures],
            "inputs": [i.to_json() for i in self.inputs],
        }


@dataclass(frozen=True)
class ChainReport:
    """``tamga verify chain``: is the path of one certificate valid at a moment."""

    valid: bool
    at: datetime
    subject: str
    serial: int
    chain: tuple[str, ...]
    detail: str
    sub_indication: SubIndication | None
    revocation: str | None
    inputs: tuple[InputFile, ...]
    engine: str
    evidence: tuple[Evidence, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "tamga-chain-report",
            "version": 1,
            "engine": self.engine,
            "valid": self.valid,
            "at": _iso(self.at),
            "subject": self.subject,
            "serial": format(self.serial, "x"),
            "chain": list(self.chain),
            "detail": self.detail,
            "sub_indication": self.sub_indication.value if self.sub_indication else None,
            "revocation": self.revocation,
            "evidence": [e.to_json() for e in self.evidence],
            "inputs": [i.to_json() for i in self.inputs],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")

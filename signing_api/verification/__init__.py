"""The §8 dispute procedure as an engine: results as immutable values. No Flask, no hsm.

``verify_signature`` (a detached or attached CMS/CAdES signature), ``verify_pdf`` (PAdES, the
signatures embedded in a PDF), ``verify_package`` (a filed report's evidence package) and
``verify_chain`` (one certificate's path at a moment) take their trust anchors, intermediates and
CRLs as a :class:`TrustMaterial` (``load_trust`` reads files; ``archive.trust_from_archive`` reads
the operator's database) and return a :class:`DocumentReport` / :class:`ChainReport`.
"""

from signing_api.verification.engine import (
    ENGINE,
    OperatorEvidence,
    package_signatures,
    verify_chain,
    verify_package,
    verify_pdf,
    verify_signature,
)
from signing_api.verification.inputs import (
    MAX_INPUT_BYTES,
    NamedBytes,
    TrustMaterial,
    UnreadableInput,
    load_trust,
)
from signing_api.verification.report import (
    ChainReport,
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

__all__ = [
    "ENGINE",
    "MAX_INPUT_BYTES",
    "ChainReport",
    "DocumentReport",
    "Evidence",
    "Indication",
    "InputFile",
    "NamedBytes",
    "OperatorEvidence",
    "SignatureReport",
    "SigningTime",
    "StepResult",
    "StepStatus",
    "SubIndication",
    "TimeProof",
    "TrustMaterial",
    "UnreadableInput",
    "load_trust",
    "package_signatures",
    "verify_chain",
    "verify_package",
    "verify_pdf",
    "verify_signature",
]

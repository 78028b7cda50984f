"""The operator's own records as verification inputs: the CA hierarchy, every CRL, its evidence.

``trust_from_archive`` reads what the operator's service trusts: every root certificate it ever
had (replaced ones too) as trust anchors, every other CA certificate (issuing CAs, the TSA, the
dispatch signer) as intermediates, and **every CRL ever issued** (``crl_issues`` is append-only),
so the engine can choose the CRLs that cover any signing time. ``tamga crl export-archive``
writes the same set to files, so a commission's offline run sees exactly these inputs.

``operator_evidence`` finds the operator's records that a signature existed at a moment: a
filed report's signature is recorded when it was received (``report_signatures.recorded_at``),
a cloud CMS signature when our HSM made it (``cloud_signatures.signed_at``). The rows are
matched by the CMS bytes, byte for byte.

Only the models are read (they import nothing but ``db``): the engine never touches the HSM.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asn1crypto import cms
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.models import CACertificate
from crl.models import CRLIssue
from filing.models import ReportSignature
from signing_api.cloud.models import CloudSignature
from signing_api.verification.engine import OperatorEvidence
from signing_api.verification.inputs import (
    PARSE_ERRORS,
    NamedBytes,
    TrustMaterial,
    load_trust,
    sha256_hex,
)

__all__ = ["operator_evidence", "trust_from_archive"]

ROOT = "root"


def trust_from_archive(session: Session) -> TrustMaterial:
    """Our roots as anchors, every other CA certificate as intermediates, every CRL issued."""
    rows = session.scalars(select(CACertificate).order_by(CACertificate.id)).all()
    anchors = [
        NamedBytes(f"archive:ca/{row.name}-{row.serial}.crt", row.der)
        for row in rows
        if row.name == ROOT
    ]
    others = [
        NamedBytes(f"archive:ca/{row.name}-{row.serial}.crt", row.der)
        for row in rows
        if row.name != ROOT
    ]
    crls = [
        NamedBytes(f"archive:crl/{issuer}-{number:06d}.crl", der)
        for issuer, number, der in session.execute(
            select(CRLIssue.issuer, CRLIssue.number, CRLIssue.der).order_by(CRLIssue.id)
        )
    ]
    return load_trust(anchors, others, crls)


def _signature_values(der: bytes) -> list[bytes]:
    try:
        signed = cms.ContentInfo.load(der)["content"]
        return [info["signature"].native for info in signed["signer_infos"]]
    except PARSE_ERRORS:
        return []


def operator_evidence(session: Session, signatures: Iterable[bytes]) -> Sequence[OperatorEvidence]:
    """The operator's records of these CMS signatures (DER, as submitted), if it has any."""
    found: list[OperatorEvidence] = []
    for der in signatures:
        values = _signature_values(der)
        if not values:
            continue
        for filed in session.scalars(select(ReportSignature).where(ReportSignature.cms == der)):
            found += [
                OperatorEvidence(
                    signature_sha256=sha256_hex(value),
                    at=filed.recorded_at,
                    description=f"the operator received this signature for report "
                    f"{filed.report_id} ({filed.slot}) at {filed.recorded_at.isoformat()}",
                )
                for value in values
            ]
        for made in session.scalars(select(CloudSignature).where(CloudSignature.signature == der)):
            found += [
                OperatorEvidence(
                    signature_sha256=sha256_hex(value),
                    at=made.signed_at,
                    description=f"the operator's HSM made this cloud signature (evidence record "
                    f"{made.id}) at {made.signed_at.isoformat()}",
                )
                for value in values
            ]
    return found

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

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from asn1crypto import cms
from sqlalchemy import func, select
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


@dataclass(frozen=True)
class _Parsed:
    """One process's parsed archive, and what identifies the state it was read at."""

    database: str
    ca_state: tuple[int, str]  # (count of CA certificates, their largest fingerprint)
    last_crl: tuple[int, str]  # (id, SHA-256) of the newest CRL read
    trust: TrustMaterial


_parsed: dict[str, _Parsed] = {}
_lock = threading.Lock()


def _certificates(session: Session) -> tuple[list[NamedBytes], list[NamedBytes]]:
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
    return anchors, others


def _crls_after(session: Session, last_id: int) -> tuple[list[NamedBytes], tuple[int, str]]:
    crls: list[NamedBytes] = []
    newest = (last_id, "")
    query = (
        select(CRLIssue.id, CRLIssue.issuer, CRLIssue.number, CRLIssue.der, CRLIssue.sha256)
        # Full CRLs only: the engine's CRL choice (_crls_for) works on complete CRLs; a delta
        # CRL's changes are in the full CRL reissued after each change while the list is small
        # (docs/crl.md, "Disputes"). Deltas stay in crl_issues and in export-archive.
        .where(CRLIssue.id > last_id, CRLIssue.kind == "full")
        .order_by(CRLIssue.id)
    )
    for row_id, issuer, number, der, sha256 in session.execute(query):
        crls.append(NamedBytes(f"archive:crl/{issuer}-{number:06d}.crl", der))
        newest = (row_id, sha256)
    return crls, newest


def trust_from_archive(session: Session) -> TrustMaterial:
    """Our roots as anchors, every other CA certificate as intermediates, every CRL issued.

    Parsing a year of CRLs costs about half a second, so each process keeps what it parsed and
    reads only the CRLs issued since (``crl_issues`` is append-only). The cache is keyed by the
    database and checked against the CA certificates and the last CRL it read, so another
    database, a new CA certificate or a changed history is read afresh.
    """
    database = str(session.get_bind().engine.url)
    ca_count, ca_newest = session.execute(
        select(func.count(CACertificate.id), func.max(CACertificate.fingerprint_sha256))
    ).one()
    ca_state = (int(ca_count), ca_newest or "")
    with _lock:
        cached = _parsed.get(database)
    if cached is not None and cached.ca_state == ca_state:
        last_id, last_sha = cached.last_crl
        still = session.scalar(select(CRLIssue.sha256).where(CRLIssue.id == last_id))
        if last_id == 0 or still == last_sha:
            crls, newest = _crls_after(session, last_id)
            if not crls:
                return cached.trust
            more = load_trust(_anchor_stub(cached.trust), (), crls)
            trust = TrustMaterial(
                cached.trust.anchors,
                cached.trust.intermediates,
                cached.trust.crls + more.crls,
                cached.trust.files + tuple(f for f in more.files if f.role == "crl"),
            )
            _remember(_Parsed(database, ca_state, newest, trust))
            return trust
    anchors, others = _certificates(session)
    crls, newest = _crls_after(session, 0)
    trust = load_trust(anchors, others, crls)
    _remember(_Parsed(database, ca_state, newest, trust))
    return trust


def _anchor_stub(trust: TrustMaterial) -> list[NamedBytes]:
    """``load_trust`` wants an anchor: hand it the first one again (its file entry is dropped)."""
    return [NamedBytes("archive:anchor", trust.anchors[0].dump())]


def _remember(parsed: _Parsed) -> None:
    with _lock:
        _parsed[parsed.database] = parsed


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
                    # no report id: the commission's page is public, and whoever holds the
                    # signature learns only that the operator received it, and when
                    description=f"the operator received this signature with a filed report "
                    f"({filed.slot}'s signature) at {filed.recorded_at.isoformat()}",
                )
                for value in values
            ]
        for made in session.scalars(select(CloudSignature).where(CloudSignature.signature == der)):
            found += [
                OperatorEvidence(
                    signature_sha256=sha256_hex(value),
                    at=made.signed_at,
                    description=f"the operator's HSM made this cloud signature at "
                    f"{made.signed_at.isoformat()}",
                )
                for value in values
            ]
    return found

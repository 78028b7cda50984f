"""Revocation status for relying parties: CRLs and OCSP built from ca/ data.

``issue_crl`` signs a full CRL for the root or the issuing CA from the revoked entries it is
given; ``refresh_crl`` reissues when the schedule (:mod:`policies.crl`) says so;
``issue_delta_crl``/``refresh_delta`` sign the issuing CA's delta CRLs; ``status_changed`` is
the hook every status change calls in its transaction (it signs the delta);
``write_crl_files`` publishes one for static serving. ``check_signature`` checks a subscriber's
detached CMS signature the §8 way (filing's intake and the dispute procedure share it).
``export_archive`` writes every CRL ever issued and every CA certificate for a commission.
``respond`` answers an OCSP request from pre-signed responses; ``sign_statuses`` (re)signs the
answers of certificates whose status just changed; ``refresh_responses`` re-signs a batch of
stored answers before their nextUpdate.
"""

from crl.archive import ArchiveDirectoryNotEmpty, ExportedArchive, export_archive
from crl.builder import (
    IssuedCRL,
    RevokedEntry,
    crl_due,
    current_crl,
    delta_due,
    delta_url,
    issue_crl,
    issue_delta_crl,
    newest_base,
    newest_base_number,
    refresh_crl,
    refresh_delta,
    revoked_entries,
    same_second_issues,
)
from crl.changes import StatusPublished, status_changed
from crl.errors import CRLError, ForeignIssuer, UnknownIssuer
from crl.models import CRLIssue, OCSPResponseRow
from crl.ocsp import (
    OCSPAnswer,
    OCSPUnavailable,
    Outcome,
    malformed_response,
    refresh_responses,
    respond,
    sign_statuses,
    unsuccessful_response,
)
from crl.publish import write_crl_files
from crl.signatures import SignatureCheck, Step, check_signature
from crl.status import CertificateStatus, Status, status_at

__all__ = [
    "ArchiveDirectoryNotEmpty",
    "CRLError",
    "CRLIssue",
    "CertificateStatus",
    "ExportedArchive",
    "ForeignIssuer",
    "IssuedCRL",
    "OCSPAnswer",
    "OCSPResponseRow",
    "OCSPUnavailable",
    "Outcome",
    "RevokedEntry",
    "SignatureCheck",
    "Status",
    "StatusPublished",
    "Step",
    "UnknownIssuer",
    "check_signature",
    "crl_due",
    "current_crl",
    "delta_due",
    "delta_url",
    "export_archive",
    "issue_crl",
    "issue_delta_crl",
    "malformed_response",
    "newest_base",
    "newest_base_number",
    "refresh_crl",
    "refresh_delta",
    "refresh_responses",
    "respond",
    "revoked_entries",
    "same_second_issues",
    "sign_statuses",
    "status_at",
    "status_changed",
    "unsuccessful_response",
    "write_crl_files",
]

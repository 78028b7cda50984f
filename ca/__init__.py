"""The certification authority: the registry of subscribers and holders, the CA hierarchy,
issuance, renewal, suspension and revocation, the TSA, and who may sign what.

The package namespace exports the hierarchy; the other services are imported from their
modules (``ca.registry``, ``ca.issuance``, ``ca.revocation``, ``ca.renewal``, ``ca.powers``,
``ca.tsa``, ``ca.cms``). ``ca`` reads billing only through the ``billing`` package's facade.
"""

from ca.errors import CAError, CertificateMismatch, HierarchyNotReady, InvalidCertificate
from ca.hierarchy import (
    HierarchyStatus,
    active_certificate,
    ensure_hierarchy,
    import_issuer_certificate,
    issuer_csr,
    load_certificate,
)
from ca.models import CACertificate, CertificateSerial
from ca.serials import reserve_serial

__all__ = [
    "CACertificate",
    "CAError",
    "CertificateMismatch",
    "CertificateSerial",
    "HierarchyNotReady",
    "HierarchyStatus",
    "InvalidCertificate",
    "active_certificate",
    "ensure_hierarchy",
    "import_issuer_certificate",
    "issuer_csr",
    "load_certificate",
    "reserve_serial",
]

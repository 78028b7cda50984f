"""Registry of subscribers and holders; issue, renew, suspend, revoke certificates.

So far: the CA hierarchy (root or its stand-in → the operator's issuing CA) and the serial
registry. Subscriber certificates come with issue #4.
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

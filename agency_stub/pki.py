"""The stub agency's own PKI: a self-signed root (EC P-256) and a receipt-signing certificate.

Created once under the home directory (keys mode 0600, written atomically, under a lock so two
commands started at once do not make two CAs), then loaded. ``agency.json`` is written last and
marks a complete home.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

__all__ = ["AGENCY_NAMES", "AgencyKeys", "HomeError", "load_or_create", "write_atomic"]

# code -> (organisation name, the short name used in certificate CNs, registration prefix)
AGENCY_NAMES: dict[str, tuple[str, str, str]] = {
    "tax": ("State Tax Service of the Kyrgyz Republic", "State Tax Service", "TAX"),
    "social-fund": ("Social Fund of the Kyrgyz Republic", "Social Fund", "SF"),
    "statistics": (
        "National Statistical Committee of the Kyrgyz Republic",
        "National Statistical Committee",
        "STAT",
    ),
}

AGENCY_FILE = "agency.json"
ROOT_CERT = "root-ca.pem"
ROOT_KEY = "root-ca-key.pem"
RECEIPT_CERT = "receipt.pem"
RECEIPT_KEY = "receipt-key.pem"


class HomeError(Exception):
    """The home directory belongs to another agency or is damaged."""


def names_of(agency: str) -> tuple[str, str, str]:
    """(organisation, short name, registration prefix) of an agency code; unknown codes get
    names made from the code."""
    if agency in AGENCY_NAMES:
        return AGENCY_NAMES[agency]
    short = agency.replace("-", " ").title()
    return f"{short} (agency stub)", short, agency.upper()


@dataclass(frozen=True)
class AgencyKeys:
    """The agency's root certificate and its receipt-signing certificate and key."""

    agency: str
    root: x509.Certificate
    receipt_certificate: x509.Certificate
    receipt_key: ec.EllipticCurvePrivateKey

    def sign(self, content: bytes) -> bytes:
        """An encapsulated (attached) CMS SignedData over ``content``, DER, signed with the
        receipt key (SHA-256, signed attributes, the receipt certificate included)."""
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(content)
            .add_signer(self.receipt_certificate, self.receipt_key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )

    def receipt_pem(self) -> str:
        return self.receipt_certificate.public_bytes(serialization.Encoding.PEM).decode()

    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, with ``mode``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    fd = os.open(home / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def load_or_create(home: Path, agency: str = "tax") -> AgencyKeys:
    """The agency's keys from ``home``, created there on first use."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(home):
        marker = home / AGENCY_FILE
        if not marker.exists():
            _create(home, agency)
        recorded = json.loads(marker.read_text())["agency"]
        if recorded != agency:
            raise HomeError(f"{home} holds the keys of agency {recorded!r}, not {agency!r}")
        return _load(home, agency)


def load_existing(home: Path) -> AgencyKeys:
    """The keys of whatever agency ``home`` holds (created for ``tax`` if empty)."""
    marker = home / AGENCY_FILE
    agency = json.loads(marker.read_text())["agency"] if marker.exists() else "tax"
    return load_or_create(home, agency)


def _load(home: Path, agency: str) -> AgencyKeys:
    root = x509.load_pem_x509_certificate((home / ROOT_CERT).read_bytes())
    certificate = x509.load_pem_x509_certificate((home / RECEIPT_CERT).read_bytes())
    key = serialization.load_pem_private_key((home / RECEIPT_KEY).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise HomeError(f"{home / RECEIPT_KEY} is not an EC key")
    return AgencyKeys(agency, root, certificate, key)


def _key_usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=signer,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def _create(home: Path, agency: str) -> None:
    organisation, short, _ = names_of(agency)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(days=1)  # a little clock skew on the relying side is harmless

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Agency gateway stub"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = name(f"{short} Root CA")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=20 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    receipt_key = ec.generate_private_key(ec.SECP256R1())
    receipt = (
        x509.CertificateBuilder()
        .subject_name(name(f"{short} receipts"))
        .issuer_name(root_name)
        .public_key(receipt_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=10 * 365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signer=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(receipt_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    write_atomic(home / ROOT_KEY, key_pem(root_key), 0o600)
    write_atomic(home / ROOT_CERT, root.public_bytes(serialization.Encoding.PEM))
    write_atomic(home / RECEIPT_KEY, key_pem(receipt_key), 0o600)
    write_atomic(home / RECEIPT_CERT, receipt.public_bytes(serialization.Encoding.PEM))
    record = {"agency": agency, "created_at": now.isoformat().replace("+00:00", "Z")}
    write_atomic(home / AGENCY_FILE, json.dumps(record, indent=2).encode() + b"\n")

"""The inputs of a verification: trust anchors, intermediate certificates and CRLs, from bytes.

Everything is read here once, in PEM or DER, and named (:class:`~.report.InputFile`), so the
report can list every input the decision used with its SHA-256. Unreadable input raises
:class:`UnreadableInput` naming the file: the CLI turns it into exit status 2, the API into a 422.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl as asn1_crl
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from signing_api.verification.report import InputFile

__all__ = [
    "MAX_INPUT_BYTES",
    "NamedBytes",
    "TrustMaterial",
    "UnreadableInput",
    "describe_name",
    "load_trust",
    "read_certificates",
    "read_crls",
    "sha256_hex",
]

# One input file (a document, a signature, a PDF, a package, a CRL) may not be larger than this.
MAX_INPUT_BYTES = 64 * 1024 * 1024

# asn1crypto parses lazily: malformed input surfaces wherever a field is first read.
PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


class UnreadableInput(ValueError):
    """An input file is not what its role needs (not a certificate, not a CRL, too large …)."""


@dataclass(frozen=True)
class NamedBytes:
    """An input as given: the name it was given under (a path, an upload's file name) and bytes."""

    name: str
    data: bytes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe_name(name: asn1_x509.Name) -> str:
    """A distinguished name as RFC 4514-like text, most specific first (CN=…, O=…, C=…)."""
    try:
        return str(name.human_friendly)
    except PARSE_ERRORS:
        return "(unreadable name)"


def _blocks(item: NamedBytes, kinds: tuple[str, ...]) -> list[bytes]:
    if len(item.data) > MAX_INPUT_BYTES:
        raise UnreadableInput(f"{item.name}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    if not item.data:
        raise UnreadableInput(f"{item.name}: empty file")
    if pem.detect(item.data):
        found = []
        try:
            for kind, _headers, der in pem.unarmor(item.data, multiple=True):
                if kind not in kinds:
                    raise UnreadableInput(
                        f"{item.name}: a PEM block of type {kind!r}, not {kinds[0]!r}"
                    )
                found.append(der)
        except PARSE_ERRORS as exc:
            raise UnreadableInput(f"{item.name}: unreadable PEM ({exc})") from exc
        if not found:
            raise UnreadableInput(f"{item.name}: no PEM block")
        return found
    return [item.data]


def read_certificates(
    item: NamedBytes, role: str
) -> tuple[list[asn1_x509.Certificate], list[InputFile]]:
    """Every certificate of a PEM (one or many) or DER file, each named as an input."""
    certificates = []
    files = []
    blocks = _blocks(item, ("CERTIFICATE", "TRUSTED CERTIFICATE"))
    for index, der in enumerate(blocks, 1):
        try:
            cert = asn1_x509.Certificate.load(der, strict=True)
            subject = describe_name(cert.subject)
            serial = cert.serial_number
            _ = cert.public_key.algorithm
        except PARSE_ERRORS as exc:
            raise UnreadableInput(f"{item.name}: not an X.509 certificate ({exc})") from exc
        certificates.append(cert)
        name = item.name if len(blocks) == 1 else f"{item.name}#{index}"
        files.append(
            InputFile(
                role=role,
                name=name,
                sha256=sha256_hex(der),
                size=len(der),
                detail=f"{subject}, serial {serial:x}",
            )
        )
    return certificates, files


def read_crls(item: NamedBytes) -> tuple[list[asn1_crl.CertificateList], list[InputFile]]:
    """Every CRL of a PEM (one or many, "X509 CRL") or DER file, each named as an input."""
    lists = []
    files = []
    blocks = _blocks(item, ("X509 CRL",))
    for index, der in enumerate(blocks, 1):
        try:
            crl = asn1_crl.CertificateList.load(der, strict=True)
            tbs = crl["tbs_cert_list"]
            issuer = describe_name(tbs["issuer"])
            number = crl.crl_number_value
            this_update = tbs["this_update"].native
            next_update = tbs["next_update"].native
            delta = crl.delta_crl_indicator_value
        except PARSE_ERRORS as exc:
            raise UnreadableInput(f"{item.name}: not a CRL ({exc})") from exc
        lists.append(crl)
        name = item.name if len(blocks) == 1 else f"{item.name}#{index}"
        kind = "delta CRL" if delta is not None else "CRL"
        files.append(
            InputFile(
                role="crl",
                name=name,
                sha256=sha256_hex(der),
                size=len(der),
                detail=f"{kind} of {issuer}, number {number.native if number else '?'}, "
                f"{_iso(this_update)} to {_iso(next_update)}",
            )
        )
    return lists, files


@dataclass(frozen=True)
class TrustMaterial:
    """What a verification may rely on: anchors, other certificates and CRLs (all parsed)."""

    anchors: tuple[asn1_x509.Certificate, ...]
    intermediates: tuple[asn1_x509.Certificate, ...]
    crls: tuple[asn1_crl.CertificateList, ...]
    files: tuple[InputFile, ...]

    def with_certificates(
        self, certificates: Iterable[asn1_x509.Certificate], files: Iterable[InputFile] = ()
    ) -> TrustMaterial:
        """The same trust, with more (untrusted) certificates to build paths with."""
        known = {c.dump() for c in self.intermediates}
        extra = tuple(c for c in certificates if c.dump() not in known)
        return TrustMaterial(
            anchors=self.anchors,
            intermediates=self.intermediates + extra,
            crls=self.crls,
            files=self.files + tuple(files),
        )


def load_trust(
    anchors: Iterable[NamedBytes],
    intermediates: Iterable[NamedBytes] = (),
    crls: Iterable[NamedBytes] = (),
) -> TrustMaterial:
    """Read trust anchors, intermediates and CRLs; :class:`UnreadableInput` names a bad file."""
    anchor_certs: list[asn1_x509.Certificate] = []
    other_certs: list[asn1_x509.Certificate] = []
    crl_list: list[asn1_crl.CertificateList] = []
    files: list[InputFile] = []
    for item in anchors:
        certs, named = read_certificates(item, "trust-anchor")
        anchor_certs += certs
        files += named
    for item in intermediates:
        certs, named = read_certificates(item, "intermediate")
        other_certs += certs
        files += named
    for item in crls:
        lists, named = read_crls(item)
        crl_list += lists
        files += named
    if not anchor_certs:
        raise UnreadableInput("no trust anchor given")
    return TrustMaterial(tuple(anchor_certs), tuple(other_certs), tuple(crl_list), tuple(files))


def _iso(moment: datetime | None) -> str:
    return "?" if moment is None else moment.isoformat().replace("+00:00", "Z")

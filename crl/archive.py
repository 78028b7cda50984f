"""The CRL archive: every CRL ever issued and every CA certificate, as files a commission keeps.

A dispute may come years after the signature (DOMAIN.md §8.2.7: the commission checks the CRL in
force when the document was signed), so ``export_archive`` writes the whole history from the
database, where nothing of it is ever deleted (``crl_issues`` and ``ca_certificates`` are
append-only or only deactivated):

- every CRL of ``crl_issues`` as DER, named
  ``<issuer>-<number, 6 digits>-<thisUpdate>-<nextUpdate>.crl`` (``issuing-000042-20261203T101500Z-
  20261204T101500Z.crl``), so a directory listing sorts them by issuer and number; a delta CRL
  (RFC 5280 §5.2.4) is named ``<issuer>-delta-<number>-...`` and its manifest entry has
  ``"crl_kind": "delta"`` and the ``base_number`` of the full CRL it is relative to (a full
  CRL's has ``"crl_kind": "full"`` and ``"base_number": null``);
- every CA certificate of ``ca_certificates`` (the roots, the issuing CAs including replaced
  ones, the TSA's and the dispatch key's) as PEM, named
  ``<name>-<notBefore>-<serial>.crt``;
- ``manifest.json``: each file with its SHA-256, size and what it is (issuer, number, dates,
  entries; name, subject, serial, validity, whether it is in use);
- ``MANIFEST.txt``: ``<sha256>  <file>`` lines for every file above and ``manifest.json``, the
  format of ``sha256sum``, so ``sha256sum -c MANIFEST.txt`` checks the copy with no Tamga at all.

The directory is created if missing. An existing directory that holds anything is refused before
anything is written (:class:`ArchiveDirectoryNotEmpty`) unless ``force``: then the archive's files
are written over same-named ones and other files are left alone (the manifests list only this
export's files).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca import CACertificate
from crl.errors import CRLError
from crl.models import CRLIssue

__all__ = [
    "ArchiveDirectoryNotEmpty",
    "ArchiveFile",
    "ExportedArchive",
    "certificate_file_name",
    "crl_file_name",
    "export_archive",
]

MANIFEST_TEXT = "MANIFEST.txt"
MANIFEST_JSON = "manifest.json"


class ArchiveDirectoryNotEmpty(CRLError):
    """The archive's directory already holds files (``--force`` writes into it anyway)."""


@dataclass(frozen=True)
class ArchiveFile:
    """One file of the archive: its name, digest, size and what it is."""

    name: str
    kind: str  # "crl" | "certificate"
    sha256: str
    size: int
    about: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "kind": self.kind,
            "sha256": self.sha256,
            "size": self.size,
            **self.about,
        }


@dataclass(frozen=True)
class ExportedArchive:
    directory: Path
    files: tuple[ArchiveFile, ...]

    @property
    def crls(self) -> int:
        return sum(1 for f in self.files if f.kind == "crl")

    @property
    def certificates(self) -> int:
        return sum(1 for f in self.files if f.kind == "certificate")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def crl_file_name(row: CRLIssue) -> str:
    """``issuing-000042-20261203T101500Z-20261204T101500Z.crl`` for a full CRL,
    ``issuing-delta-000043-...crl`` for a delta CRL."""
    name = f"{row.issuer}-delta" if row.kind == "delta" else row.issuer
    return f"{name}-{row.number:06d}-{_stamp(row.this_update)}-{_stamp(row.next_update)}.crl"


def certificate_file_name(row: CACertificate) -> str:
    """``issuing-20261203T101500Z-<serial hex>.crt``: one name per certificate, in issue order."""
    return f"{row.name}-{_stamp(row.not_before)}-{row.serial}.crt"


def _check_directory(directory: Path, *, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise ArchiveDirectoryNotEmpty(f"{directory} exists and is not a directory")
    if directory.is_dir() and not force and any(directory.iterdir()):
        raise ArchiveDirectoryNotEmpty(
            f"{directory} is not empty: choose a new directory, or --force to write into it"
        )


def _write(directory: Path, name: str, data: bytes) -> tuple[str, int]:
    """Write one file (through a temporary name, then renamed); its SHA-256 and size."""
    target = directory / name
    partial = directory / f".{name}.partial"
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    partial.chmod(0o644)  # public material: CRLs and certificates
    partial.replace(target)
    return hashlib.sha256(data).hexdigest(), len(data)


def _crl_files(session: Session) -> list[tuple[str, bytes, dict[str, Any]]]:
    rows = session.scalars(select(CRLIssue).order_by(CRLIssue.issuer, CRLIssue.number))
    return [
        (
            crl_file_name(row),
            row.der,
            {
                "issuer": row.issuer,
                "number": row.number,
                "crl_kind": row.kind,  # "full" or "delta" ("kind" says crl or certificate)
                "base_number": row.base_number,
                "this_update": _iso(row.this_update),
                "next_update": _iso(row.next_update),
                "entries": row.entries,
            },
        )
        for row in rows
    ]


def _certificate_files(session: Session) -> list[tuple[str, bytes, dict[str, Any]]]:
    rows = session.scalars(select(CACertificate).order_by(CACertificate.name, CACertificate.id))
    found = []
    for row in rows:
        pem = x509.load_der_x509_certificate(row.der).public_bytes(serialization.Encoding.PEM)
        found.append(
            (
                certificate_file_name(row),
                pem,
                {
                    "name": row.name,
                    "subject": row.subject,
                    "serial": row.serial,
                    "not_before": _iso(row.not_before),
                    "not_after": _iso(row.not_after),
                    "in_use": row.active,
                    "der_sha256": row.fingerprint_sha256,
                },
            )
        )
    return found


def export_archive(
    session: Session, directory: Path, *, now: datetime, force: bool = False
) -> ExportedArchive:
    """Write every CRL ever issued and every CA certificate, with both manifests, to
    ``directory``; refuse a non-empty directory (nothing written) unless ``force``."""
    _check_directory(directory, force=force)
    contents = _crl_files(session) + _certificate_files(session)  # read all before writing
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data, about in contents:
        sha256, size = _write(directory, name, data)
        kind = "crl" if name.endswith(".crl") else "certificate"
        written.append(ArchiveFile(name, kind, sha256, size, about))
    manifest = {
        "type": "tamga-crl-archive",
        "version": 1,
        "exported_at": _iso(now),
        "crls": sum(1 for f in written if f.kind == "crl"),
        "certificates": sum(1 for f in written if f.kind == "certificate"),
        "files": [f.to_json() for f in written],
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    manifest_sha256, _ = _write(directory, MANIFEST_JSON, text.encode())
    lines = [f"{f.sha256}  {f.name}" for f in written] + [f"{manifest_sha256}  {MANIFEST_JSON}"]
    _write(directory, MANIFEST_TEXT, ("\n".join(lines) + "\n").encode())
    return ExportedArchive(directory, tuple(written))

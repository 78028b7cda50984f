"""CRL files for a web server or CDN: ``<directory>/<issuer>.crl``, replaced atomically.

A reader (nginx, a CDN pulling the origin) sees either the old file or the new one, never a
partial write: the DER goes to a temporary file in the same directory, is flushed to disk and
renamed over the old name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from crl.errors import UnknownIssuer
from policies.crl import CRL_ISSUERS

__all__ = ["write_crl_files"]


def write_crl_files(der: bytes, issuer: str, directory: Path) -> Path:
    """Write ``directory/<issuer>.crl`` (mode 0644) atomically; return its path."""
    if issuer not in CRL_ISSUERS:
        raise UnknownIssuer(f"no CRL is published for {issuer!r}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{issuer}.crl"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{issuer}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(der)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o644)  # public data: the web server's user must read it
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target

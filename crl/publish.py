"""CRL files for a web server or CDN: ``<directory>/<issuer>.crl`` (the full CRL) and
``<directory>/<issuer>-delta.crl`` (the delta CRL), replaced atomically.

A reader (nginx, a CDN pulling the origin) sees either the old file or the new one, never a
partial write: the DER goes to a temporary file in the same directory, is flushed to disk and
renamed over the old name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from crl.errors import UnknownIssuer
from policies.crl import CRL_ISSUERS, DELTA_ISSUERS, delta_name

__all__ = ["write_crl_files"]


def write_crl_files(der: bytes, issuer: str, directory: Path, *, delta: bool = False) -> Path:
    """Write ``directory/<issuer>.crl`` (``delta``: ``<issuer>-delta.crl``), mode 0644,
    atomically; return its path."""
    if issuer not in (DELTA_ISSUERS if delta else CRL_ISSUERS):
        raise UnknownIssuer(f"no {'delta ' if delta else ''}CRL is published for {issuer!r}")
    name = delta_name(issuer) if delta else issuer
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.crl"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
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

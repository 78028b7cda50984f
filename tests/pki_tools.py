"""Checks of our output with tools nobody here wrote: openssl and pkilint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

_VENV_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def openssl_verify(ca_file: Path, cert_file: Path, *extra: str) -> str:
    """``openssl verify -x509_strict``; raises AssertionError with openssl's words on failure."""
    result = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", str(ca_file), *extra, str(cert_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"openssl verify failed: {result.stdout}{result.stderr}"
    return result.stdout


def pkilint(cert_file: Path, linter: str = "lint_pkix_cert") -> str:
    """pkilint's RFC 5280 linter (or another of its linters taking ``lint -s``, such as
    ``lint_ocsp_response``); fails on any ERROR or FATAL finding."""
    tool = shutil.which(linter) or str(_VENV_BIN / linter)
    result = subprocess.run(
        [tool, "lint", "-s", "ERROR", str(cert_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), (
        f"pkilint findings for {cert_file.name}:\n{result.stdout}{result.stderr}"
    )
    return result.stdout

"""The ``tamga ca`` group: CA certificates and the production issuing-CA path.

The registry, certificate, revocation and renewal commands add themselves to this group from
their own modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization

from ca import active_certificate, import_issuer_certificate, issuer_csr
from signing_api.cli.root import cli, now, open_runtime, operator

__all__ = ["ca"]


@cli.group()
def ca() -> None:
    """The CA hierarchy: export certificates; the production issuing-CA path."""


@ca.command("export")
@click.argument("name", type=click.Choice(["root", "issuing", "tsa", "ocsp"]))
@click.option("--der", "der", is_flag=True, help="DER instead of PEM (binary on stdout)")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the certificate to this file instead of stdout",
)
def ca_export(name: str, der: bool, out: Path | None) -> None:
    """Print the root or issuing CA certificate, the time-stamping authority's or the OCSP
    responder's."""
    runtime = open_runtime()
    with runtime.transaction() as session:
        cert = active_certificate(session, name)
    data = cert.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)
    if out is not None:
        out.write_bytes(data)
        click.echo(f"wrote the {name} certificate (serial {cert.serial_number:x}) to {out}")
    elif der:
        sys.stdout.buffer.write(data)
    else:
        click.echo(data.decode(), nl=False)


@ca.command("issuer-csr")
def ca_issuer_csr() -> None:
    """Print a PEM CSR for the issuing CA key, for the national root to sign."""
    runtime = open_runtime()
    csr = issuer_csr(runtime.ca_token)
    click.echo(csr.public_bytes(serialization.Encoding.PEM).decode(), nl=False)


@ca.command("issuer-import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ca_issuer_import(file: Path) -> None:
    """Install the issuing CA certificate signed by the root (PEM or DER)."""
    from ca.audit_log import ensure_audit_signer
    from ca.dispatch import ensure_dispatch
    from ca.ocsp_responder import ensure_ocsp_responder
    from ca.tsa import ensure_tsa
    from signing_api.bootstrap import checkpoint_when_due, publish_ca_files

    runtime = open_runtime()
    with runtime.transaction() as session:
        cert = import_issuer_certificate(
            session,
            runtime.ca_token,
            file.read_bytes(),
            now=now(),
            actor=f"cli:{operator()}",
        )
        # The TSA's, the dispatch and the OCSP responder certificates come from the issuing CA:
        # make them now rather than at the next init.
        for ensure in (ensure_tsa, ensure_dispatch, ensure_ocsp_responder, ensure_audit_signer):
            ensure(
                session,
                runtime.ca_token,
                public_url=runtime.config.public_url,
                now=now(),
                actor=f"cli:{operator()}",
            )
        publish_ca_files(session, runtime.config.public_dir)
    checkpoint_when_due(runtime, now())  # the audit log's first checkpoint, now it can sign
    click.echo(f"installed issuing CA certificate serial {cert.serial_number:x}")

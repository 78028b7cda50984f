"""``tamga crl ...``: force a new CRL and publish it, or show the current one.

``publish`` signs a new full CRL for each issuer asked (even when the current one is fresh),
writes it to ``$TAMGA_HOME/publish/crl/<issuer>.crl`` and prints its number and dates; the
issuing CA's delta CRL relative to it follows (``issuing-delta.crl``). ``publish --delta``
signs only a new delta CRL (cron: hourly). ``show issuing --delta`` shows the current delta.
With ``--issuer all`` an external national root, whose key is not ours, is skipped with a note.
``export-archive DIR`` writes every CRL ever issued and every CA certificate, with manifests
(``crl.archive``), for a dispute commission or an archive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography import x509

from policies.crl import CRL_ISSUERS, DELTA_ISSUERS
from signing_api.cli.root import cli

__all__ = ["crl_group"]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@cli.group("crl")
def crl_group() -> None:
    """Certificate revocation lists of the root and the issuing CA."""


@crl_group.command("publish")
@click.option(
    "--issuer",
    type=click.Choice([*CRL_ISSUERS, "all"]),
    default="all",
    show_default=True,
    help="which CA's CRL to issue",
)
@click.option(
    "--delta", is_flag=True, help="sign only a new delta CRL (the issuing CA's; cron: hourly)"
)
def crl_publish(issuer: str, delta: bool) -> None:
    """Sign a new CRL now and write it for static serving."""
    from crl import ForeignIssuer, IssuedCRL, refresh_crl, refresh_delta, write_crl_files
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.cli.root import operator as _operator

    runtime = _runtime()
    if delta and issuer not in (*DELTA_ISSUERS, "all"):
        raise click.UsageError(f"only {', '.join(DELTA_ISSUERS)} publishes delta CRLs")
    names = CRL_ISSUERS if issuer == "all" else (issuer,)
    for name in names:
        actor, now = f"cli:{_operator()}", datetime.now(UTC)
        issued: list[IssuedCRL] = []
        try:
            with runtime.transaction() as session:
                if not delta:
                    full, _ = refresh_crl(session, issuer=name, token=runtime.ca_token, now=now,
                                          actor=actor, force=True,
                                          public_url=runtime.config.public_url)  # fmt: skip
                    issued.append(full)
                if name in DELTA_ISSUERS:
                    fresh, _ = refresh_delta(session, issuer=name, token=runtime.ca_token,
                                             now=now, actor=actor, force=True,
                                             public_url=runtime.config.public_url)  # fmt: skip
                    issued.append(fresh)
        except ForeignIssuer as ex:
            if issuer != "all":
                raise
            click.echo(f"{name}: skipped ({ex})")
            continue
        for crl in issued:
            path = write_crl_files(
                crl.der, name, runtime.config.crl_publish_dir, delta=crl.is_delta
            )
            label = f"delta CRL number {crl.number} (base {crl.base_number})"
            what = label if crl.is_delta else f"CRL number {crl.number}"
            click.echo(
                f"{name}: {what}, thisUpdate {_stamp(crl.this_update)}, "
                f"nextUpdate {_stamp(crl.next_update)}, {crl.entries} entries, {path}"
            )


@crl_group.command("show")
@click.argument("issuer", type=click.Choice(CRL_ISSUERS))
@click.option("--delta", is_flag=True, help="the current delta CRL instead of the full one")
def crl_show(issuer: str, delta: bool) -> None:
    """Print the current CRL: number, dates and revoked certificates."""
    from crl import current_crl
    from signing_api.cli.root import open_runtime as _runtime

    if delta and issuer not in DELTA_ISSUERS:
        raise click.UsageError(f"only {', '.join(DELTA_ISSUERS)} publishes delta CRLs")
    with _runtime().transaction() as session:
        issued = current_crl(session, issuer, datetime.now(UTC), delta=delta)
    if issued is None:
        option = " --delta" if delta else ""
        raise click.ClickException(
            f"no {issuer} {'delta ' if delta else ''}CRL has been issued yet "
            f"(`tamga crl publish --issuer {issuer}{option}`)"
        )
    click.echo(f"issuer:     {issuer}")
    click.echo(f"kind:       {issued.kind}")
    click.echo(f"number:     {issued.number}")
    if issued.base_number is not None:
        click.echo(f"base:       {issued.base_number}")
    click.echo(f"thisUpdate: {_stamp(issued.this_update)}")
    click.echo(f"nextUpdate: {_stamp(issued.next_update)}")
    click.echo(f"sha256:     {issued.sha256}")
    click.echo(f"entries:    {issued.entries}")
    for entry in issued.load():
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except x509.ExtensionNotFound:
            reason = "unspecified"  # RFC 5280 §5.3.1: written as no reasonCode at all
        click.echo(f"  {entry.serial_number:x} {_stamp(entry.revocation_date_utc)} {reason}")


@crl_group.command("export-archive")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="write into DIRECTORY even if it is not empty")
def crl_export_archive(directory: Path, force: bool) -> None:
    """Write every CRL ever issued (DER) and every CA certificate (PEM), with MANIFEST.txt
    (sha256sum -c) and manifest.json, to DIRECTORY (created if missing; refused if not empty)."""
    from crl import export_archive
    from signing_api.cli.root import now as _now
    from signing_api.cli.root import transaction as _transaction

    with _transaction() as session:
        exported = export_archive(session, directory, now=_now(), force=force)
    click.echo(
        f"{exported.crls} CRLs and {exported.certificates} CA certificates written to "
        f"{directory} (MANIFEST.txt, manifest.json)"
    )

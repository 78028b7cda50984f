"""``tamga verify``: the §8 procedure on a commission's own machine, from files alone.

No database, no server, no ``var/``: the trust anchors, intermediates and CRLs are files (PEM or
DER; ``--crl-dir`` reads every ``*.crl``/``*.pem`` of a directory, such as one written by
``tamga crl export-archive``). The same options mean the same in both commands.

Exit status: 0 exactly when the verdict is TOTAL-PASSED (``chain``: the path is valid at
``--at``), 1 when it is not, 2 for usage errors or unreadable input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from signing_api.cli.root import cli
from signing_api.verification import (
    MAX_INPUT_BYTES,
    ChainReport,
    DocumentReport,
    NamedBytes,
    TrustMaterial,
    UnreadableInput,
    load_trust,
    verify_chain,
    verify_package,
    verify_pdf,
    verify_signature,
)

__all__ = ["verify"]

_CRL_SUFFIXES = (".crl", ".pem", ".der")


class Unreadable(click.ClickException):
    """Input that cannot be used: exit status 2, one line on stderr."""

    exit_code = 2


def _read(path: Path) -> NamedBytes:
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise Unreadable(f"{path}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
        return NamedBytes(str(path), path.read_bytes())
    except OSError as ex:
        raise Unreadable(f"{path}: {ex.strerror or ex}") from ex


def _trust(
    trust: tuple[Path, ...],
    intermediates: tuple[Path, ...],
    crls: tuple[Path, ...],
    crl_dir: Path | None,
) -> TrustMaterial:
    crl_files = list(crls)
    if crl_dir is not None:
        if not crl_dir.is_dir():
            raise Unreadable(f"{crl_dir}: not a directory")
        crl_files += sorted(
            p for p in crl_dir.iterdir() if p.is_file() and p.suffix.lower() in _CRL_SUFFIXES
        )
    try:
        return load_trust(
            [_read(p) for p in trust],
            [_read(p) for p in intermediates],
            [_read(p) for p in crl_files],
        )
    except UnreadableInput as ex:
        raise Unreadable(str(ex)) from ex


def _common(function: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option(
            "--trust",
            "trust",
            multiple=True,
            required=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="a trust anchor (root certificate), PEM or DER; repeatable",
        ),
        click.option(
            "--intermediate",
            "intermediates",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="a CA certificate to build the path with (not trusted); repeatable",
        ),
        click.option(
            "--crl",
            "crls",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="a CRL, PEM or DER; repeatable",
        ),
        click.option(
            "--crl-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="every *.crl / *.pem / *.der file of this directory (an exported CRL archive)",
        ),
        click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON"),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.group()
def verify() -> None:
    """Verify signatures and certificate paths offline (§8): files in, a verdict out."""


def _print_document(report: DocumentReport) -> None:
    click.echo(f"verdict: {report.indication.value}" + _sub(report.sub_indication))
    click.echo(report.conclusion)
    for problem in report.problems:
        click.echo(f"  ! {problem}")
    for signature in report.signatures:
        click.echo(
            f"- {signature.label}: {signature.indication.value}{_sub(signature.sub_indication)}"
        )
        if signature.signer_subject:
            click.echo(f"  signer: {signature.signer_subject}")
        if signature.signing_time:
            time = signature.signing_time
            click.echo(f"  signed: {_iso(time.at)} ({time.proof.value}: {time.meaning})")
        if signature.revocation:
            click.echo(f"  revocation: {signature.revocation}")
        for step in signature.steps:
            click.echo(f"  {step.clause} {step.status.value:<13} {step.detail}")
        for note in signature.notes:
            click.echo(f"  note: {note}")


def _sub(sub: object) -> str:
    return f" / {sub.value}" if sub is not None and hasattr(sub, "value") else ""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@verify.command("signature")
@click.option(
    "--document", type=click.Path(path_type=Path, dir_okay=False), help="the signed document"
)
@click.option(
    "--signature",
    type=click.Path(path_type=Path, dir_okay=False),
    help="its CMS/CAdES signature (.p7s), detached or attached",
)
@click.option("--pdf", type=click.Path(path_type=Path, dir_okay=False), help="a signed PDF (PAdES)")
@click.option(
    "--package",
    type=click.Path(path_type=Path, dir_okay=False),
    help="a filed report's evidence package (.zip)",
)
@_common
def verify_signature_command(
    document: Path | None,
    signature: Path | None,
    pdf: Path | None,
    package: Path | None,
    trust: tuple[Path, ...],
    intermediates: tuple[Path, ...],
    crls: tuple[Path, ...],
    crl_dir: Path | None,
    as_json: bool,
) -> None:
    """The seven steps of §8.2 for every signature; exit 0 exactly when TOTAL-PASSED."""
    forms = [
        name
        for name, given in (("--signature", signature), ("--pdf", pdf), ("--package", package))
        if given
    ]
    if len(forms) != 1:
        raise click.UsageError(
            "give exactly one of --signature (with --document), --pdf, --package"
        )
    if document is not None and signature is None:
        raise click.UsageError("--document goes with --signature")
    material = _trust(trust, intermediates, crls, crl_dir)
    now = datetime.now(UTC)
    try:
        if signature is not None:
            report = verify_signature(
                signature=_read(signature),
                document=_read(document) if document is not None else None,
                trust=material,
                now=now,
            )
        elif pdf is not None:
            report = verify_pdf(_read(pdf), material, now=now)
        else:
            assert package is not None  # noqa: S101 - one of the three, checked above
            report = verify_package(_read(package), material, now=now)
    except UnreadableInput as ex:
        raise Unreadable(str(ex)) from ex
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_document(report)
    raise SystemExit(0 if report.passed else 1)


def _print_chain(report: ChainReport) -> None:
    click.echo(
        f"path: {'VALID' if report.valid else 'NOT VALID'} at {_iso(report.at)}"
        + _sub(report.sub_indication)
    )
    click.echo(f"certificate: {report.subject}, serial {report.serial:x}")
    for index, subject in enumerate(report.chain):
        click.echo(f"  {index}: {subject}")
    click.echo(report.detail)
    if report.revocation:
        click.echo(f"revocation: {report.revocation}")


@verify.command("chain")
@click.argument("certificate", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--at",
    "moment",
    help="the moment to judge the path at (ISO-8601, e.g. 2026-11-30T12:00:00Z); default now",
)
@_common
def verify_chain_command(
    certificate: Path,
    moment: str | None,
    trust: tuple[Path, ...],
    intermediates: tuple[Path, ...],
    crls: tuple[Path, ...],
    crl_dir: Path | None,
    as_json: bool,
) -> None:
    """RFC 5280 path validation of one certificate at a moment; exit 0 exactly when valid."""
    now = datetime.now(UTC)
    at = now
    if moment is not None:
        try:
            at = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError as ex:
            raise click.BadParameter(f"not an ISO-8601 moment: {moment}", param_hint="--at") from ex
        if at.tzinfo is None:
            raise click.BadParameter("give a time zone (Z or +06:00)", param_hint="--at")
    material = _trust(trust, intermediates, crls, crl_dir)
    try:
        report = verify_chain(_read(certificate), material, at=at, now=now)
    except UnreadableInput as ex:
        raise Unreadable(str(ex)) from ex
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_chain(report)
    raise SystemExit(0 if report.valid else 1)

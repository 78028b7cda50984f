"""``tamga ca issue|show|list|activation-code``: subscriber certificates from the officer's console.

The commands call the same services as ``/api/v1/certificates`` and ``--json`` prints the
API's JSON. A refusal (unpaid, bad CSR, unknown holder...) is one line on stderr and exit
status 1; a 402-like refusal names the payment account and the amount due.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from signing_api.cli import root
from signing_api.cli.ca import ca

__all__: list[str] = []


def _line(view: dict[str, Any]) -> str:
    return (
        f"{view['serial']}  {view['state']:<13} {view['role']:<18} {view['storage']:<7} "
        f"{view['inn']}  {view['holder']}  until {view['not_after'][:10]} "
        f"({view['days_left']} days)"
    )


@ca.command("issue")
@click.option("--holder", "holder_id", type=int, required=True, help="the holder's id")
@click.option(
    "--role",
    required=True,
    type=click.Choice(
        [
            "head",
            "accountant",
            "head_as_accountant",
            "complex_5",
            "complex_10",
            "complex_unlimited",
        ]
    ),
)
@click.option("--storage", required=True, type=click.Choice(["cloud", "rutoken"]))
@click.option("--csr", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="RuToken: the CSR made on the token (PEM or DER)")  # fmt: skip
@click.option("--key-spec", type=click.Choice(["ec-p256", "rsa-2048"]), help="cloud key")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="write the certificate (PEM) here")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON")
def issue(
    holder_id: int,
    role: str,
    storage: str,
    csr: Path | None,
    key_spec: str | None,
    out: Path | None,
    as_json: bool,
) -> None:
    """Issue a certificate for a holder (the price must be paid)."""
    from ca.issuance import issue_certificate
    from ca.models import Certificate
    from ca.requests import IssueRequest
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.web.ca.certificates import certificate_json, chain_pem

    rt, now = _runtime(), datetime.now(UTC)
    request = IssueRequest.parse(
        holder_id=holder_id, role=role, storage=storage,
        csr=None if csr is None else csr.read_bytes(), key_spec=key_spec,
    )  # fmt: skip
    issued = issue_certificate(
        rt.transaction, ca_token=rt.ca_token, cloud_token=rt.cloud_token, request=request,
        public_url=rt.config.public_url, now=now, actor=root.actor(),
    )  # fmt: skip
    with rt.transaction() as session:
        row = session.get_one(Certificate, issued.certificate.id)
        view = certificate_json(session, row, now=now) | {"chain_pem": chain_pem(session)}
    if row.storage == "cloud" and not issued.replayed:
        view["activation"] = _send_code(row.serial, now).view()
    if out is not None:
        out.write_text(view["certificate_pem"])
    if as_json:
        root.print_json(view)
    else:
        click.echo(f"issued {_line(view)}")
        if "activation" in view:
            click.echo(_sent_line(view["activation"]))


def _send_code(serial: str, now: datetime) -> Any:
    from ca.issuance import get_certificate
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.cloud import send_code
    from signing_api.mail import deliver

    rt = _runtime()
    with rt.transaction() as session:
        sent = send_code(session, get_certificate(session, serial), now=now, actor=root.actor())
    done = deliver(
        rt.transaction, smtp_url=rt.config.smtp_url, sender=rt.config.mail_from, now=now,
        ids=[sent.message_id],
    )  # fmt: skip
    if done.failed:
        click.echo(
            "warning: the mail server did not take the message; `tamga mail send` retries",
            err=True,
        )
    return sent


def _sent_line(view: dict[str, str]) -> str:
    return (
        f"activation code ({view['purpose']}) mailed to the holder at {view['sent_to']},"
        f" valid until {view['expires_at']}"
    )


@ca.command("activation-code")
@click.argument("serial")
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON")
def activation_code(serial: str, as_json: bool) -> None:
    """Mail a new one-time activation code to a cloud certificate's holder.

    The holder sets its first PIN with it, or (reset) a new PIN and authenticator; the code is
    never shown here.
    """
    view = _send_code(serial, datetime.now(UTC)).view()
    if as_json:
        root.print_json(view)
    else:
        click.echo(_sent_line(view))


@ca.command("show")
@click.argument("serial")
@click.option("--pem", is_flag=True, help="print the certificate in PEM")
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON")
def show(serial: str, pem: bool, as_json: bool) -> None:
    """One certificate."""
    from ca.issuance import get_certificate
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.web.ca.certificates import certificate_json

    with _runtime().transaction() as session:
        view = certificate_json(session, get_certificate(session, serial), now=datetime.now(UTC))
    if as_json:
        root.print_json(view)
    elif pem:
        click.echo(view["certificate_pem"] or "", nl=False)
    else:
        click.echo(_line(view))
        click.echo(f"subject: {view['subject']}")
        if view["revoked_at"]:
            click.echo(f"{view['status']} at {view['revoked_at']}: {view['revocation_reason']}")


@ca.command("list")
@click.option("--inn", help="only this subscriber's certificates")
@click.option("--holder", "holder_id", type=int, help="only this holder's")
@click.option("--expiring-within-days", type=click.IntRange(0, 3660),
              help="active certificates that expire within N days")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON")
def listing(
    inn: str | None, holder_id: int | None, expiring_within_days: int | None, as_json: bool
) -> None:
    """Certificates, newest first (or soonest to expire)."""
    from ca.issuance import list_certificates
    from signing_api.cli.root import open_runtime as _runtime
    from signing_api.web.ca.certificates import certificate_json

    now = datetime.now(UTC)
    with _runtime().transaction() as session:
        rows = list_certificates(
            session, now=now, inns=None if inn is None else {inn}, holder_id=holder_id,
            expiring_within_days=expiring_within_days,
        )  # fmt: skip
        views = [certificate_json(session, r, now=now) for r in rows]
    if as_json:
        root.print_json({"certificates": views, "count": len(views)})
        return
    for view in views:
        click.echo(_line(view))
    click.echo(f"{len(views)} certificate(s)")

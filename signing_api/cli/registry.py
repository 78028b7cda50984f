"""``tamga ca subscriber|holder|registration|poa ...``: the registry from the officer's desk.

The commands mirror the registry routes of ``/api/v1`` as an officer calls them: ``--json``
prints exactly the API's JSON, the plain output one line per object. A refusal (bad field,
unknown id, conflict) is one line on stderr and exit status 1; nothing is written then. The
journal names the operator as ``cli:<user>``.
"""

from __future__ import annotations

from typing import Any

import click

from policies.dates import local_minute
from policies.money import som
from policies.statuses import RegistrationStatus
from signing_api.cli import root
from signing_api.cli.ca import ca

__all__: list[str] = []


# --- helpers -----------------------------------------------------------------------------------


_JSON = click.option("--json", "as_json", is_flag=True, help="print the API's JSON")


@click.group("subscriber")
def subscriber_group() -> None:
    """Subscribers: companies and entrepreneurs by their 14-digit INN."""


@click.group("holder")
def holder_group() -> None:
    """Holders: the people who hold certificates for a subscriber."""


@click.group("registration")
def registration_group() -> None:
    """Registration requests (§3.3): submit, list, approve, reject."""


@click.group("poa")
def poa_group() -> None:
    """Powers of attorney of tax representatives (§3.2)."""


for _group in (subscriber_group, holder_group, registration_group, poa_group):
    ca.add_command(_group)


# --- subscribers -------------------------------------------------------------------------------


def _subscriber_line(view: dict[str, Any]) -> str:
    return (
        f"{view['inn']}  {view['name']} ({view['legal_form']}, {view['locality']})  "
        f"{view['email']}  {view['status']}"
    )


@subscriber_group.command("add")
@click.option("--inn", required=True, help="14 digits")
@click.option("--name", required=True, help="as in the certificate (at most 64 characters)")
@click.option("--legal-form", required=True, help="ОсОО, ОАО, ИП, ...")
@click.option("--locality", required=True, help="city or village")
@click.option("--email", required=True)
@_JSON
def subscriber_add(
    inn: str, name: str, legal_form: str, locality: str, email: str, as_json: bool
) -> None:
    """Register a subscriber and open its billing account (the same data again: no change)."""
    from ca import registry
    from signing_api.web.ca.registry import subscriber_json

    data = {"inn": inn, "name": name, "legal_form": legal_form, "locality": locality}
    with root.transaction() as session:
        row, created = registry.create_subscriber(
            session, {**data, "email": email}, now=root.now(), actor=root.actor()
        )
        view = subscriber_json(row)
    if as_json:
        root.print_json(view)
        return
    verb = "registered subscriber" if created else "subscriber exists already:"
    click.echo(f"{verb} {view['inn']} ({view['name']})")


@subscriber_group.command("show")
@click.argument("inn")
@_JSON
def subscriber_show(inn: str, as_json: bool) -> None:
    """A subscriber's requisites and holders."""
    from ca import registry
    from signing_api.web.ca.registry import holder_json, subscriber_json

    with root.transaction() as session:
        view = subscriber_json(registry.get_subscriber(session, inn))
        holders = [holder_json(h, officer=True) for h in registry.list_holders(session, inn)]
    if as_json:
        root.print_json(view)
        return
    click.echo(_subscriber_line(view))
    for holder in holders:
        click.echo(f"  holder {holder['id']}: {holder['full_name']}, {holder['position']}")


@subscriber_group.command("list")
@_JSON
def subscriber_list(as_json: bool) -> None:
    """Every subscriber, by INN."""
    from ca import registry
    from signing_api.web.ca.registry import subscriber_json

    with root.transaction() as session:
        views = [subscriber_json(r) for r in registry.list_subscribers(session)]
    if as_json:
        root.print_json({"subscribers": views})
        return
    for view in views:
        click.echo(_subscriber_line(view))
    click.echo(f"{len(views)} subscribers")


# --- holders -----------------------------------------------------------------------------------


def _holder_line(view: dict[str, Any]) -> str:
    identity = "identity verified" if view["identity_verified"] else "identity NOT verified"
    return (
        f"holder {view['id']}: {view['full_name']}, {view['position']} of {view['inn']}; "
        f"passport {view['passport_series']}; {view['email']}, {view['phone']}; {view['status']}"
        f"; {identity}"
    )


@holder_group.command("add")
@click.option("--inn", required=True, help="the subscriber's INN")
@click.option("--full-name", required=True, help="Surname Given [Patronymic]")
@click.option("--position", required=True)
@click.option("--passport-series", required=True, help="e.g. ID1234567")
@click.option("--email", required=True)
@click.option("--phone", required=True, help="e.g. +996555123456")
@click.option(
    "--identity-document",
    help="the officer checked the person's documents at the office: the file reference "
    "(a certificate needs a verified identity)",
)
@_JSON
def holder_add(
    inn: str,
    full_name: str,
    position: str,
    passport_series: str,
    email: str,
    phone: str,
    identity_document: str | None,
    as_json: bool,
) -> None:
    """Register a holder for a subscriber (and verify its identity with --identity-document)."""
    from ca import registry
    from ca.errors import InvalidField
    from signing_api.web.ca.registry import holder_json

    data = {"inn": inn, "full_name": full_name, "position": position}
    data |= {"passport_series": passport_series, "email": email, "phone": phone}
    now, actor = root.now(), root.actor()
    with root.transaction() as session:
        row = registry.create_holder(session, data, now=now, actor=actor)
        if identity_document is not None:
            try:
                row = registry.verify_holder(
                    session, row.id, document=identity_document, now=now, actor=actor
                )
            except InvalidField as ex:
                raise InvalidField("identity_document", ex.message) from None
        view = holder_json(row, officer=True)
    if as_json:
        root.print_json(view)
        return
    click.echo(f"registered {_holder_line(view)}")


@holder_group.command("verify")
@click.argument("holder_id", type=click.IntRange(1, 2**63 - 1))
@click.option(
    "--document", required=True, help="what was checked: the office file reference, not a passport"
)
@_JSON
def holder_verify(holder_id: int, document: str, as_json: bool) -> None:
    """Record that you verified the holder's identity at the office (§3.3)."""
    from ca import registry
    from signing_api.web.ca.registry import holder_json

    with root.transaction() as session:
        row = registry.verify_holder(
            session, holder_id, document=document, now=root.now(), actor=root.actor()
        )
        view = holder_json(row, officer=True)
    if as_json:
        root.print_json(view)
        return
    click.echo(f"verified {_holder_line(view)} ({view['identity_document']})")


@holder_group.command("show")
@click.argument("holder_id", type=click.IntRange(1, 2**63 - 1))
@_JSON
def holder_show(holder_id: int, as_json: bool) -> None:
    """A holder's requisites."""
    from ca import registry
    from signing_api.web.ca.registry import holder_json

    with root.transaction() as session:
        view = holder_json(registry.get_holder(session, holder_id), officer=True)
    if as_json:
        root.print_json(view)
        return
    click.echo(_holder_line(view))


@holder_group.command("list")
@click.argument("inn")
@_JSON
def holder_list(inn: str, as_json: bool) -> None:
    """The holders of a subscriber."""
    from ca import registry
    from signing_api.web.ca.registry import holder_json

    with root.transaction() as session:
        views = [holder_json(h, officer=True) for h in registry.list_holders(session, inn)]
    if as_json:
        root.print_json({"inn": inn, "holders": views})
        return
    for view in views:
        click.echo(_holder_line(view))
    click.echo(f"{len(views)} holders")


# --- registration requests ---------------------------------------------------------------------


def _registration_line(view: dict[str, Any]) -> str:
    line = (
        f"request {view['id']} ({view['channel']}) for {view['inn']} "
        f"{view['subscriber']['name']}: {view['holder']['full_name']}, "
        f"{view['role']}/{view['storage']}, {view['status']}"
    )
    if view["status"] == RegistrationStatus.PENDING:
        line += f", decide by {local_minute(view['deadline_at'])}"
        line += " OVERDUE" if view["overdue"] else ""
        if view.get("existing_subscriber"):
            scope = ", ".join(c["name"] for c in view["in_scope_of"]) or "no client"
            line += f"; INN ALREADY REGISTERED (in scope of: {scope})"
    return line


def _approval_line(view: dict[str, Any]) -> str:
    line = f"approved {_registration_line(view)}; holder {view['holder_id']}"
    if view["payment_account"]:
        return line + (
            f"; pay {som(view['amount_due'])} som to payment account {view['payment_account']}"
        )
    return line + f"; {som(view['amount_due'])} som will be debited from the balance"


@registration_group.command("submit")
@click.option("--channel", type=click.Choice(["office", "online"]), default="office")
@click.option("--inn", required=True, help="the company's INN")
@click.option("--name", required=True, help="the company's name")
@click.option("--legal-form", required=True)
@click.option("--locality", required=True)
@click.option("--email", required=True, help="the company's e-mail")
@click.option("--full-name", required=True, help="the holder: Surname Given [Patronymic]")
@click.option("--position", required=True)
@click.option("--passport-series", required=True)
@click.option("--holder-email", required=True)
@click.option("--phone", required=True)
@click.option("--role", required=True, help="head, accountant, head_as_accountant, complex_5, ...")
@click.option("--storage", default="cloud", show_default=True, help="cloud or rutoken")
@_JSON
def registration_submit(
    as_json: bool, channel: str, role: str, storage: str, **fields: str
) -> None:
    """Record a registration request: a subscriber, its holder and the first certificate."""
    from ca import registrations
    from signing_api.web.ca.registry import registration_json

    company = {k: fields[k] for k in ("inn", "name", "legal_form", "locality", "email")}
    holder = {k: fields[k] for k in ("full_name", "position", "passport_series", "phone")}
    holder["email"] = fields["holder_email"]
    data = {"subscriber": company, "holder": holder, "role": role, "storage": storage}
    now = root.now()
    with root.transaction() as session:
        row = registrations.submit_registration(
            session, data, channel=channel, now=now, actor=root.actor()
        )
        view = registration_json(session, row, now=now, officer=True)
    if as_json:
        root.print_json(view)
        return
    click.echo(f"submitted {_registration_line(view)}")


@registration_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in RegistrationStatus]))
@_JSON
def registration_list(status: str | None, as_json: bool) -> None:
    """Registration requests, oldest first; pending ones show their deadline."""
    from ca import registrations
    from signing_api.web.ca.registry import registration_json

    now = root.now()
    with root.transaction() as session:
        rows = registrations.list_registrations(session, status)
        views = [registration_json(session, r, now=now, officer=True) for r in rows]
    if as_json:
        root.print_json({"registrations": views})
        return
    for view in views:
        click.echo(_registration_line(view))
    overdue = sum(1 for v in views if v["overdue"])
    click.echo(f"{len(views)} requests, {overdue} overdue")


@registration_group.command("show")
@click.argument("request_id", type=click.IntRange(1, 2**63 - 1))
@_JSON
def registration_show(request_id: int, as_json: bool) -> None:
    """One registration request."""
    from ca import registrations
    from signing_api.web.ca.registry import registration_json

    now = root.now()
    with root.transaction() as session:
        row = registrations.get_registration(session, request_id)
        view = registration_json(session, row, now=now, officer=True)
    if as_json:
        root.print_json(view)
        return
    click.echo(_registration_line(view))


@registration_group.command("approve")
@click.argument("request_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--note", help="a remark kept with the decision")
@click.option(
    "--grant-scope/--no-grant-scope",
    default=None,
    help="whether the submitting portal gets the subscriber in scope; required when the INN "
    "is already registered outside its scope",
)
@_JSON
def registration_approve(
    request_id: int, note: str | None, grant_scope: bool | None, as_json: bool
) -> None:
    """Approve: subscriber, holder (its identity verified) and the first certificate's payment
    account."""
    from signing_api.web.ca.registry import approve_with_scope, registration_json

    now, actor = root.now(), root.actor()
    with root.transaction() as session:
        row = approve_with_scope(
            session, request_id, grant_scope=grant_scope, note=note, now=now, actor=actor
        )
        view = registration_json(session, row, now=now, officer=True)
    if as_json:
        root.print_json(view)
        return
    click.echo(_approval_line(view))


@registration_group.command("reject")
@click.argument("request_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--note", required=True, help="the reason, kept with the decision")
@_JSON
def registration_reject(request_id: int, note: str, as_json: bool) -> None:
    """Reject a pending request with a reason."""
    from ca import registrations
    from signing_api.web.ca.registry import registration_json

    now = root.now()
    with root.transaction() as session:
        row = registrations.reject_registration(
            session, request_id, note=note, now=now, actor=root.actor()
        )
        view = registration_json(session, row, now=now, officer=True)
    if as_json:
        root.print_json(view)
        return
    click.echo(f"rejected {_registration_line(view)}: {view['decision_note']}")


# --- powers of attorney ------------------------------------------------------------------------


def _power_line(view: dict[str, Any]) -> str:
    state = "revoked" if view["revoked_at"] else ("valid" if view["valid_today"] else "not valid")
    return (
        f"power {view['id']}: holder {view['holder_id']} for {view['taxpayer_inn']} "
        f"{view['taxpayer_name']}, № {view['document_number']} of {view['issued_on']}, "
        f"{view['valid_from']} .. {view['valid_until']}, {state} today"
    )


@poa_group.command("add")
@click.option("--holder-id", required=True, type=click.IntRange(1, 2**63 - 1))
@click.option("--taxpayer-inn", required=True)
@click.option("--taxpayer-name", required=True)
@click.option("--taxpayer-legal-form", required=True)
@click.option("--taxpayer-locality", required=True)
@click.option("--document-number", required=True)
@click.option("--issued-on", required=True, metavar="YYYY-MM-DD")
@click.option("--valid-from", required=True, metavar="YYYY-MM-DD")
@click.option("--valid-until", required=True, metavar="YYYY-MM-DD", help="last day, included")
@_JSON
def poa_add(as_json: bool, **fields: Any) -> None:
    """Record a served taxpayer's power of attorney for a holder."""
    from ca import powers
    from signing_api.web.ca.registry import power_json

    now = root.now()
    with root.transaction() as session:
        row, created = powers.create_power(session, fields, now=now, actor=root.actor())
        view = power_json(row, now=now)
    if as_json:
        root.print_json(view)
        return
    click.echo(f"{'recorded' if created else 'already recorded:'} {_power_line(view)}")


@poa_group.command("list")
@click.argument("holder_id", type=click.IntRange(1, 2**63 - 1))
@_JSON
def poa_list(holder_id: int, as_json: bool) -> None:
    """A holder's powers of attorney and the taxpayers it may file for today."""
    from signing_api.web.ca.registry import powers_json

    now = root.now()
    with root.transaction() as session:
        view = powers_json(session, holder_id, now=now)
    if as_json:
        root.print_json(view)
        return
    for power in view["powers"]:
        click.echo(_power_line(power))
    taxpayers = ", ".join(view["valid_taxpayers"]) or "none"
    click.echo(f"{len(view['powers'])} powers; may file today ({view['on']}) for: {taxpayers}")


@poa_group.command("revoke")
@click.argument("power_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--note", required=True, help="why it ended (§4.3.10)")
@_JSON
def poa_revoke(power_id: int, note: str, as_json: bool) -> None:
    """Revoke a power of attorney (final)."""
    from ca import powers
    from signing_api.web.ca.registry import power_json

    now = root.now()
    with root.transaction() as session:
        row = powers.revoke_power(session, power_id, note=note, now=now, actor=root.actor())
        view = power_json(row, now=now)
    if as_json:
        root.print_json(view)
        return
    click.echo(f"revoked {_power_line(view)}: {view['revocation_note']}")

"""HTTP routes of the CA registry under ``/api/v1``: subscribers, holders, registration requests
and powers of attorney (JSON, bearer-token clients).

Thin views: the typed contract (``schemas``, :mod:`signing_api.web.contract`) reads and checks
the request, then they call :mod:`ca.registry`, :mod:`ca.registrations` or :mod:`ca.powers` in a
transaction, render. Officers may do everything; the reporting portal registers subscribers and
holders, submits online registration requests and records powers of attorney, all within its
scope (``ca_common``): an object outside it is answered 404 like one that does not exist. The
passport series is personal data and goes to officers only.

The JSON views (``subscriber_json`` ...) are plain functions so that the CLI prints exactly
what the API answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g
from sqlalchemy.orm import Session

from ca import powers, registrations, registry
from ca.errors import Conflict
from ca.models import Holder, PowerOfAttorney, RegistrationRequest, Subscriber
from db import audit
from policies.calendar import local_date
from policies.dates import iso_utc
from policies.roles import ClientRole
from policies.statuses import RegistrationStatus
from signing_api.clients import ApiClient, clients_with_scope, grant, has_scope
from signing_api.web.ca.registry_schemas import (
    MAX_ID,
    Approval,
    ForeignAccessInput,
    ForeignAccessList,
    HolderChanges,
    HolderInput,
    HolderList,
    IdentityCheck,
    Power,
    PowerInput,
    PowerList,
    PowerRevocation,
    PowersQuery,
    Registration,
    RegistrationFilter,
    RegistrationInput,
    RegistrationList,
    Rejection,
    SubscriberChanges,
    SubscriberInput,
    SubscriberList,
)
from signing_api.web.ca.registry_schemas import ForeignAccess as ForeignAccessView
from signing_api.web.ca.registry_schemas import Holder as HolderView
from signing_api.web.ca.registry_schemas import Subscriber as SubscriberView
from signing_api.web.common import ca_transaction, is_officer, require_visible, visible_inns
from signing_api.web.context import actor, now, reply, send_mail
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem

__all__ = [
    "approve_with_scope",
    "blueprint",
    "holder_json",
    "power_json",
    "powers_json",
    "registration_json",
    "submitter_client",
    "subscriber_json",
]

blueprint = Blueprint("registry", __name__)

_BOTH = (ClientRole.OFFICER, ClientRole.PORTAL)
_OFFICER = ClientRole.OFFICER

# --- JSON views (shared with the CLI) ----------------------------------------------------------


def subscriber_json(row: Subscriber) -> dict[str, Any]:
    return {
        "inn": row.inn,
        "name": row.name,
        "legal_form": row.legal_form,
        "locality": row.locality,
        "email": row.email,
        "status": row.status,
        "created_at": iso_utc(row.created_at),
    }


def holder_json(row: Holder, *, officer: bool) -> dict[str, Any]:
    """A holder; the passport series only for officers."""
    view: dict[str, Any] = {
        "id": row.id,
        "inn": row.subscriber_inn,
        "full_name": row.full_name,
        "surname": row.surname,
        "given_name": row.given_name,
        "position": row.position,
        "email": row.email,
        "phone": row.phone,
        "status": row.status,
        "identity_verified": row.identity_verified_at is not None,
        "identity_verified_at": iso_utc(row.identity_verified_at),
    }
    if officer:
        view["passport_series"] = row.passport_series
        view["identity_verified_by"] = row.identity_verified_by
        view["identity_document"] = row.identity_document
    return view


def registration_json(
    session: Session,
    row: RegistrationRequest,
    *,
    now: datetime,
    officer: bool,
    in_scope: bool = True,
) -> dict[str, Any]:
    """A registration request; ``amount_due`` is the price on approval (today's while not
    approved); ``payment`` says how the first certificate is paid once approved.

    Officers also see whether the INN is already registered (``existing_subscriber``: now while
    pending, at the decision afterwards) and which clients have it in scope (``in_scope_of``).
    A portal sees neither; when the subscriber is not in its scope (``in_scope`` False) it sees
    no holder or payment either, so that a request for a registered INN reads exactly like one
    for a new INN: the portal learns nothing it could not see already.
    """
    tariff, price = registrations.price_of(row, now)
    holder = {k: v for k, v in row.holder.items() if officer or k != "passport_series"}
    payment = None
    if row.status == "approved":
        payment = "payment_account" if row.payment_account else "balance"
    shown = officer or in_scope
    view: dict[str, Any] = {
        "id": row.id,
        "channel": row.channel,
        "status": row.status,
        "inn": row.inn,
        "subscriber": dict(row.subscriber),
        "holder": holder,
        "role": row.role,
        "storage": row.storage,
        "submitted_at": iso_utc(row.submitted_at),
        "submitted_by": row.submitted_by,
        "deadline_at": iso_utc(row.deadline_at),
        "overdue": registrations.is_overdue(row, now),
        "decided_at": iso_utc(row.decided_at),
        "decided_by": row.decided_by,
        "decision_note": row.decision_note,
        "holder_id": row.holder_id if shown else None,
        "tariff": tariff,
        "amount_due": price,
        "payment": payment if shown else None,
        "payment_account": row.payment_account if shown else None,
    }
    if officer:
        existed = row.subscriber_existed
        if row.status == RegistrationStatus.PENDING:
            existed = session.get(Subscriber, row.inn) is not None
        view["existing_subscriber"] = existed
        view["in_scope_of"] = [
            {"id": c.id, "name": c.name} for c in clients_with_scope(session, row.inn)
        ]
    return view


def power_json(row: PowerOfAttorney, *, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "holder_id": row.holder_id,
        "taxpayer_inn": row.taxpayer_inn,
        "taxpayer_name": row.taxpayer_name,
        "taxpayer_legal_form": row.taxpayer_legal_form,
        "taxpayer_locality": row.taxpayer_locality,
        "document_number": row.document_number,
        "issued_on": row.issued_on.isoformat(),
        "valid_from": row.valid_from.isoformat(),
        "valid_until": row.valid_until.isoformat(),
        "valid_today": powers.is_valid_on(row, local_date(now)),
        "created_at": iso_utc(row.created_at),
        "created_by": row.created_by,
        "revoked_at": iso_utc(row.revoked_at),
        "revoked_by": row.revoked_by,
        "revocation_note": row.revocation_note,
    }


def powers_json(session: Session, holder_id: int, *, now: datetime) -> dict[str, Any]:
    """A holder's powers of attorney and the taxpayers it may file for today."""
    found = powers.list_powers(session, holder_id)
    today = local_date(now)
    return {
        "holder_id": holder_id,
        "on": today.isoformat(),
        "valid_taxpayers": powers.valid_taxpayers(session, holder_id, today),
        "powers": [power_json(p, now=now) for p in found],
    }


def submitter_client(session: Session, row: RegistrationRequest) -> ApiClient | None:
    """The non-officer API client that submitted ``row``, if one did."""
    kind, _, raw = row.submitted_by.partition(":")
    if kind != "client" or not raw.isdigit():
        return None
    client = session.get(ApiClient, int(raw))
    if client is None or client.client_role is ClientRole.OFFICER:
        return None
    return client


def approve_with_scope(
    session: Session,
    request_id: int,
    *,
    grant_scope: bool | None,
    note: str | None,
    now: datetime,
    actor: str,
) -> RegistrationRequest:
    """Approve a request (officer) and decide the submitting portal's scope, in one transaction.

    A request for a new INN puts the subscriber in the submitting portal's scope (unless
    ``grant_scope`` is False). A request for an INN already registered and outside that
    portal's scope widens nothing by default: the officer must choose, ``grant_scope`` True
    (the subscriber asked to use this portal too) or False (register the holder only);
    without a choice the approval is a Conflict and nothing is written. Either choice is
    journalled (``client.scope.granted`` or ``client.scope.withheld``). An approved request
    is returned unchanged: a later grant is ``tamga clients grant``.
    """
    row = registrations.get_registration(session, request_id)
    session.refresh(row, with_for_update=True)  # two officers deciding at once: one at a time
    client = submitter_client(session, row)
    pending = row.status == RegistrationStatus.PENDING
    existing = session.get(Subscriber, row.inn) is not None
    outside = client is not None and not has_scope(session, client.id, row.inn)
    if pending and existing and client is not None and outside and grant_scope is None:
        raise Conflict(
            f"INN {row.inn} is already registered and not in the scope of {client.name!r}, "
            "which submitted this request: approve with grant_scope true (the subscriber "
            "agreed to use this portal) or false (register the holder only), or reject it"
        )
    row = registrations.approve_registration(session, request_id, now=now, actor=actor, note=note)
    if not pending or client is None or not outside:
        return row
    if grant_scope is False:
        audit.append(
            session,
            actor=actor,
            action="client.scope.withheld",
            object=f"client:{client.id}",
            details={"inn": row.inn, "registration": row.id},
            now=now,
        )
    else:
        grant(session, client_id=client.id, inn=row.inn, now=now, actor=actor, registration=row.id)
    return row


# --- helpers -----------------------------------------------------------------------------------


def _id(value: int, what: str) -> int:
    """A path id; one too large for the database names nothing: 404."""
    if value > MAX_ID:
        raise Problem("not-found", f"no {what} {value}")
    return value


def _holder_visible(session: Session, holder_id: int) -> Holder:
    holder = registry.get_holder(session, holder_id)
    require_visible(session, holder.subscriber_inn, "holder")
    return holder


def _registration_visible(session: Session, request_id: int) -> RegistrationRequest:
    row = registrations.get_registration(session, request_id)
    inns = visible_inns(session)
    if inns is not None and row.inn not in inns and row.submitted_by != actor():
        raise Problem("not-found", "no registration request of that reference is visible")
    return row


def _registration_view(
    session: Session, row: RegistrationRequest, moment: datetime
) -> dict[str, Any]:
    """The request as the caller may see it (see ``registration_json``)."""
    inns = visible_inns(session)
    return registration_json(
        session, row, now=moment, officer=inns is None, in_scope=inns is None or row.inn in inns
    )


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


_TAG = "registry"
_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_INN_PARAM = _path(
    "inn",
    "The subscriber's 14-digit INN (outside the caller's scope: 404)",
    {"type": "string", "pattern": "^[0-9]{14}$"},
)
_HOLDER_PARAM = _path("holder_id", "The holder's id", _ID_SCHEMA)
_REQUEST_PARAM = _path("request_id", "The registration request's id", _ID_SCHEMA)
_POWER_PARAM = _path("power_id", "The power of attorney's id", _ID_SCHEMA)
_REPLAY = "Replay: the same data again, nothing written"


# --- subscribers -------------------------------------------------------------------------------


@blueprint.post("/api/v1/subscribers")
@operation(
    "createSubscriber",
    "Register a subscriber and open its billing account; a portal gets it in scope",
    body=SubscriberInput,
    responses={201: Reply(SubscriberView, "Created"), 200: Reply(SubscriberView, _REPLAY)},
    tag=_TAG,
    roles=_BOTH,
    errors=(409,),
)
def create_subscriber(body: SubscriberInput) -> Response:
    moment = now()
    with ca_transaction() as session:
        inns = visible_inns(session)
        hidden = inns is not None and body.inn not in inns
        if hidden and session.get(Subscriber, body.inn) is not None:
            # Says no more than that: a portal must not learn whose INN it is.
            raise Problem("conflict", f"INN {body.inn} is already registered")
        data = body.model_dump(mode="json")
        row, created = registry.create_subscriber(session, data, now=moment, actor=actor())
        if inns is not None:
            grant(session, client_id=g.client_id, inn=row.inn, now=moment, actor=actor())
        view = subscriber_json(row)
    return reply(view, 201 if created else 200, location=f"/api/v1/subscribers/{view['inn']}")


@blueprint.get("/api/v1/subscribers")
@operation(
    "listSubscribers",
    "The subscribers in the caller's scope (an officer: all)",
    responses={200: Reply(SubscriberList, "Subscribers by INN")},
    tag=_TAG,
    roles=_BOTH,
)
def list_subscribers() -> Response:
    with ca_transaction() as session:
        rows = registry.list_subscribers(session, visible_inns(session))
        return reply({"subscribers": [subscriber_json(r) for r in rows]})


@blueprint.get("/api/v1/subscribers/<inn>")
@operation(
    "getSubscriber",
    "A subscriber's requisites",
    responses={200: Reply(SubscriberView, "The subscriber")},
    parameters=[_INN_PARAM],
    tag=_TAG,
    roles=_BOTH,
    errors=(404,),
)
def show_subscriber(inn: str) -> Response:
    with ca_transaction() as session:
        require_visible(session, inn)
        return reply(subscriber_json(registry.get_subscriber(session, inn)))


@blueprint.patch("/api/v1/subscribers/<inn>")
@operation(
    "changeSubscriber",
    "Change requisites (officer); the next renewal then goes to an officer",
    body=SubscriberChanges,
    responses={200: Reply(SubscriberView, "The subscriber")},
    parameters=[_INN_PARAM],
    tag=_TAG,
    roles=(_OFFICER,),
    errors=(404,),
)
def change_subscriber(inn: str, body: SubscriberChanges) -> Response:
    changes, moment = body.model_dump(mode="json", exclude_unset=True), now()
    with ca_transaction() as session:
        row = registry.update_subscriber(session, inn, changes, now=moment, actor=actor())
        return reply(subscriber_json(row))


@blueprint.get("/api/v1/subscribers/<inn>/holders")
@operation(
    "listSubscriberHolders",
    "The holders of a subscriber",
    responses={200: Reply(HolderList, "Holders")},
    parameters=[_INN_PARAM],
    tag=_TAG,
    roles=_BOTH,
    errors=(404,),
)
def list_holders(inn: str) -> Response:
    with ca_transaction() as session:
        require_visible(session, inn)
        rows = registry.list_holders(session, inn)
        officer = is_officer()
        return reply({"inn": inn, "holders": [holder_json(r, officer=officer) for r in rows]})


def _foreign_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "inn": row.inn,
        "address": row.address,
        "location": row.location,
        "valid_from": row.valid_from.isoformat(),
        "valid_until": row.valid_until.isoformat(),
    }


@blueprint.post("/api/v1/subscribers/<inn>/foreign-access")
@operation(
    "addForeignAccess",
    "Register a static IP for access from abroad (officer, §3.6)",
    body=ForeignAccessInput,
    responses={201: Reply(ForeignAccessView, "Registered")},
    parameters=[_INN_PARAM],
    tag=_TAG,
    roles=(_OFFICER,),
    errors=(404,),
    refusals={422: "valid_until is before valid_from"},
)
def add_foreign_access(inn: str, body: ForeignAccessInput) -> Response:
    """Register a static IP the subscriber may use from abroad (§3.6), on its request."""
    data, moment = body.model_dump(mode="json"), now()
    with ca_transaction() as session:
        row = registry.add_foreign_access(session, inn, data, now=moment, actor=actor())
        return reply(_foreign_json(row), 201)


@blueprint.get("/api/v1/subscribers/<inn>/foreign-access")
@operation(
    "listForeignAccess",
    "The static IPs a subscriber may use from abroad",
    responses={200: Reply(ForeignAccessList, "The static IPs, in the order registered")},
    parameters=[_INN_PARAM],
    tag=_TAG,
    roles=_BOTH,
    errors=(404,),
)
def list_foreign_access(inn: str) -> Response:
    with ca_transaction() as session:
        require_visible(session, inn)
        rows = registry.list_foreign_access(session, inn)
        return reply({"inn": inn, "foreign_access": [_foreign_json(r) for r in rows]})


# --- holders -----------------------------------------------------------------------------------


@blueprint.post("/api/v1/holders")
@operation(
    "createHolder",
    "Register a holder for a subscriber in the caller's scope",
    body=HolderInput,
    responses={201: Reply(HolderView, "Created")},
    tag=_TAG,
    roles=_BOTH,
    errors=(404, 409),
)
def create_holder(body: HolderInput) -> Response:
    data, moment = body.model_dump(mode="json"), now()
    with ca_transaction() as session:
        require_visible(session, body.inn)
        row = registry.create_holder(session, data, now=moment, actor=actor())
        view = holder_json(row, officer=is_officer())
    return reply(view, 201, location=f"/api/v1/holders/{view['id']}")


@blueprint.get("/api/v1/holders/<int:holder_id>")
@operation(
    "getHolder",
    "A holder (the passport series for officers only)",
    responses={200: Reply(HolderView, "The holder")},
    parameters=[_HOLDER_PARAM],
    tag=_TAG,
    roles=_BOTH,
    errors=(404,),
)
def show_holder(holder_id: int) -> Response:
    with ca_transaction() as session:
        holder = _holder_visible(session, _id(holder_id, "holder"))
        return reply(holder_json(holder, officer=is_officer()))


@blueprint.patch("/api/v1/holders/<int:holder_id>")
@operation(
    "changeHolder",
    "Change a holder's requisites (officer)",
    body=HolderChanges,
    responses={200: Reply(HolderView, "The holder")},
    parameters=[_HOLDER_PARAM],
    tag=_TAG,
    roles=(_OFFICER,),
    errors=(404,),
    refusals={422: "an e-mail or phone change without its document"},
)
def change_holder(holder_id: int, body: HolderChanges) -> Response:
    changes, moment = body.model_dump(mode="json", exclude_unset=True), now()
    document = changes.pop("document", None)
    with ca_transaction() as session:
        row = registry.update_holder(
            session,
            _id(holder_id, "holder"),
            changes,
            now=moment,
            actor=actor(),
            document=document,
        )
        view = holder_json(row, officer=True)
    send_mail()  # the notice to the old e-mail, once committed
    return reply(view)


@blueprint.post("/api/v1/holders/<int:holder_id>/verify")
@operation(
    "verifyHolder",
    "Record that an officer verified the holder's identity (§3.3) on a document; a certificate "
    "needs it. Verified already: the same answer",
    body=IdentityCheck,
    responses={200: Reply(HolderView, "The holder")},
    parameters=[_HOLDER_PARAM],
    tag=_TAG,
    roles=(_OFFICER,),
    errors=(404, 409),
    refusals={422: "a document reference that names the passport series"},
)
def verify_holder(holder_id: int, body: IdentityCheck) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = registry.verify_holder(
            session, _id(holder_id, "holder"), document=body.document, now=moment, actor=actor()
        )
        return reply(holder_json(row, officer=True))


# --- registration requests ---------------------------------------------------------------------


@blueprint.post("/api/v1/registrations")
@operation(
    "submitRegistration",
    "Submit a registration request (§3.3); a portal submits online ones only",
    body=RegistrationInput,
    responses={201: Reply(Registration, "Submitted")},
    tag=_TAG,
    roles=_BOTH,
)
def submit_registration(body: RegistrationInput) -> Response:
    moment = now()
    if not is_officer() and body.channel == "office":
        raise Problem("forbidden", "a portal client submits online registration requests only")
    data = body.model_dump(mode="json", exclude={"channel"})
    with ca_transaction() as session:
        row = registrations.submit_registration(
            session, data, channel=body.channel, now=moment, actor=actor()
        )
        view = _registration_view(session, row, moment)
    return reply(view, 201, location=f"/api/v1/registrations/{view['id']}")


@blueprint.get("/api/v1/registrations")
@operation(
    "listRegistrations",
    "Registration requests (a portal: those it submitted or within its scope)",
    query=RegistrationFilter,
    responses={200: Reply(RegistrationList, "Requests, oldest first")},
    tag=_TAG,
    roles=_BOTH,
)
def list_registrations(query: RegistrationFilter) -> Response:
    moment = now()
    with ca_transaction() as session:
        rows = registrations.list_registrations(
            session, query.status, visible_inns(session), submitted_by=actor()
        )
        views = [_registration_view(session, r, moment) for r in rows]
    return reply({"registrations": views})


@blueprint.get("/api/v1/registrations/<int:request_id>")
@operation(
    "getRegistration",
    "A registration request with its deadline and whether it is overdue",
    responses={200: Reply(Registration, "The request")},
    parameters=[_REQUEST_PARAM],
    tag=_TAG,
    roles=_BOTH,
    errors=(404,),
)
def show_registration(request_id: int) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = _registration_visible(session, _id(request_id, "registration request"))
        return reply(_registration_view(session, row, moment))


@blueprint.post("/api/v1/registrations/<int:request_id>/approve")
@operation(
    "approveRegistration",
    "Approve (officer): subscriber, holder, billing account and the 16-digit payment account "
    "of the first certificate; again: the same answer",
    body=Approval,
    body_optional=True,
    responses={200: Reply(Registration, "The approved request")},
    parameters=[_REQUEST_PARAM],
    tag=_TAG,
    roles=(_OFFICER,),
    errors=(404, 409),
)
def approve_registration(request_id: int, body: Approval) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = approve_with_scope(
            session,
            _id(request_id, "registration request"),
            grant_scope=body.grant_scope,
            note=body.note,
            now=moment,
            actor=actor(),
        )
        return reply(registration_json(session, row, now=moment, officer=True))


@blueprint.post("/api/v1/registrations/<int:request_id>/reject")
@operation(
    "rejectRegistration",
    "Reject with a reason (officer)",
    body=Rejection,
    responses={200: Reply(Registration, "The rejected request")},
    parameters=[_REQUEST_PARAM],
    tag=_TAG,
    roles=(_OFFICER,),
    errors=(404, 409),
)
def reject_registration(request_id: int, body: Rejection) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = registrations.reject_registration(
            session,
            _id(request_id, "registration request"),
            note=body.note,
            now=moment,
            actor=actor(),
        )
        return reply(registration_json(session, row, now=moment, officer=True))


# --- powers of attorney ------------------------------------------------------------------------


@blueprint.post("/api/v1/powers-of-attorney")
@operation(
    "createPowerOfAttorney",
    "Record a served taxpayer's power of attorney for a holder (§3.2)",
    body=PowerInput,
    responses={201: Reply(Power, "Created"), 200: Reply(Power, _REPLAY)},
    tag=_TAG,
    roles=_BOTH,
    errors=(404, 409),
    refusals={422: "valid_until is before valid_from, or issued_on after valid_from"},
)
def create_power(body: PowerInput) -> Response:
    data, moment = body.model_dump(mode="json"), now()
    with ca_transaction() as session:
        _holder_visible(session, body.holder_id)  # scope before anything else
        row, created = powers.create_power(session, data, now=moment, actor=actor())
        view = power_json(row, now=moment)
    location = f"/api/v1/powers-of-attorney?holder_id={view['holder_id']}"
    return reply(view, 201 if created else 200, location=location)


@blueprint.get("/api/v1/powers-of-attorney")
@operation(
    "listPowersOfAttorney",
    "A holder's powers of attorney and the taxpayers it may file for today",
    query=PowersQuery,
    responses={200: Reply(PowerList, "Powers of attorney")},
    tag=_TAG,
    roles=_BOTH,
    errors=(404,),
)
def list_powers(query: PowersQuery) -> Response:
    moment = now()
    with ca_transaction() as session:
        _holder_visible(session, query.holder_id)
        return reply(powers_json(session, query.holder_id, now=moment))


@blueprint.post("/api/v1/powers-of-attorney/<int:power_id>/revoke")
@operation(
    "revokePowerOfAttorney",
    "Revoke a power of attorney (§4.3.10); final",
    body=PowerRevocation,
    responses={200: Reply(Power, "The revoked power")},
    parameters=[_POWER_PARAM],
    tag=_TAG,
    roles=_BOTH,
    errors=(404, 409),
)
def revoke_power(power_id: int, body: PowerRevocation) -> Response:
    moment = now()
    with ca_transaction() as session:
        power = powers.get_power(session, _id(power_id, "power of attorney"))
        _holder_visible(session, power.holder_id)
        row = powers.revoke_power(session, power.id, note=body.note, now=moment, actor=actor())
        return reply(power_json(row, now=moment))

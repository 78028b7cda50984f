"""HTTP routes of the CA registry under ``/api/v1``: subscribers, holders, registration requests
and powers of attorney (JSON, bearer-token clients).

Thin views: parse, call :mod:`ca.registry`, :mod:`ca.registrations` or :mod:`ca.powers` in a
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

from flask import Blueprint, Response, g, request
from sqlalchemy.orm import Session

from ca import powers, registrations, registry
from ca.models import Holder, PowerOfAttorney, RegistrationRequest, Subscriber
from policies.calendar import local_date
from policies.dates import iso_utc
from policies.roles import ClientRole
from signing_api.clients import ApiClient
from signing_api.web.auth import require_client
from signing_api.web.common import ca_transaction, grant, is_officer, require_visible, visible_inns
from signing_api.web.context import actor, json_body, now, reply
from signing_api.web.problems import Problem

__all__ = [
    "OPENAPI",
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
_MAX_ID = 2**63 - 1

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
    }
    if officer:
        view["passport_series"] = row.passport_series
    return view


def registration_json(row: RegistrationRequest, *, now: datetime, officer: bool) -> dict[str, Any]:
    """A registration request; ``amount_due`` is the price on approval (today's while not
    approved); ``payment`` says how the first certificate is paid once approved."""
    tariff, price = registrations.price_of(row, now)
    holder = {k: v for k, v in row.holder.items() if officer or k != "passport_series"}
    payment = None
    if row.status == "approved":
        payment = "payment_account" if row.payment_account else "balance"
    return {
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
        "holder_id": row.holder_id,
        "tariff": tariff,
        "amount_due": price,
        "payment": payment,
        "payment_account": row.payment_account,
    }


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


def submitter_client(session: Session, row: RegistrationRequest) -> int | None:
    """The non-officer API client that submitted ``row``, if one did (its scope grows)."""
    kind, _, raw = row.submitted_by.partition(":")
    if kind != "client" or not raw.isdigit():
        return None
    client = session.get(ApiClient, int(raw))
    if client is None or client.client_role is ClientRole.OFFICER:
        return None
    return client.id


# --- helpers -----------------------------------------------------------------------------------


def _id(value: int, what: str) -> int:
    """A path id; one too large for the database names nothing: 404."""
    if value > _MAX_ID:
        raise Problem("not-found", f"no {what} {value}")
    return value


def _body_or_empty() -> dict[str, Any]:
    return json_body() if request.get_data() else {}


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


# --- subscribers -------------------------------------------------------------------------------


@blueprint.post("/api/v1/subscribers")
@require_client(*_BOTH)
def create_subscriber() -> Response:
    data, moment = json_body(), now()
    with ca_transaction() as session:
        inn = data.get("inn")
        inns = visible_inns(session)
        hidden = inns is not None and isinstance(inn, str) and inn not in inns
        if hidden and session.get(Subscriber, inn) is not None:
            # Says no more than that: a portal must not learn whose INN it is.
            raise Problem("conflict", f"INN {inn} is already registered")
        row, created = registry.create_subscriber(session, data, now=moment, actor=actor())
        if inns is not None:
            grant(session, client_id=g.client_id, inn=row.inn, now=moment, actor=actor())
        view = subscriber_json(row)
    return reply(view, 201 if created else 200, location=f"/api/v1/subscribers/{view['inn']}")


@blueprint.get("/api/v1/subscribers")
@require_client(*_BOTH)
def list_subscribers() -> Response:
    with ca_transaction() as session:
        rows = registry.list_subscribers(session, visible_inns(session))
        return reply({"subscribers": [subscriber_json(r) for r in rows]})


@blueprint.get("/api/v1/subscribers/<inn>")
@require_client(*_BOTH)
def show_subscriber(inn: str) -> Response:
    with ca_transaction() as session:
        require_visible(session, inn)
        return reply(subscriber_json(registry.get_subscriber(session, inn)))


@blueprint.patch("/api/v1/subscribers/<inn>")
@require_client(_OFFICER)
def change_subscriber(inn: str) -> Response:
    data, moment = json_body(), now()
    with ca_transaction() as session:
        row = registry.update_subscriber(session, inn, data, now=moment, actor=actor())
        return reply(subscriber_json(row))


@blueprint.get("/api/v1/subscribers/<inn>/holders")
@require_client(*_BOTH)
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
@require_client(_OFFICER)
def add_foreign_access(inn: str) -> Response:
    """Register a static IP the subscriber may use from abroad (§3.6), on its request."""
    data, moment = json_body(), now()
    with ca_transaction() as session:
        row = registry.add_foreign_access(session, inn, data, now=moment, actor=actor())
        return reply(_foreign_json(row), 201)


@blueprint.get("/api/v1/subscribers/<inn>/foreign-access")
@require_client(*_BOTH)
def list_foreign_access(inn: str) -> Response:
    with ca_transaction() as session:
        require_visible(session, inn)
        rows = registry.list_foreign_access(session, inn)
        return reply({"inn": inn, "foreign_access": [_foreign_json(r) for r in rows]})


# --- holders -----------------------------------------------------------------------------------


@blueprint.post("/api/v1/holders")
@require_client(*_BOTH)
def create_holder() -> Response:
    data, moment = json_body(), now()
    with ca_transaction() as session:
        require_visible(session, registry.check_inn(data.get("inn")))
        row = registry.create_holder(session, data, now=moment, actor=actor())
        view = holder_json(row, officer=is_officer())
    return reply(view, 201, location=f"/api/v1/holders/{view['id']}")


@blueprint.get("/api/v1/holders/<int:holder_id>")
@require_client(*_BOTH)
def show_holder(holder_id: int) -> Response:
    with ca_transaction() as session:
        holder = _holder_visible(session, _id(holder_id, "holder"))
        return reply(holder_json(holder, officer=is_officer()))


@blueprint.patch("/api/v1/holders/<int:holder_id>")
@require_client(_OFFICER)
def change_holder(holder_id: int) -> Response:
    data, moment = json_body(), now()
    with ca_transaction() as session:
        row = registry.update_holder(
            session, _id(holder_id, "holder"), data, now=moment, actor=actor()
        )
        return reply(holder_json(row, officer=True))


# --- registration requests ---------------------------------------------------------------------


@blueprint.post("/api/v1/registrations")
@require_client(*_BOTH)
def submit_registration() -> Response:
    data, moment = json_body(), now()
    channel = data.get("channel")
    if not is_officer() and channel == "office":
        raise Problem("forbidden", "a portal client submits online registration requests only")
    with ca_transaction() as session:
        row = registrations.submit_registration(
            session, data, channel=str(channel), now=moment, actor=actor()
        )
        view = registration_json(row, now=moment, officer=is_officer())
    return reply(view, 201, location=f"/api/v1/registrations/{view['id']}")


@blueprint.get("/api/v1/registrations")
@require_client(*_BOTH)
def list_registrations() -> Response:
    status, moment = request.args.get("status") or None, now()
    with ca_transaction() as session:
        rows = registrations.list_registrations(
            session, status, visible_inns(session), submitted_by=actor()
        )
        officer = is_officer()
        views = [registration_json(r, now=moment, officer=officer) for r in rows]
    return reply({"registrations": views})


@blueprint.get("/api/v1/registrations/<int:request_id>")
@require_client(*_BOTH)
def show_registration(request_id: int) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = _registration_visible(session, _id(request_id, "registration request"))
        return reply(registration_json(row, now=moment, officer=is_officer()))


@blueprint.post("/api/v1/registrations/<int:request_id>/approve")
@require_client(_OFFICER)
def approve_registration(request_id: int) -> Response:
    data, moment = _body_or_empty(), now()
    with ca_transaction() as session:
        row = registrations.approve_registration(
            session,
            _id(request_id, "registration request"),
            now=moment,
            actor=actor(),
            note=data.get("note"),
        )
        if (client_id := submitter_client(session, row)) is not None:
            grant(session, client_id=client_id, inn=row.inn, now=moment, actor=actor())
        return reply(registration_json(row, now=moment, officer=True))


@blueprint.post("/api/v1/registrations/<int:request_id>/reject")
@require_client(_OFFICER)
def reject_registration(request_id: int) -> Response:
    data, moment = json_body(), now()
    with ca_transaction() as session:
        row = registrations.reject_registration(
            session,
            _id(request_id, "registration request"),
            note=data.get("note"),
            now=moment,
            actor=actor(),
        )
        return reply(registration_json(row, now=moment, officer=True))


# --- powers of attorney ------------------------------------------------------------------------


@blueprint.post("/api/v1/powers-of-attorney")
@require_client(*_BOTH)
def create_power() -> Response:
    data, moment = json_body(), now()
    holder_id = data.get("holder_id")
    with ca_transaction() as session:
        if isinstance(holder_id, int) and not isinstance(holder_id, bool) and holder_id > 0:
            _holder_visible(session, _id(holder_id, "holder"))  # scope before anything else
        row, created = powers.create_power(session, data, now=moment, actor=actor())
        view = power_json(row, now=moment)
    location = f"/api/v1/powers-of-attorney?holder_id={view['holder_id']}"
    return reply(view, 201 if created else 200, location=location)


@blueprint.get("/api/v1/powers-of-attorney")
@require_client(*_BOTH)
def list_powers() -> Response:
    raw, moment = request.args.get("holder_id", ""), now()
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= _MAX_ID):
        raise Problem(
            "validation-failed",
            "holder_id: a holder id is required",
            errors={"holder_id": "a holder id (a positive whole number)"},
        )
    with ca_transaction() as session:
        _holder_visible(session, int(raw))
        return reply(powers_json(session, int(raw), now=moment))


@blueprint.post("/api/v1/powers-of-attorney/<int:power_id>/revoke")
@require_client(*_BOTH)
def revoke_power(power_id: int) -> Response:
    data, moment = json_body(), now()
    with ca_transaction() as session:
        power = powers.get_power(session, _id(power_id, "power of attorney"))
        _holder_visible(session, power.holder_id)
        row = powers.revoke_power(
            session, power.id, note=data.get("note"), now=moment, actor=actor()
        )
        return reply(power_json(row, now=moment))


# --- this module's part of /openapi.json -------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_PROBLEM = {"$ref": "#/components/responses/Problem"}
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
_INN = {"type": "string", "pattern": "^[0-9]{14}$"}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_DAY = {"type": "string", "format": "date"}
_ID = {"type": "integer", "minimum": 1}
_TEXT_NULL = {"type": ["string", "null"]}


def _text(limit: int, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": limit}
    if description:
        schema["description"] = description
    return schema


def _path_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


_INN_PARAM = _path_param(
    "inn", "The subscriber's 14-digit INN (outside the caller's scope: 404)", _INN
)
_HOLDER_PARAM = _path_param("holder_id", "The holder's id", _ID)
_REQUEST_PARAM = _path_param("request_id", "The registration request's id", _ID)
_POWER_PARAM = _path_param("power_id", "The power of attorney's id", _ID)


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema)}}}


def _op(
    op_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    errors: tuple[str, ...] = ("401", "403", "404", "422"),
    **more: Any,
) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "summary": summary,
        "tags": ["registry"],
        "security": _SECURITY,
        "responses": {**responses, **{code: _PROBLEM for code in errors}},
        **more,
    }


_WRITE_ERRORS = ("400", "401", "403", "404", "409", "422")

_SUBSCRIBER_FIELDS: dict[str, Any] = {
    "inn": _INN,
    "name": _text(64, "As in the certificate's organizationName (X.520: 64 characters)"),
    "legal_form": _text(64, "ОсОО, ОАО, ИП, ..."),
    "locality": _text(128, "City or village (§18.2.2)"),
    "email": {"type": "string", "format": "email", "maxLength": 254},
}
_HOLDER_FIELDS: dict[str, Any] = {
    "full_name": _text(64, "Surname Given [Patronymic], as in the passport"),
    "position": _text(64),
    "passport_series": _text(32, "ID1234567, AN 1234567, ..."),
    "email": {"type": "string", "format": "email", "maxLength": 254},
    "phone": {"type": "string", "pattern": r"^\+?[0-9 -]{7,32}$", "examples": ["+996555123456"]},
}
_POWER_FIELDS: dict[str, Any] = {
    "holder_id": _ID,
    "taxpayer_inn": _INN,
    "taxpayer_name": _text(200),
    "taxpayer_legal_form": _text(64),
    "taxpayer_locality": _text(128),
    "document_number": _text(64),
    "issued_on": {**_DAY, "description": "On or before valid_from"},
    "valid_from": {**_DAY, "description": "First day (Bishkek), included"},
    "valid_until": {**_DAY, "description": "Last day (Bishkek), included; not before valid_from"},
}
_NOTE = {
    "type": "object",
    "required": ["note"],
    "properties": {"note": _text(2000, "The reason, kept with the decision")},
}
_ROLES = [
    "head",
    "accountant",
    "head_as_accountant",
    "complex_5",
    "complex_10",
    "complex_unlimited",
]

_SCHEMAS: dict[str, Any] = {
    "SubscriberInput": {
        "type": "object",
        "required": list(_SUBSCRIBER_FIELDS),
        "properties": _SUBSCRIBER_FIELDS,
    },
    "SubscriberChanges": {
        "type": "object",
        "description": "Any of the requisites but the INN",
        "additionalProperties": False,
        "properties": {k: v for k, v in _SUBSCRIBER_FIELDS.items() if k != "inn"},
    },
    "Subscriber": {
        "type": "object",
        "required": ["inn", "name", "legal_form", "locality", "email", "status", "created_at"],
        "properties": {
            **_SUBSCRIBER_FIELDS,
            "status": {"type": "string", "enum": ["active", "closed"]},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "SubscriberList": {
        "type": "object",
        "properties": {"subscribers": {"type": "array", "items": _ref("Subscriber")}},
    },
    "HolderInput": {
        "type": "object",
        "required": ["inn", *_HOLDER_FIELDS],
        "properties": {"inn": _INN, **_HOLDER_FIELDS},
    },
    "HolderChanges": {
        "type": "object",
        "additionalProperties": False,
        "properties": _HOLDER_FIELDS,
    },
    "Holder": {
        "type": "object",
        "required": ["id", "inn", "full_name", "surname", "given_name", "position", "status"],
        "properties": {
            "id": _ID,
            "inn": _INN,
            **_HOLDER_FIELDS,
            "passport_series": {
                **_HOLDER_FIELDS["passport_series"],
                "description": "Officers only",
            },
            "surname": {"type": "string"},
            "given_name": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "inactive"]},
        },
    },
    "HolderList": {
        "type": "object",
        "properties": {"inn": _INN, "holders": {"type": "array", "items": _ref("Holder")}},
    },
    "RegistrationInput": {
        "type": "object",
        "required": ["channel", "subscriber", "holder", "role", "storage"],
        "properties": {
            "channel": {
                "type": "string",
                "enum": ["office", "online"],
                "description": "A portal submits online requests only",
            },
            "subscriber": _ref("SubscriberInput"),
            "holder": {
                "type": "object",
                "required": list(_HOLDER_FIELDS),
                "properties": _HOLDER_FIELDS,
            },
            "role": {"type": "string", "enum": _ROLES},
            "storage": {"type": "string", "enum": ["cloud", "rutoken"]},
        },
    },
    "Registration": {
        "type": "object",
        "required": ["id", "channel", "status", "inn", "deadline_at", "overdue"],
        "properties": {
            "id": _ID,
            "channel": {"type": "string", "enum": ["office", "online"]},
            "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
            "inn": _INN,
            "subscriber": {"type": "object", "properties": _SUBSCRIBER_FIELDS},
            "holder": {
                "type": "object",
                "description": "The submitted holder; passport_series for officers only",
                "properties": _HOLDER_FIELDS,
            },
            "role": {"type": "string", "enum": _ROLES},
            "storage": {"type": "string", "enum": ["cloud", "rutoken"]},
            "submitted_at": {"type": "string", "format": "date-time"},
            "submitted_by": {"type": "string"},
            "deadline_at": {
                "type": "string",
                "format": "date-time",
                "description": "§3.3: 24 hours at the office; end of the 7th working day online",
            },
            "overdue": {"type": "boolean", "description": "Pending past its deadline"},
            "decided_at": _TIME,
            "decided_by": _TEXT_NULL,
            "decision_note": _TEXT_NULL,
            "holder_id": {"type": ["integer", "null"]},
            "tariff": {"type": "string", "examples": ["cert:head"]},
            "amount_due": {
                "type": "integer",
                "description": "tyiyn: the price on approval (today's while not approved)",
            },
            "payment": {
                "type": ["string", "null"],
                "enum": ["payment_account", "balance", None],
                "description": "Approved: paid to payment_account, or (later certificates) "
                "debited from the balance",
            },
            "payment_account": {"type": ["string", "null"], "pattern": "^[0-9]{16}$"},
        },
    },
    "RegistrationList": {
        "type": "object",
        "properties": {"registrations": {"type": "array", "items": _ref("Registration")}},
    },
    "Approval": {
        "type": "object",
        "properties": {"note": _text(2000, "Optional remark kept with the decision")},
    },
    "Rejection": _NOTE,
    "PowerInput": {
        "type": "object",
        "required": list(_POWER_FIELDS),
        "properties": _POWER_FIELDS,
    },
    "Power": {
        "type": "object",
        "required": ["id", *_POWER_FIELDS, "valid_today"],
        "properties": {
            "id": _ID,
            **_POWER_FIELDS,
            "valid_today": {"type": "boolean", "description": "Unrevoked and valid today"},
            "created_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": "string"},
            "revoked_at": _TIME,
            "revoked_by": _TEXT_NULL,
            "revocation_note": _TEXT_NULL,
        },
    },
    "PowerList": {
        "type": "object",
        "properties": {
            "holder_id": _ID,
            "on": _DAY,
            "valid_taxpayers": {
                "type": "array",
                "items": _INN,
                "description": "Taxpayers the holder may file for today",
            },
            "powers": {"type": "array", "items": _ref("Power")},
        },
    },
    "PowerRevocation": _NOTE,
}


def _created(summary_schema: str, *, replay: bool) -> dict[str, Any]:
    found = {"201": _json("Created", summary_schema)}
    if replay:
        found["200"] = _json("Replay: the same data again, nothing written", summary_schema)
    return found


OPENAPI: dict[str, Any] = {
    "paths": {
        "/api/v1/subscribers": {
            "post": _op(
                "createSubscriber",
                "Register a subscriber and open its billing account; a portal gets it in scope",
                _created("Subscriber", replay=True),
                errors=_WRITE_ERRORS,
                requestBody=_body("SubscriberInput"),
            ),
            "get": _op(
                "listSubscribers",
                "The subscribers in the caller's scope (an officer: all)",
                {"200": _json("Subscribers by INN", "SubscriberList")},
                errors=("401", "403"),
            ),
        },
        "/api/v1/subscribers/{inn}": {
            "get": _op(
                "getSubscriber",
                "A subscriber's requisites",
                {"200": _json("The subscriber", "Subscriber")},
                parameters=[_INN_PARAM],
            ),
            "patch": _op(
                "changeSubscriber",
                "Change requisites (officer); the next renewal then goes to an officer",
                {"200": _json("The subscriber", "Subscriber")},
                errors=_WRITE_ERRORS,
                parameters=[_INN_PARAM],
                requestBody=_body("SubscriberChanges"),
            ),
        },
        "/api/v1/subscribers/{inn}/foreign-access": {
            "post": _op(
                "addForeignAccess",
                "Register a static IP for access from abroad (officer, §3.6)",
                {
                    "201": {
                        "description": "registered",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                errors=_WRITE_ERRORS,
                parameters=[_INN_PARAM],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["address", "location", "valid_from", "valid_until"],
                                "properties": {
                                    "address": {"type": "string"},
                                    "location": {"type": "string"},
                                    "valid_from": {"type": "string", "format": "date"},
                                    "valid_until": {"type": "string", "format": "date"},
                                },
                            }
                        }
                    },
                },
            ),
            "get": _op(
                "listForeignAccess",
                "The static IPs a subscriber may use from abroad",
                {
                    "200": {
                        "description": "the list",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                parameters=[_INN_PARAM],
            ),
        },
        "/api/v1/subscribers/{inn}/holders": {
            "get": _op(
                "listSubscriberHolders",
                "The holders of a subscriber",
                {"200": _json("Holders", "HolderList")},
                parameters=[_INN_PARAM],
            )
        },
        "/api/v1/holders": {
            "post": _op(
                "createHolder",
                "Register a holder for a subscriber in the caller's scope",
                _created("Holder", replay=False),
                errors=_WRITE_ERRORS,
                requestBody=_body("HolderInput"),
            )
        },
        "/api/v1/holders/{holder_id}": {
            "get": _op(
                "getHolder",
                "A holder (the passport series for officers only)",
                {"200": _json("The holder", "Holder")},
                parameters=[_HOLDER_PARAM],
            ),
            "patch": _op(
                "changeHolder",
                "Change a holder's requisites (officer)",
                {"200": _json("The holder", "Holder")},
                errors=_WRITE_ERRORS,
                parameters=[_HOLDER_PARAM],
                requestBody=_body("HolderChanges"),
            ),
        },
        "/api/v1/registrations": {
            "post": _op(
                "submitRegistration",
                "Submit a registration request (§3.3); a portal submits online ones only",
                _created("Registration", replay=False),
                errors=_WRITE_ERRORS,
                requestBody=_body("RegistrationInput"),
            ),
            "get": _op(
                "listRegistrations",
                "Registration requests (a portal: those it submitted or within its scope)",
                {"200": _json("Requests, oldest first", "RegistrationList")},
                errors=("401", "403", "422"),
                parameters=[
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["pending", "approved", "rejected"]},
                    }
                ],
            ),
        },
        "/api/v1/registrations/{request_id}": {
            "get": _op(
                "getRegistration",
                "A registration request with its deadline and whether it is overdue",
                {"200": _json("The request", "Registration")},
                parameters=[_REQUEST_PARAM],
            )
        },
        "/api/v1/registrations/{request_id}/approve": {
            "post": _op(
                "approveRegistration",
                "Approve (officer): subscriber, holder, billing account and the 16-digit "
                "payment account of the first certificate; again: the same answer",
                {"200": _json("The approved request", "Registration")},
                errors=_WRITE_ERRORS,
                parameters=[_REQUEST_PARAM],
                requestBody=_body("Approval", required=False),
            )
        },
        "/api/v1/registrations/{request_id}/reject": {
            "post": _op(
                "rejectRegistration",
                "Reject with a reason (officer)",
                {"200": _json("The rejected request", "Registration")},
                errors=_WRITE_ERRORS,
                parameters=[_REQUEST_PARAM],
                requestBody=_body("Rejection"),
            )
        },
        "/api/v1/powers-of-attorney": {
            "post": _op(
                "createPowerOfAttorney",
                "Record a served taxpayer's power of attorney for a holder (§3.2)",
                _created("Power", replay=True),
                errors=_WRITE_ERRORS,
                requestBody=_body("PowerInput"),
            ),
            "get": _op(
                "listPowersOfAttorney",
                "A holder's powers of attorney and the taxpayers it may file for today",
                {"200": _json("Powers of attorney", "PowerList")},
                parameters=[
                    {
                        "name": "holder_id",
                        "in": "query",
                        "required": True,
                        "schema": _ID,
                    }
                ],
            ),
        },
        "/api/v1/powers-of-attorney/{power_id}/revoke": {
            "post": _op(
                "revokePowerOfAttorney",
                "Revoke a power of attorney (§4.3.10); final",
                {"200": _json("The revoked power", "Power")},
                errors=_WRITE_ERRORS,
                parameters=[_POWER_PARAM],
                requestBody=_body("PowerRevocation"),
            )
        },
    },
    "components": {"schemas": _SCHEMAS},
}

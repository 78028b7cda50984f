"""HTTP routes of the billing domain under ``/api/v1/accounts`` (JSON, bearer-token clients).

Thin views: parse and check the request, call :mod:`billing` with a session in a transaction,
render. Amounts are integer tyiyn in JSON, except the ``amount`` query parameter of a payment
invoice, which is som with at most two decimals as a person types it. Dates in query strings
are Asia/Bishkek calendar days, ``to`` included.

Who may call: officers everything; the reporting portal reads (GET) any account on behalf of
its subscribers; agencies and commissions nothing. Money-moving POSTs are idempotent by their
business identity (the INN, the receipt number, the purpose, the termination itself); an
``Idempotency-Key`` header is accepted for uniformity with the other APIs and echoed back.

The JSON views (``account_json`` ...) are plain functions of a session so that the CLI prints
exactly what the API answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, Response, g, request
from sqlalchemy.orm import Session

import billing
from billing.document_data import (
    DOCUMENT_KINDS,
    PAYMENT_SERVICES,
    DocumentRequest,
    account_period,
    day_bounds,
    document_for,
    local_date,
    render,
)
from billing.models import Termination
from billing.termination import TerminationInfo, debt_outstanding
from policies.identifiers import is_inn
from policies.money import MAX_AMOUNT, parse_som
from policies.roles import ClientRole
from policies.tariffs import TARIFFS, UnknownTariff
from signing_api.web import context
from signing_api.web.auth import require_client
from signing_api.web.context import actor, reply, runtime, transaction
from signing_api.web.problems import Problem

__all__ = [
    "OPENAPI",
    "account_json",
    "blueprint",
    "parse_day",
    "parse_month",
    "parse_som",
    "receipts_json",
    "statement_json",
    "termination_json",
]

blueprint = Blueprint("billing_api", __name__)

_READERS = (ClientRole.OFFICER, ClientRole.PORTAL)
_OFFICER = ClientRole.OFFICER

# --- reading requests --------------------------------------------------------------------------

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_ID = re.compile(r"[1-9]\d{0,17}")
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def parse_day(text: str) -> date:
    """A YYYY-MM-DD calendar day; ValueError otherwise."""
    if not _DAY.fullmatch(text):
        raise ValueError("a day as YYYY-MM-DD")
    day = date.fromisoformat(text)
    if day.year < 1900 or day >= date(9999, 12, 31):
        raise ValueError("a day between 1900 and 9998")
    return day


class _Fields:
    """Collects field errors so that one 422 names every bad field at once."""

    def __init__(self, source: Mapping[str, Any]) -> None:
        self.source = source
        self.errors: dict[str, str] = {}

    def _get(self, name: str, required: bool) -> Any:
        value = self.source.get(name)
        if value is None and required:
            self.errors[name] = "required"
        return value

    def text(self, name: str, *, max_length: int, required: bool = True) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or not " ".join(value.split()):
            self.errors[name] = "a non-empty string"
            return None
        value = " ".join(value.split())
        if len(value) > max_length:
            self.errors[name] = f"at most {max_length} characters"
            return None
        return value

    def inn(self, name: str) -> str | None:
        value = self._get(name, True)
        if value is not None and not (isinstance(value, str) and is_inn(value)):
            self.errors[name] = "a 14-digit INN"
            return None
        return value if isinstance(value, str) else None

    def tyiyn(self, name: str, *, required: bool = True, zero: bool = False) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.errors[name] = "a whole number of tyiyn (1 som = 100 tyiyn)"
            return None
        if value > MAX_AMOUNT:
            self.errors[name] = "implausibly large"
            return None
        if value < 0 or (value == 0 and not zero):
            self.errors[name] = "zero or a positive amount" if zero else "a positive amount"
            return None
        return value

    def parsed(self, name: str, parse: Callable[[str], Any], *, required: bool) -> Any:
        value = self._get(name, required)
        if value is None or value == "":
            if required and value == "":
                self.errors[name] = "required"
            return None
        try:
            return parse(value)
        except ValueError as ex:
            self.errors[name] = str(ex)
            return None

    def check(self, ok: bool, name: str, message: str) -> None:
        if not ok and name not in self.errors:
            self.errors[name] = message

    def done(self) -> None:
        if self.errors:
            fields = ", ".join(sorted(self.errors))
            raise Problem("validation-failed", f"invalid fields: {fields}", errors=self.errors)


def _body() -> _Fields:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Problem("bad-request", "the body must be a JSON object (application/json)")
    return _Fields(data)


def _path_inn(inn: str) -> str:
    """The INN in a path, which the caller may see.

    A malformed INN names no resource: 404, like an unknown one. A portal sees only the
    subscribers in its scope (``client_subscribers``, docs/architecture.md); any other INN
    answers 404 too, so that a portal cannot learn whether a company is a subscriber.
    """
    if not is_inn(inn):
        raise Problem("not-found", f"{inn[:40]!r} is not a 14-digit INN: no such account")
    if g.client_role is not ClientRole.OFFICER:
        from signing_api.clients import ClientSubscriber

        with runtime().transaction() as session:
            if session.get(ClientSubscriber, (g.client_id, inn)) is None:
                raise Problem("not-found", f"no account {inn} is visible to this client")
    return inn


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.fullmatch(key):
        raise Problem("bad-request", "Idempotency-Key is 1-200 visible ASCII characters")
    return key


def _period(fields: _Fields, *, required: bool) -> tuple[date | None, date | None]:
    start = fields.parsed("from", parse_day, required=required)
    end = fields.parsed("to", parse_day, required=required)
    if start is not None and end is not None:
        fields.check(end >= start, "to", "the period ends before it starts")
    return start, end


# --- JSON views (shared with the CLI) ----------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def termination_json(info: TerminationInfo, *, opened_on: date) -> dict[str, Any]:
    ended = local_date(info.terminated_at)
    return {
        "inn": info.inn,
        "terminated_at": _iso(info.terminated_at),
        "reason": info.reason,
        "refund": info.refund,
        "debt": info.debt,
        "debt_due_on": info.debt_due_on.isoformat(),
        "transaction_id": info.transaction_id,
        "final_act": f"/api/v1/accounts/{info.inn}/documents/act?from={opened_on}&to={ended}",
    }


def account_json(session: Session, inn: str, *, now: datetime) -> dict[str, Any]:
    """``{inn, name, posted, held, available, status, ...}``; status: the service state."""
    balance = billing.balance(session, inn)
    state = billing.service_state(session, inn, now=now)
    view: dict[str, Any] = {
        "inn": balance.inn,
        "name": balance.name,
        "posted": balance.posted,
        "held": balance.held,
        "available": balance.available,
        "status": state.state,
        "status_reason": state.reason,
        "may_suspend": state.may_suspend,
        "last_payment_at": _iso(state.last_payment_at),
        "termination": None,
    }
    record = session.get(Termination, inn)
    if record is not None:
        opened_on, _ = account_period(session, inn)
        view["termination"] = termination_json(
            TerminationInfo.of(record, replayed=False), opened_on=opened_on
        )
        view["termination"]["owed"] = debt_outstanding(session, inn)[1]
    return view


def _receipt_json(receipt: billing.Receipt) -> dict[str, Any]:
    return {
        "id": receipt.id,
        "amount": receipt.amount,
        "paid_at": _iso(receipt.paid_at),
        "recorded_at": _iso(receipt.recorded_at),
        "channel": receipt.channel,
        "provider": receipt.provider,
        "service": receipt.service,
        "account": receipt.account,
        "external_id": receipt.external_id,
        "transaction_id": receipt.transaction_id,
    }


def receipts_json(
    session: Session, inn: str, start_day: date | None, end_day: date | None
) -> dict[str, Any]:
    """The subscriber's receipts ("Поступления") recorded on Bishkek days in the period."""
    start = day_bounds(start_day, start_day)[0] if start_day else None
    end = day_bounds(end_day, end_day)[1] if end_day else None
    found = billing.receipts(session, inn, start, end)
    return {
        "inn": inn,
        "from": start_day.isoformat() if start_day else None,
        "to": end_day.isoformat() if end_day else None,
        "total": sum(r.amount for r in found),
        "receipts": [_receipt_json(r) for r in found],
    }


def statement_json(session: Session, inn: str, start_day: date, end_day: date) -> dict[str, Any]:
    """The statement for Bishkek days ``start_day``..``end_day`` (inclusive)."""
    found = billing.statement(session, inn, *day_bounds(start_day, end_day))
    return {
        "inn": inn,
        "name": found.name,
        "from": start_day.isoformat(),
        "to": end_day.isoformat(),
        "start": _iso(found.start),
        "end": _iso(found.end),
        "opening": found.opening,
        "closing": found.closing,
        "total_in": found.total_in,
        "total_out": found.total_out,
        "lines": [
            {
                "transaction_id": line.transaction_id,
                "occurred_at": _iso(line.occurred_at),
                "kind": line.kind,
                "description": line.description,
                "amount": line.amount,
                "balance_after": line.balance_after,
            }
            for line in found.lines
        ],
    }


def _payment_account_json(info: billing.PaymentAccountInfo) -> dict[str, Any]:
    return {
        "number": info.number,
        "inn": info.inn,
        "purpose": info.purpose,
        "tariff": info.tariff,
        "amount_due": info.amount_due,
        "status": info.status,
    }


# --- routes ------------------------------------------------------------------------------------

_ACCOUNT = "/api/v1/accounts/<inn>"


@blueprint.post("/api/v1/accounts")
@require_client(_OFFICER)
def open_account() -> Response:
    fields = _body()
    inn, name = fields.inn("inn"), fields.text("name", max_length=300)
    fields.done()
    assert inn is not None and name is not None  # noqa: S101 - done() raised otherwise
    _idempotency_key()
    now = context.now()
    with transaction() as session:
        _, created = billing.open_account(session, inn=inn, name=name, now=now, actor=actor())
        view = account_json(session, inn, now=now)
    return reply(view, 201 if created else 200, location=f"/api/v1/accounts/{inn}")


@blueprint.get(_ACCOUNT)
@require_client(*_READERS)
def show_account(inn: str) -> Response:
    inn = _path_inn(inn)
    now = context.now()
    with transaction() as session:
        return reply(account_json(session, inn, now=now), 200)


@blueprint.get(f"{_ACCOUNT}/receipts")
@require_client(*_READERS)
def list_receipts(inn: str) -> Response:
    inn = _path_inn(inn)
    fields = _Fields(request.args)
    start, end = _period(fields, required=False)
    fields.done()
    with transaction() as session:
        return reply(receipts_json(session, inn, start, end), 200)


@blueprint.get(f"{_ACCOUNT}/statement")
@require_client(*_READERS)
def show_statement(inn: str) -> Response:
    inn = _path_inn(inn)
    fields = _Fields(request.args)
    start, end = _period(fields, required=True)
    fields.done()
    assert start is not None and end is not None  # noqa: S101
    with transaction() as session:
        return reply(statement_json(session, inn, start, end), 200)


@blueprint.post(f"{_ACCOUNT}/cash-receipts")
@require_client(_OFFICER)
def record_cash_receipt(inn: str) -> Response:
    inn = _path_inn(inn)
    fields = _body()
    number = fields.text("number", max_length=100)
    amount = fields.tyiyn("amount")
    fields.done()
    assert number is not None and amount is not None  # noqa: S101
    _idempotency_key()
    now = context.now()
    with transaction() as session:
        try:
            receipt = billing.record_payment(
                session,
                channel="cash",
                provider="",
                external_id=number,
                account=inn,
                amount=amount,
                paid_at=now,
                now=now,
                actor=actor(),
            )
        except billing.AmountTooLarge as ex:
            # A terminated account takes cash only against its debt; say why it was refused.
            if billing.balance(session, inn).status == "terminated":
                raise billing.AccountTerminated(
                    f"the contract of {inn} is terminated: {ex}"
                ) from ex
            raise
    body = _receipt_json(receipt)
    return reply(
        body, 200 if receipt.replayed else 201, location=f"/api/v1/accounts/{inn}/receipts"
    )


@blueprint.post(f"{_ACCOUNT}/payment-accounts")
@require_client(_OFFICER)
def issue_payment_account(inn: str) -> Response:
    inn = _path_inn(inn)
    fields = _body()
    tariff = fields.text("tariff", max_length=64)
    purpose = fields.text("purpose", max_length=120, required=False) or f"cert:first:{inn}"
    fields.check(tariff is None or tariff.startswith("cert:"), "tariff", "a certificate tariff")
    now = context.now()
    price = None
    if tariff is not None and "tariff" not in fields.errors:
        try:
            price = TARIFFS.price(tariff, local_date(now)).price
        except UnknownTariff as ex:
            fields.errors["tariff"] = str(ex.args[0])
    fields.done()
    assert tariff is not None and price is not None  # noqa: S101
    _idempotency_key()
    with transaction() as session:
        if billing.balance(session, inn).status == "terminated":
            raise billing.AccountTerminated(f"the contract of {inn} is terminated")
        info = billing.issue_payment_account(
            session, inn=inn, purpose=purpose, tariff=tariff, amount_due=price, now=now,
            actor=actor(),
        )  # fmt: skip
    return reply(_payment_account_json(info), 201 if info.created else 200)


@blueprint.post(f"{_ACCOUNT}/termination")
@require_client(_OFFICER)
def terminate(inn: str) -> Response:
    inn = _path_inn(inn)
    fields = _body()
    reason = fields.text("reason", max_length=2000)
    debt = fields.tyiyn("debt", required=False, zero=True) or 0
    fields.done()
    assert reason is not None  # noqa: S101
    _idempotency_key()
    now = context.now()
    with transaction() as session:
        info = billing.terminate(session, inn=inn, reason=reason, debt=debt, now=now, actor=actor())
        opened_on, _ = account_period(session, inn)
    body = termination_json(info, opened_on=opened_on)
    return reply(body, 200 if info.replayed else 201, location=body["final_act"])


def _document_request(kind: str) -> DocumentRequest:
    fields = _Fields(request.args)
    if kind == "act":
        start, end = _period(fields, required=True)
        fields.done()
        return DocumentRequest(kind, start_day=start, end_day=end)
    if kind == "invoice":
        txn = fields.parsed("transaction", _parse_id, required=False)
        month = fields.parsed("month", parse_month, required=False)
        given = ("transaction" in request.args) + ("month" in request.args)
        fields.check(given == 1, "transaction", "give either transaction or month")
        fields.done()
        return DocumentRequest(kind, transaction_id=txn, month=month)
    service = fields.parsed("service", _parse_service, required=True)
    amount = fields.parsed("amount", parse_som, required=True)
    fields.done()
    return DocumentRequest(kind, service=service, amount=amount)


def _parse_id(text: str) -> int:
    if not _ID.fullmatch(text):
        raise ValueError("a ledger transaction id (a positive whole number)")
    return int(text)


def parse_month(text: str) -> tuple[int, int]:
    match = _MONTH.fullmatch(text)
    if match is None or not 1900 <= int(match.group(1)) <= 9998:
        raise ValueError("a month as YYYY-MM, years 1900-9998")
    return int(match.group(1)), int(match.group(2))


def _parse_service(text: str) -> str:
    if text not in PAYMENT_SERVICES:
        raise ValueError(f"one of {', '.join(PAYMENT_SERVICES)}")
    return text


@blueprint.get(f"{_ACCOUNT}/documents/<kind>")
@require_client(*_READERS)
def document(inn: str, kind: str) -> Response:
    inn = _path_inn(inn)
    if kind not in DOCUMENT_KINDS:
        raise Problem("not-found", f"no document {kind[:40]!r}; one of {', '.join(DOCUMENT_KINDS)}")
    wanted = _document_request(kind)
    today = local_date(context.now())
    with transaction() as session:
        data = document_for(session, inn, wanted, today=today)
    response = Response(render(data), mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{wanted.filename(inn, today)}"'
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- this module's part of /openapi.json -------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_PROBLEM = {"$ref": "#/components/responses/Problem"}
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
_INN_PARAM = {
    "name": "inn",
    "in": "path",
    "required": True,
    "description": "The subscriber's 14-digit INN; a malformed one is a 404 like an unknown one",
    "schema": {"type": "string", "pattern": "^[0-9]{14}$"},
}
_IDEMPOTENCY_PARAM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Accepted and echoed back; the business identity (INN, receipt number, purpose, the "
        "termination) already makes this request idempotent"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
_TYIYN = {"type": "integer", "minimum": 1, "description": "tyiyn (1 som = 100 tyiyn)"}
_MONEY = {"type": "integer", "description": "tyiyn (1 som = 100 tyiyn)"}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def _day_param(name: str, required: bool, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": f"{what} (Asia/Bishkek calendar day, YYYY-MM-DD, included)",
        "schema": {"type": "string", "format": "date"},
    }


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _operation(op_id: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    errors = {code: _PROBLEM for code in ("401", "403", "404", "422")}
    return {
        "operationId": op_id,
        "summary": summary,
        "tags": ["billing"],
        "security": _SECURITY,
        "responses": {**responses, **errors},
        **more,
    }


def _post(
    op_id: str, summary: str, body: str, result: str, *, by_inn: bool = True
) -> dict[str, Any]:
    responses = {
        "201": _json_response("Done", result),
        "200": _json_response("Replay: the first answer, nothing written again", result),
        "400": _PROBLEM,
        "409": _PROBLEM,
    }
    parameters = [_INN_PARAM, _IDEMPOTENCY_PARAM] if by_inn else [_IDEMPOTENCY_PARAM]
    return _operation(
        op_id, summary, responses, parameters=parameters, requestBody=_json_body(body)
    )


_SCHEMAS: dict[str, Any] = {
    "AccountOpening": {
        "type": "object",
        "required": ["inn", "name"],
        "properties": {
            "inn": {"type": "string", "pattern": "^[0-9]{14}$"},
            "name": {"type": "string", "minLength": 1, "maxLength": 300},
        },
    },
    "Account": {
        "type": "object",
        "required": ["inn", "name", "posted", "held", "available", "status"],
        "properties": {
            "inn": {"type": "string"},
            "name": {"type": "string"},
            "posted": _MONEY,
            "held": _MONEY,
            "available": _MONEY,
            "status": {
                "type": "string",
                "enum": ["active", "stopped", "terminated"],
                "description": "Service state: stopped at zero balance (§3.9.2)",
            },
            "status_reason": {"type": "string"},
            "may_suspend": {
                "type": "boolean",
                "description": "No payment for more than 30 days (§5.3)",
            },
            "last_payment_at": _TIME,
            "termination": {"oneOf": [{"type": "null"}, _ref("Termination")]},
        },
    },
    "Receipt": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "amount": _TYIYN,
            "paid_at": {"type": "string", "format": "date-time"},
            "recorded_at": {"type": "string", "format": "date-time"},
            "channel": {"type": "string", "enum": ["osmp", "bank", "cash"]},
            "provider": {"type": "string"},
            "service": {"type": "string", "enum": ["sochi", "eds", "debt"]},
            "account": {"type": "string"},
            "external_id": {"type": "string"},
            "transaction_id": {"type": "integer"},
        },
    },
    "Receipts": {
        "type": "object",
        "properties": {
            "inn": {"type": "string"},
            "from": {"type": ["string", "null"], "format": "date"},
            "to": {"type": ["string", "null"], "format": "date"},
            "total": _MONEY,
            "receipts": {"type": "array", "items": _ref("Receipt")},
        },
    },
    "Statement": {
        "type": "object",
        "properties": {
            "inn": {"type": "string"},
            "name": {"type": "string"},
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "opening": _MONEY,
            "closing": _MONEY,
            "total_in": _MONEY,
            "total_out": _MONEY,
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "transaction_id": {"type": "integer"},
                        "occurred_at": {"type": "string", "format": "date-time"},
                        "kind": {"type": "string"},
                        "description": {"type": "string"},
                        "amount": {
                            "type": "integer",
                            "description": "> 0 paid in, < 0 charged or paid out (tyiyn)",
                        },
                        "balance_after": _MONEY,
                    },
                },
            },
        },
    },
    "CashReceipt": {
        "type": "object",
        "required": ["number", "amount"],
        "properties": {
            "number": {"type": "string", "minLength": 1, "maxLength": 100},
            "amount": _TYIYN,
        },
    },
    "PaymentAccountRequest": {
        "type": "object",
        "required": ["tariff"],
        "properties": {
            "tariff": {"type": "string", "pattern": "^cert:", "examples": ["cert:head"]},
            "purpose": {
                "type": "string",
                "maxLength": 120,
                "description": "Default cert:first:<inn>",
            },
        },
    },
    "PaymentAccount": {
        "type": "object",
        "properties": {
            "number": {"type": "string", "pattern": "^[0-9]{16}$"},
            "inn": {"type": "string"},
            "purpose": {"type": "string"},
            "tariff": {"type": "string"},
            "amount_due": _TYIYN,
            "status": {"type": "string", "enum": ["open", "paid", "cancelled"]},
        },
    },
    "TerminationRequest": {
        "type": "object",
        "required": ["reason"],
        "properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
            "debt": {**_MONEY, "minimum": 0, "description": "Debt found by the final act"},
        },
    },
    "Termination": {
        "type": "object",
        "properties": {
            "inn": {"type": "string"},
            "terminated_at": {"type": "string", "format": "date-time"},
            "reason": {"type": "string"},
            "refund": _MONEY,
            "debt": _MONEY,
            "debt_due_on": {"type": "string", "format": "date"},
            "transaction_id": {"type": ["integer", "null"]},
            "final_act": {"type": "string", "description": "Path of the final reconciliation act"},
            "owed": {**_MONEY, "description": "Debt and penalties still owed (account view)"},
        },
    },
}

_PDF = {
    "description": "The document",
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}

OPENAPI: dict[str, Any] = {
    "paths": {
        "/api/v1/accounts": {
            "post": _post(
                "openAccount",
                "Open a subscriber's prepaid account (officer); the same body again is a replay",
                "AccountOpening",
                "Account",
                by_inn=False,
            )
        },
        "/api/v1/accounts/{inn}": {
            "get": _operation(
                "getAccount",
                "Balance and service state",
                {"200": _json_response("The account", "Account")},
                parameters=[_INN_PARAM],
            )
        },
        "/api/v1/accounts/{inn}/receipts": {
            "get": _operation(
                "listReceipts",
                "Receipts (Поступления): amount, date, channel and provider",
                {"200": _json_response("The receipts, oldest first", "Receipts")},
                parameters=[
                    _INN_PARAM,
                    _day_param("from", False, "First day recorded"),
                    _day_param("to", False, "Last day recorded"),
                ],
            )
        },
        "/api/v1/accounts/{inn}/statement": {
            "get": _operation(
                "getStatement",
                "Every movement of the balance in a period, with opening and closing balances",
                {"200": _json_response("The statement", "Statement")},
                parameters=[
                    _INN_PARAM,
                    _day_param("from", True, "First day"),
                    _day_param("to", True, "Last day"),
                ],
            )
        },
        "/api/v1/accounts/{inn}/cash-receipts": {
            "post": _post(
                "recordCashReceipt",
                "Record a cash-desk receipt (officer); idempotent by receipt number",
                "CashReceipt",
                "Receipt",
            )
        },
        "/api/v1/accounts/{inn}/payment-accounts": {
            "post": _post(
                "issuePaymentAccount",
                "Issue a 16-digit payment account for a certificate (officer)",
                "PaymentAccountRequest",
                "PaymentAccount",
            )
        },
        "/api/v1/accounts/{inn}/termination": {
            "post": _post(
                "terminateAccount",
                "Terminate the contract (officer): balance to refunds payable, debt recorded",
                "TerminationRequest",
                "Termination",
            )
        },
        "/api/v1/accounts/{inn}/documents/{kind}": {
            "get": _operation(
                "getDocument",
                "A billing document as PDF: act (акт сверки), invoice (счет-фактура), "
                "payment-invoice (счет на оплату)",
                {"200": _PDF},
                parameters=[
                    _INN_PARAM,
                    {
                        "name": "kind",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(DOCUMENT_KINDS)},
                    },
                    _day_param("from", False, "act: first day"),
                    _day_param("to", False, "act: last day"),
                    {
                        "name": "transaction",
                        "in": "query",
                        "required": False,
                        "description": "invoice: the ledger transaction of a certificate charge",
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {
                        "name": "month",
                        "in": "query",
                        "required": False,
                        "description": "invoice: a month of reporting services, YYYY-MM",
                        "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                    },
                    {
                        "name": "service",
                        "in": "query",
                        "required": False,
                        "description": "payment-invoice: sochi (balance) or eds (certificate)",
                        "schema": {"type": "string", "enum": list(PAYMENT_SERVICES)},
                    },
                    {
                        "name": "amount",
                        "in": "query",
                        "required": False,
                        "description": "payment-invoice: som with at most two decimals",
                        "schema": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$"},
                    },
                ],
            )
        },
    },
    "components": {"schemas": _SCHEMAS},
}

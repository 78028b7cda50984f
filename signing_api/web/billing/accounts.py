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
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

import billing
from billing.document_data import (
    DOCUMENT_KINDS,
    DocumentRequest,
    account_period,
    day_bounds,
    document_for,
    local_date,
    render,
)
from billing.models import Termination as TerminationRecord
from billing.termination import TerminationInfo, debt_outstanding
from ca.termination import terminate_subscriber
from policies.dates import iso_utc, parse_month
from policies.identifiers import is_inn
from policies.money import parse_som
from policies.roles import ClientRole
from policies.tariffs import TARIFFS, UnknownTariff
from signing_api.web import context
from signing_api.web.billing.schemas import (
    Account,
    AccountOpening,
    CashReceipt,
    DocumentQuery,
    PaymentAccount,
    PaymentAccountRequest,
    Period,
    Receipt,
    Receipts,
    RequiredPeriod,
    Statement,
    Termination,
    TerminationRequest,
)
from signing_api.web.ca.revocation import after_status_changes, status_changed_in
from signing_api.web.common import require_visible
from signing_api.web.context import actor, reply, transaction
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem

__all__ = [
    "account_json",
    "blueprint",
    "receipts_json",
    "statement_json",
    "termination_json",
]

blueprint = Blueprint("billing_api", __name__)

_READERS = (ClientRole.OFFICER, ClientRole.PORTAL)
_OFFICER = ClientRole.OFFICER

# --- reading requests --------------------------------------------------------------------------

_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def _path_inn(inn: str) -> str:
    """The INN in a path, which the caller may see.

    A malformed INN names no resource: 404, like an unknown one. A portal sees only the
    subscribers in its scope (``client_subscribers``, docs/architecture.md); any other INN
    answers 404 too, so that a portal cannot learn whether a company is a subscriber.
    """
    if not is_inn(inn):
        raise Problem("not-found", f"{inn[:40]!r} is not a 14-digit INN: no such account")
    with transaction() as session:
        require_visible(session, inn, "account")
    return inn


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.fullmatch(key):
        raise Problem("bad-request", "Idempotency-Key is 1-200 visible ASCII characters")
    return key


# --- JSON views (shared with the CLI) ----------------------------------------------------------


def termination_json(info: TerminationInfo, *, opened_on: date) -> dict[str, Any]:
    ended = local_date(info.terminated_at)
    return {
        "inn": info.inn,
        "terminated_at": iso_utc(info.terminated_at),
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
        "last_payment_at": iso_utc(state.last_payment_at),
        "termination": None,
    }
    record = session.get(TerminationRecord, inn)
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
        "paid_at": iso_utc(receipt.paid_at),
        "recorded_at": iso_utc(receipt.recorded_at),
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
        "start": iso_utc(found.start),
        "end": iso_utc(found.end),
        "opening": found.opening,
        "closing": found.closing,
        "total_in": found.total_in,
        "total_out": found.total_out,
        "lines": [
            {
                "transaction_id": line.transaction_id,
                "occurred_at": iso_utc(line.occurred_at),
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
_INN_PARAM = {
    "name": "inn",
    "in": "path",
    "required": True,
    "description": "The subscriber's 14-digit INN; a malformed one is a 404 like an unknown one",
    "schema": {"type": "string"},
}
_IDEMPOTENCY_PARAM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Accepted and echoed back; the business identity (INN, receipt number, purpose, the "
        "termination) already makes this request idempotent"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
}
_KIND_PARAM = {
    "name": "kind",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": list(DOCUMENT_KINDS)},
}
_REPLAY = "Replay: the first answer, nothing written again"
_PERIOD_RULE = "the period ends before it starts (to before from)"


@blueprint.post("/api/v1/accounts")
@operation(
    "openAccount",
    "Open a subscriber's prepaid account (officer); the same body again is a replay",
    body=AccountOpening,
    responses={201: Reply(Account, "Opened"), 200: Reply(Account, _REPLAY)},
    parameters=[_IDEMPOTENCY_PARAM],
    tag="billing",
    roles=(_OFFICER,),
    errors=(400, 404, 409),
)
def open_account(body: AccountOpening) -> Response:
    _idempotency_key()
    now = context.now()
    with transaction() as session:
        _, created = billing.open_account(
            session, inn=body.inn, name=body.name, now=now, actor=actor()
        )
        view = account_json(session, body.inn, now=now)
    return reply(view, 201 if created else 200, location=f"/api/v1/accounts/{body.inn}")


@blueprint.get(_ACCOUNT)
@operation(
    "getAccount",
    "Balance and service state",
    responses={200: Reply(Account, "The account")},
    parameters=[_INN_PARAM],
    tag="billing",
    roles=_READERS,
    errors=(404,),
)
def show_account(inn: str) -> Response:
    inn = _path_inn(inn)
    now = context.now()
    with transaction() as session:
        return reply(account_json(session, inn, now=now), 200)


@blueprint.get(f"{_ACCOUNT}/receipts")
@operation(
    "listReceipts",
    "Receipts (Поступления): amount, date, channel and provider",
    query=Period,
    responses={200: Reply(Receipts, "The receipts, oldest first")},
    parameters=[_INN_PARAM],
    tag="billing",
    roles=_READERS,
    errors=(404,),
    refusals={422: _PERIOD_RULE},
)
def list_receipts(inn: str, query: Period) -> Response:
    inn = _path_inn(inn)
    with transaction() as session:
        return reply(receipts_json(session, inn, query.start, query.end), 200)


@blueprint.get(f"{_ACCOUNT}/statement")
@operation(
    "getStatement",
    "Statement (Выписка): opening balance, every movement, closing balance",
    query=RequiredPeriod,
    responses={200: Reply(Statement, "The statement")},
    parameters=[_INN_PARAM],
    tag="billing",
    roles=_READERS,
    errors=(404,),
    refusals={422: _PERIOD_RULE},
)
def show_statement(inn: str, query: RequiredPeriod) -> Response:
    inn = _path_inn(inn)
    assert query.start is not None and query.end is not None  # noqa: S101 - required fields
    with transaction() as session:
        return reply(statement_json(session, inn, query.start, query.end), 200)


@blueprint.post(f"{_ACCOUNT}/cash-receipts")
@operation(
    "recordCashReceipt",
    "Record a cash-desk receipt (officer); idempotent by receipt number",
    body=CashReceipt,
    responses={201: Reply(Receipt, "Recorded"), 200: Reply(Receipt, _REPLAY)},
    parameters=[_INN_PARAM, _IDEMPOTENCY_PARAM],
    tag="billing",
    roles=(_OFFICER,),
    errors=(400, 404, 409),
    refusals={422: "the receipt number was recorded before with another amount"},
)
def record_cash_receipt(inn: str, body: CashReceipt) -> Response:
    inn = _path_inn(inn)
    _idempotency_key()
    now = context.now()
    with transaction() as session:
        try:
            receipt = billing.record_payment(
                session,
                channel="cash",
                provider="",
                external_id=body.number,
                account=inn,
                amount=body.amount,
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
    return reply(
        _receipt_json(receipt),
        200 if receipt.replayed else 201,
        location=f"/api/v1/accounts/{inn}/receipts",
    )


@blueprint.post(f"{_ACCOUNT}/payment-accounts")
@operation(
    "issuePaymentAccount",
    "Issue a 16-digit payment account for a certificate (officer)",
    body=PaymentAccountRequest,
    responses={201: Reply(PaymentAccount, "Issued"), 200: Reply(PaymentAccount, _REPLAY)},
    parameters=[_INN_PARAM, _IDEMPOTENCY_PARAM],
    tag="billing",
    roles=(_OFFICER,),
    errors=(400, 404, 409),
    refusals={422: "the purpose was used before for a payment account with another tariff"},
)
def issue_payment_account(inn: str, body: PaymentAccountRequest) -> Response:
    inn = _path_inn(inn)
    purpose = body.purpose or f"cert:first:{inn}"
    now = context.now()
    try:
        price = TARIFFS.price(body.tariff, local_date(now)).price
    except UnknownTariff as ex:
        message = str(ex.args[0])
        raise Problem(
            "validation-failed", "invalid fields: tariff", errors={"tariff": message}
        ) from None
    _idempotency_key()
    with transaction() as session:
        if billing.balance(session, inn).status == "terminated":
            raise billing.AccountTerminated(f"the contract of {inn} is terminated")
        info = billing.issue_payment_account(
            session, inn=inn, purpose=purpose, tariff=body.tariff, amount_due=price, now=now,
            actor=actor(),
        )  # fmt: skip
    return reply(_payment_account_json(info), 201 if info.created else 200)


@blueprint.post(f"{_ACCOUNT}/termination")
@operation(
    "terminateAccount",
    "Terminate the contract (officer): balance to refunds payable, debt recorded",
    body=TerminationRequest,
    responses={201: Reply(Termination, "Terminated"), 200: Reply(Termination, _REPLAY)},
    parameters=[_INN_PARAM, _IDEMPOTENCY_PARAM],
    tag="billing",
    roles=(_OFFICER,),
    errors=(400, 404, 409),
)
def terminate(inn: str, body: TerminationRequest) -> Response:
    inn = _path_inn(inn)
    _idempotency_key()
    now = context.now()
    with transaction() as session:
        done = terminate_subscriber(
            session, inn=inn, reason=body.reason, debt=body.debt or 0, now=now, actor=actor()
        )
        info = done.info
        opened_on, _ = account_period(session, inn)
        # The certificates revoked with the contract: their delta CRL, in this transaction.
        published = status_changed_in(session, done.revoked_ids, now) if done.revoked_ids else None
    if published is not None:  # published at once after the commit; cloud keys go
        after_status_changes(done.revoked_ids, now, published)
    view = termination_json(info, opened_on=opened_on)
    return reply(view, 200 if info.replayed else 201, location=view["final_act"])


def _document_request(kind: str, query: DocumentQuery) -> DocumentRequest:
    """The document's own required parameters, every missing one named at once."""
    given = query.model_fields_set
    if kind == "act":
        needed = {"start": "from", "end": "to"}
    elif kind == "invoice":
        if ("transaction" in given) == ("month" in given):
            raise Problem(
                "validation-failed",
                "invalid parameters: transaction",
                errors={"transaction": "give either transaction or month"},
            )
        month = parse_month(query.month) if query.month is not None else None
        return DocumentRequest(kind, transaction_id=query.transaction, month=month)
    else:
        needed = {"service": "service", "amount": "amount"}
    missing = {wire: "required" for name, wire in needed.items() if getattr(query, name) is None}
    if missing:
        raise Problem(
            "validation-failed", f"invalid parameters: {', '.join(sorted(missing))}", errors=missing
        )
    if kind == "act":
        return DocumentRequest(kind, start_day=query.start, end_day=query.end)
    assert query.amount is not None  # noqa: S101 - checked above
    return DocumentRequest(kind, service=query.service, amount=parse_som(query.amount))


@blueprint.get(f"{_ACCOUNT}/documents/<kind>")
@operation(
    "getDocument",
    "A billing document as PDF: act (акт сверки), invoice (счет-фактура), "
    "payment-invoice (счет на оплату)",
    query=DocumentQuery,
    responses={
        200: Reply(
            None,
            "The document",
            media_type="application/pdf",
            headers={"Content-Disposition": "attachment; the file name"},
        )
    },
    parameters=[_INN_PARAM, _KIND_PARAM],
    tag="billing",
    roles=_READERS,
    errors=(404,),
    refusals={
        422: "the parameters the kind needs are missing (act: from and to; invoice: transaction "
        "or month; payment-invoice: service and amount), or to is before from"
    },
)
def document(inn: str, kind: str, query: DocumentQuery) -> Response:
    inn = _path_inn(inn)
    if kind not in DOCUMENT_KINDS:
        raise Problem("not-found", f"no document {kind[:40]!r}; one of {', '.join(DOCUMENT_KINDS)}")
    wanted = _document_request(kind, query)
    today = local_date(context.now())
    with transaction() as session:
        data = document_for(session, inn, wanted, today=today)
    response = Response(render(data), mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{wanted.filename(inn, today)}"'
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response

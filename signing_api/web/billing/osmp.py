"""The OSMP/QIWI provider protocol for payment terminals and wallets: ``/payments/osmp/<p>``.

A provider's server asks ``check`` (does this account exist, may it be paid?) and then ``pay``
(credit it); both are ``GET`` or ``POST`` with ``command``, ``txn_id``, ``account``, ``sum`` and,
on ``pay``, ``txn_date``. We always answer HTTP 200 with an XML ``<response>`` whose ``<result>``
is the protocol's code (table :class:`Result`); only an unknown provider (404) and a caller
outside the provider's allow-list (403, audited) get problem+json instead.

``pay`` credits exactly once per (provider, ``txn_id``) through :func:`billing.record_payment`;
a replay answers the first ``prv_txn`` and sum. Code 1 (temporary error) tells the provider to
retry later: we answer it whenever the database or anything unexpected failed, after rolling
back, so a retry is always safe.

The caller's address is ``request.remote_addr``, never ``X-Forwarded-For``: behind a reverse
proxy, wrap the app in werkzeug's ``ProxyFix`` with the exact number of trusted proxies, or every
request will seem to come from the proxy. Allow-lists come from :mod:`policies.providers` and
may be replaced without a code change by ``TAMGA_OSMP_ALLOW``, read once when the app is built:
``megapay=10.1.2.0/24,10.1.3.4;pay24=192.0.2.7`` (an empty list, ``elsom=``, admits nobody).
"""

from __future__ import annotations

import enum
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

import billing
from billing import (
    AccountTerminated,
    AmountTooLarge,
    AmountTooSmall,
    BillingError,
    IdempotencyConflict,
    InvalidAmount,
    MalformedAccount,
    NotFound,
    PaymentForbidden,
    Receipt,
)
from policies.billing import BUSINESS_TIME_ZONE
from policies.identifiers import is_inn, is_payment_account
from policies.money import som
from policies.providers import (
    EDS,
    PROVIDERS,
    SOCHI,
    TXN_DATE_FUTURE,
    TXN_DATE_PAST,
    Provider,
    parse_network,
    provider_allows,
)
from signing_api.config import ConfigError
from signing_api.runtime import Runtime
from signing_api.web.context import now
from signing_api.web.failures import client_address, failure_journal
from signing_api.web.problems import Problem

__all__ = [
    "ALLOW_VARIABLE",
    "OPENAPI",
    "Reply",
    "Result",
    "allowed_networks",
    "blueprint",
    "parse_allow",
    "result_of",
]

log = logging.getLogger("tamga.osmp")
blueprint = Blueprint("osmp", __name__)

ALLOW_VARIABLE = "TAMGA_OSMP_ALLOW"
_ALLOW_EXTENSION = "tamga.osmp_allow"  # app.extensions key: {provider: allowed_ips}

_TXN_ID = re.compile(r"[0-9]{1,20}")  # QIWI's txn_id is an integer of up to 20 digits
_SUM = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,2}))?")  # [0-9], not \d: no Unicode digits
_TXN_DATE = re.compile(r"[0-9]{14}")  # YYYYMMDDHHMMSS, Asia/Bishkek local time
# Characters XML 1.0 cannot carry at all; names and messages are cleaned of them before output.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BISHKEK = ZoneInfo(BUSINESS_TIME_ZONE)


class Result(enum.IntEnum):
    """OSMP result codes, as the provider protocol defines them."""

    OK = 0
    TEMPORARY_ERROR = 1  # the provider retries later
    MALFORMED_ACCOUNT = 4
    ACCOUNT_NOT_FOUND = 5
    PAYMENT_FORBIDDEN = 7
    ACCOUNT_NOT_ACTIVE = 79
    SUM_TOO_SMALL = 241
    SUM_TOO_LARGE = 242
    OTHER_ERROR = 300


# The one table from billing's refusals to OSMP codes; the first matching class wins.
_BILLING_RESULTS: tuple[tuple[type[BillingError], Result], ...] = (
    (MalformedAccount, Result.MALFORMED_ACCOUNT),
    (NotFound, Result.ACCOUNT_NOT_FOUND),
    (PaymentForbidden, Result.PAYMENT_FORBIDDEN),
    (AccountTerminated, Result.ACCOUNT_NOT_ACTIVE),
    (AmountTooSmall, Result.SUM_TOO_SMALL),
    (AmountTooLarge, Result.SUM_TOO_LARGE),
    (IdempotencyConflict, Result.OTHER_ERROR),  # a pay replay with another sum or account
    (InvalidAmount, Result.OTHER_ERROR),
)


def result_of(error: BillingError) -> Result:
    """The OSMP code for a refusal by ``billing``."""
    for cls, result in _BILLING_RESULTS:
        if isinstance(error, cls):
            return result
    return Result.OTHER_ERROR


@dataclass(frozen=True)
class Reply:
    """What we answer; rendered as XML by :func:`_render`."""

    txn_id: str  # echoed as <osmp_txn_id>; empty when the one sent was malformed
    result: Result
    comment: str
    prv_txn: int | None = None  # pay: our receipt id
    amount: int | None = None  # pay: the recorded sum in tyiyn
    name: str | None = None  # check: the subscriber's name


@dataclass(frozen=True)
class _Request:
    command: str
    txn_id: str
    account: str
    amount: int | None  # tyiyn; required on pay
    paid_at: datetime | None  # UTC; required on pay


class _Refused(Exception):
    def __init__(self, result: Result, comment: str) -> None:
        super().__init__(comment)
        self.result = result
        self.comment = comment


# --- the allow-lists ---------------------------------------------------------------------------


def parse_allow(text: str) -> dict[str, tuple[str, ...]]:
    """Parse ``TAMGA_OSMP_ALLOW`` (``code=net,net;code=...``); :class:`ConfigError` if wrong."""
    overrides: dict[str, tuple[str, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        code, sep, networks = part.partition("=")
        code = code.strip()
        if not sep or code not in PROVIDERS:
            raise ConfigError(
                f"{ALLOW_VARIABLE}: {part!r} must be <provider>=<addresses> with a provider "
                f"among {', '.join(sorted(PROVIDERS))}"
            )
        if code in overrides:
            raise ConfigError(f"{ALLOW_VARIABLE}: provider {code} is listed twice")
        entries = tuple(n.strip() for n in networks.split(",") if n.strip())
        for entry in entries:
            try:
                parse_network(entry)
            except ValueError as ex:
                raise ConfigError(f"{ALLOW_VARIABLE}: {code}: {ex}") from None
        overrides[code] = entries
    return overrides


@blueprint.record_once
def _read_allow_variable(state: BlueprintSetupState) -> None:
    """Read ``TAMGA_OSMP_ALLOW`` once, when the app is built: a mistake stops the start."""
    state.app.extensions[_ALLOW_EXTENSION] = parse_allow(os.environ.get(ALLOW_VARIABLE, ""))


def allowed_networks(provider: Provider) -> tuple[str, ...]:
    """The provider's allow-list in force: the operator's override, else the policy's."""
    overrides: Mapping[str, tuple[str, ...]] = current_app.extensions.get(_ALLOW_EXTENSION, {})
    return overrides.get(provider.code, provider.allowed_ips)


def _refuse_address(runtime: Runtime, provider: Provider, address: str) -> None:
    """Journal a call from outside the allow-list: counted per address and interval, like a
    failed login (``web/failures.py``); the refusal stands even if the journal fails."""
    failure_journal().failed(
        runtime,
        client_address(),
        "outside the allow-list",
        action="billing.osmp.refused",
        object=f"osmp:{provider.code}",
    )
    log.warning("OSMP %s: refused a call from %s (not in its allow-list)", provider.code, address)


# --- the route ---------------------------------------------------------------------------------


def _after_record(receipt: Receipt) -> None:
    """Runs inside the payment's transaction, after the journal write, before the commit.

    A no-op; the crash tests replace it to prove that a failure there rolls everything back.
    """


@blueprint.route("/payments/osmp/<provider>", methods=["GET", "POST"])
def payment(provider: str) -> Response:
    found = PROVIDERS.get(provider)
    if found is None:
        raise Problem("not-found", f"there is no OSMP provider {provider[:40]!r}")
    runtime: Runtime = current_app.extensions["tamga"]
    address = request.remote_addr or "unknown"
    if not provider_allows(replace(found, allowed_ips=allowed_networks(found)), address):
        _refuse_address(runtime, found, address)
        raise Problem("forbidden", f"{address} may not call as OSMP provider {found.code}")
    if request.args and request.form:
        # One source per request: werkzeug's request.values would let the query string override
        # the body (?sum=5 with sum=5000 in the form), so a request carrying both is refused.
        return _render(
            Reply("", Result.OTHER_ERROR, "send the parameters in the query string or the body")
        )
    return _render(_answer(runtime, found, request.form or request.args))


def _answer(runtime: Runtime, provider: Provider, values: Mapping[str, str]) -> Reply:
    txn_id = values.get("txn_id", "")
    echo = txn_id if _TXN_ID.fullmatch(txn_id) else ""
    try:
        parsed = _parse(provider, values)
        if parsed.command == "check":
            return _check(runtime, parsed)
        return _pay(runtime, provider, parsed)
    except _Refused as ex:
        return Reply(echo, ex.result, ex.comment)
    except IdempotencyConflict:
        return Reply(echo, Result.OTHER_ERROR, "this txn_id was paid with another sum or account")
    except BillingError as ex:
        return Reply(echo, result_of(ex), str(ex))
    except Exception:
        # The database is down, or a bug: the transaction was rolled back; the provider retries.
        log.exception("OSMP %s %s txn_id=%s failed", provider.code, values.get("command"), echo)
        return Reply(echo, Result.TEMPORARY_ERROR, "temporary error, please retry later")


# --- parsing -----------------------------------------------------------------------------------


def _parse(provider: Provider, values: Mapping[str, str]) -> _Request:
    """Check the request without the database; refusals come in the protocol's order."""
    command = values.get("command", "")
    if command not in ("check", "pay"):
        raise _Refused(Result.OTHER_ERROR, "command must be check or pay")
    txn_id = values.get("txn_id", "")
    if not _TXN_ID.fullmatch(txn_id):
        raise _Refused(Result.OTHER_ERROR, "txn_id must be 1-20 digits")
    amount = _parse_sum(values.get("sum"), required=command == "pay")
    paid_at = _parse_date(values.get("txn_date"), required=command == "pay")
    if paid_at is not None and not now() - TXN_DATE_PAST <= paid_at <= now() + TXN_DATE_FUTURE:
        raise _Refused(
            Result.OTHER_ERROR,
            f"txn_date must be within {TXN_DATE_PAST.days} days back and "
            f"{TXN_DATE_FUTURE.days} day ahead of now",
        )
    account = values.get("account", "")
    if is_inn(account):
        service = SOCHI
    elif is_payment_account(account):
        service = EDS
    else:
        raise _Refused(
            Result.MALFORMED_ACCOUNT,
            "account must be a 14-digit INN or a 16-digit payment account",
        )
    if not provider.may_pay(service):
        raise _Refused(
            Result.PAYMENT_FORBIDDEN, f"{provider.name} may not accept payments for this service"
        )
    if amount is not None and amount < provider.min_sum:
        raise _Refused(Result.SUM_TOO_SMALL, f"the minimum sum is {som(provider.min_sum)}")
    if amount is not None and amount > provider.max_sum:
        raise _Refused(Result.SUM_TOO_LARGE, f"the maximum sum is {som(provider.max_sum)}")
    return _Request(command, txn_id, account, amount, paid_at)


def _parse_sum(text: str | None, *, required: bool) -> int | None:
    """``123`` or ``123.4`` or ``123.45`` som as tyiyn; no sign, exponent or third decimal."""
    if text is None and not required:
        return None
    match = _SUM.fullmatch(text or "")
    if match is None:
        raise _Refused(Result.OTHER_ERROR, "sum must be som with at most two decimals: 123.45")
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(fraction)


def _parse_date(text: str | None, *, required: bool) -> datetime | None:
    """``YYYYMMDDHHMMSS`` in Asia/Bishkek time, as an aware UTC datetime."""
    if text is None and not required:
        return None
    if not _TXN_DATE.fullmatch(text or ""):
        raise _Refused(Result.OTHER_ERROR, "txn_date must be YYYYMMDDHHMMSS")
    try:
        local = datetime.strptime(text or "", "%Y%m%d%H%M%S")
    except ValueError:
        raise _Refused(Result.OTHER_ERROR, "txn_date is not a real date and time") from None
    return local.replace(tzinfo=_BISHKEK).astimezone(UTC)


# --- the two commands --------------------------------------------------------------------------


def _check(runtime: Runtime, parsed: _Request) -> Reply:
    """Who the account is; credits nothing and writes nothing."""
    with runtime.transaction() as session:
        target = billing.resolve_target(session, parsed.account)
    if not target.active:
        raise _Refused(Result.ACCOUNT_NOT_ACTIVE, f"the contract of {target.inn} is terminated")
    due, amount = target.amount_due, parsed.amount
    if due is not None and amount is not None and amount != due:
        result = Result.SUM_TOO_SMALL if amount < due else Result.SUM_TOO_LARGE
        raise _Refused(result, f"payment account {target.account} expects {som(due)}")
    return Reply(parsed.txn_id, Result.OK, "OK", name=target.name)


def _pay(runtime: Runtime, provider: Provider, parsed: _Request) -> Reply:
    """Credit once per (provider, txn_id); a replay answers the first receipt."""
    amount, paid_at = parsed.amount, parsed.paid_at
    if amount is None or paid_at is None:  # pragma: no cover - _parse requires both on pay
        raise _Refused(Result.OTHER_ERROR, "pay needs sum and txn_date")
    receipt = _record(runtime, provider, parsed.txn_id, parsed.account, amount, paid_at)
    comment = "payment already accepted" if receipt.replayed else "payment accepted"
    return Reply(parsed.txn_id, Result.OK, comment, prv_txn=receipt.id, amount=receipt.amount)


def _record(
    runtime: Runtime, provider: Provider, txn_id: str, account: str, amount: int, paid_at: datetime
) -> Receipt:
    with runtime.transaction() as session:
        receipt = billing.record_payment(
            session,
            channel="osmp",
            provider=provider.code,
            external_id=txn_id,
            account=account,
            amount=amount,
            paid_at=paid_at,
            now=now(),
            actor=f"osmp:{provider.code}",
        )
        _after_record(receipt)
    return receipt


# --- the answer --------------------------------------------------------------------------------


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _render(reply: Reply) -> Response:
    """The XML ``<response>``; ElementTree escapes ``& < > "`` in names and comments."""
    root = ET.Element("response")
    ET.SubElement(root, "osmp_txn_id").text = reply.txn_id
    if reply.prv_txn is not None and reply.amount is not None:
        ET.SubElement(root, "prv_txn").text = str(reply.prv_txn)
        ET.SubElement(root, "sum").text = som(reply.amount)
    ET.SubElement(root, "result").text = str(int(reply.result))
    if reply.name is not None:
        fields = ET.SubElement(root, "fields")
        ET.SubElement(fields, "field1", name="name").text = _text(reply.name)
    ET.SubElement(root, "comment").text = _text(reply.comment)
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
    return Response(body.encode("utf-8"), status=200, content_type="text/xml; charset=utf-8")


# --- /openapi.json -----------------------------------------------------------------------------

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_FIELDS: dict[str, dict[str, Any]] = {
    "command": {
        "schema": {"type": "string", "enum": ["check", "pay"]},
        "description": "check: may this account be paid (nothing is written); pay: credit it",
    },
    "txn_id": {
        "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
        "description": "The provider's transaction number; pay is idempotent on it",
    },
    "account": {
        "schema": {"type": "string", "pattern": "^([0-9]{14}|[0-9]{16})$"},
        "description": "14-digit INN (service SOChI) or 16-digit payment account (EDS payment)",
    },
    "sum": {
        "schema": {"type": "string", "pattern": "^[0-9]{1,9}(\\.[0-9]{1,2})?$"},
        "description": "Amount in som, dot and at most two decimals; required on pay",
    },
    "txn_date": {
        "schema": {"type": "string", "pattern": "^[0-9]{14}$"},
        "description": "YYYYMMDDHHMMSS, Asia/Bishkek local time; required on pay",
    },
}
_REQUIRED = ("command", "txn_id", "account")
_PROVIDER_PARAMETER = {
    "name": "provider",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": sorted(PROVIDERS)},
}
_RESPONSES = {
    "200": {
        "description": "Protocol answer (always HTTP 200); the outcome is in <result>",
        "content": {
            "text/xml": {"schema": {"$ref": "#/components/schemas/OsmpResponse"}},
        },
    },
    "403": {**_PROBLEM, "description": "The caller is outside the provider's allow-list"},
    "404": {**_PROBLEM, "description": "Unknown provider"},
    "413": {**_PROBLEM, "description": "The body is larger than this route accepts"},
    "429": {"$ref": "#/components/responses/TooManyRequests"},
}


def _operation(method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"osmp{method.title()}",
        "summary": "OSMP/QIWI provider protocol: check an account or pay into it",
        "tags": ["payments"],
        "parameters": [_PROVIDER_PARAMETER],
        "responses": _RESPONSES,
    }
    if method == "get":
        operation["parameters"] = [
            _PROVIDER_PARAMETER,
            *(
                {"name": name, "in": "query", "required": name in _REQUIRED, **spec}
                for name, spec in _FIELDS.items()
            ),
        ]
    else:
        form = {
            "type": "object",
            "required": list(_REQUIRED),
            "properties": {n: {**s["schema"], "description": s["description"]}
                           for n, s in _FIELDS.items()},
        }  # fmt: skip
        operation["requestBody"] = {
            "required": False,  # the parameters may come in the query string instead
            "content": {"application/x-www-form-urlencoded": {"schema": form}},
        }
    return operation


_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "xml": {"name": "response"},
    "description": "UTF-8 XML; prv_txn and sum on a successful pay, fields on a successful check",
    "required": ["osmp_txn_id", "result", "comment"],
    "properties": {
        "osmp_txn_id": {"type": "string", "description": "txn_id echoed (empty if malformed)"},
        "prv_txn": {"type": "integer", "description": "Our receipt number (same on replays)"},
        "sum": {"type": "string", "description": "The recorded sum in som (the original one)"},
        "result": {
            "type": "integer",
            "enum": [int(r) for r in Result],
            "description": "0 OK; 1 temporary error, retry; 4 malformed account; 5 account not "
            "found; 7 payment forbidden; 79 account not active; 241 sum too small; 242 sum too "
            "large; 300 other error",
        },
        "fields": {
            "type": "object",
            "properties": {
                "field1": {"type": "string", "description": 'Subscriber name (name="name")'}
            },
        },
        "comment": {"type": "string"},
    },
}

# This module's part of /openapi.json: {"paths": {...}, "components": {"schemas": {...}}}.
OPENAPI: dict[str, Any] = {
    "paths": {"/payments/osmp/{provider}": {"get": _operation("get"), "post": _operation("post")}},
    "components": {"schemas": {"OsmpResponse": _RESPONSE_SCHEMA}},
}

"""The typed contract of ``/api/v1/accounts``: request bodies, query strings and answers."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, WithJsonSchema, field_validator

from policies.dates import DAY_PATTERN, MONTH_PATTERN, parse_day, parse_month
from policies.money import SOM_PATTERN, parse_som
from policies.tariffs import TARIFFS
from signing_api.web.contract import Body, Inn, Query, Text, Tyiyn, TyiynOrZero, View

__all__ = [
    "Account",
    "AccountOpening",
    "CashReceipt",
    "DocumentQuery",
    "PaymentAccount",
    "PaymentAccountRequest",
    "Period",
    "Receipt",
    "Receipts",
    "RequiredPeriod",
    "Statement",
    "Termination",
    "TerminationRequest",
]

_CERT_CODES = [code for code in TARIFFS.codes() if code.startswith("cert:")]
CERTIFICATE_TARIFFS = "^(?:" + "|".join(_CERT_CODES) + ")$"

Money = Annotated[int, Field(description="tyiyn (1 som = 100 tyiyn); negative: owed")]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def _day(text: object) -> date:
    if not isinstance(text, str):
        raise ValueError("a day as YYYY-MM-DD")
    return parse_day(text)


QueryDay = Annotated[
    date,
    Field(description="An Asia/Bishkek calendar day, YYYY-MM-DD, included"),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]


# --- requests ------------------------------------------------------------------------------------


class AccountOpening(Body):
    inn: Inn
    name: Annotated[str, Text(300)]


class CashReceipt(Body):
    number: Annotated[str, Text(100)]
    amount: Tyiyn


class PaymentAccountRequest(Body):
    tariff: Annotated[
        str,
        Text(pattern=CERTIFICATE_TARIFFS, says="a certificate tariff: " + ", ".join(_CERT_CODES)),
        Field(examples=["cert:head"]),
    ]
    purpose: Annotated[str, Text(120)] | None = Field(None, description="Default cert:first:<inn>")


class TerminationRequest(Body):
    reason: Annotated[str, Text(2000)]
    debt: TyiynOrZero | None = Field(None, description="Debt found by the final act")


class Period(Query):
    start: QueryDay | None = Field(None, alias="from")
    end: QueryDay | None = Field(None, alias="to")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _as_day(cls, value: object) -> object:
        return None if value is None else _day(value)

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start")
        if end is not None and start is not None and end < start:
            raise ValueError("the period ends before it starts")
        return end


class RequiredPeriod(Period):
    start: QueryDay = Field(alias="from")
    end: QueryDay = Field(alias="to")


class DocumentQuery(Period):
    """act: ``from`` and ``to``; invoice: ``transaction`` or ``month``; payment-invoice:
    ``service`` and ``amount`` (som, like 1510.50)."""

    transaction: int | None = Field(None, ge=1, le=10**18 - 1)
    month: str | None = Field(None, pattern=MONTH_PATTERN)
    service: Literal["sochi", "eds"] | None = None
    amount: str | None = Field(None, pattern=SOM_PATTERN, description="Som, more than zero")

    @field_validator("month")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        if value is not None:
            parse_month(value)
        return value

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str | None) -> str | None:
        if value is not None:
            parse_som(value)
        return value


# --- answers -------------------------------------------------------------------------------------


class Termination(View):
    inn: str
    terminated_at: Moment
    reason: str
    refund: Money
    debt: Money
    debt_due_on: Annotated[str, Field(json_schema_extra={"format": "date"})]
    transaction_id: int | None
    final_act: str = Field(description="Path of the final reconciliation act")
    owed: Money | None = Field(None, description="Debt and penalties still owed (account view)")


class Account(View):
    inn: str
    name: str
    posted: Money
    held: Money
    available: Money
    status: Literal["active", "stopped", "terminated"] = Field(
        description="Service state: stopped at zero balance (§3.9.2)"
    )
    status_reason: str
    may_suspend: bool = Field(description="No payment for more than 30 days (§5.3)")
    last_payment_at: Moment | None
    termination: Termination | None


class Receipt(View):
    id: int
    amount: Tyiyn
    paid_at: Moment
    recorded_at: Moment
    channel: Literal["osmp", "bank", "cash"]
    provider: str
    service: Literal["sochi", "eds", "debt"]
    account: str
    external_id: str
    transaction_id: int


class Receipts(View):
    inn: str
    start: Annotated[str | None, Field(alias="from")]
    end: Annotated[str | None, Field(alias="to")]
    total: Money
    receipts: list[Receipt]


class StatementLine(View):
    transaction_id: int
    occurred_at: Moment
    kind: str
    description: str
    amount: Money
    balance_after: Money


class Statement(View):
    inn: str
    name: str
    start_day: Annotated[str, Field(alias="from")]
    end_day: Annotated[str, Field(alias="to")]
    start: Moment
    end: Moment
    opening: Money
    closing: Money
    total_in: Money
    total_out: Money
    lines: list[StatementLine]


class PaymentAccount(View):
    number: str = Field(pattern="^[0-9]{16}$")
    inn: str
    purpose: str
    tariff: str
    amount_due: Tyiyn
    status: str

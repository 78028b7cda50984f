"""The typed contract of the CA registry routes: subscribers, holders, foreign access,
registration requests and powers of attorney (request bodies, query strings and answers).

The request models state the *shape* of each field as ``ca.registry``, ``ca.registrations`` and
``ca.powers`` check it (lengths after whitespace is collapsed, the INN, e-mail, phone and passport
formats, calendar days), so that every malformed field is named at once and the document tells
the truth. The domain functions keep their own checks (the CLI reaches them without this edge),
and the rules that relate fields or rows (``valid_until`` not before ``valid_from``, a holder
that with its company makes a valid certificate subject, a known holder...) are still theirs.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from policies.cert_profiles import CertRole, Storage
from policies.dates import DAY_PATTERN, FIRST_YEAR, LAST_YEAR, UNTIL_PATTERN
from policies.text import character_class
from signing_api.web.contract import Body, Inn, Query, Text, TyiynOrZero, View

__all__ = [
    "EMAIL_PATTERN",
    "MAX_ID",
    "PASSPORT_PATTERN",
    "PHONE_PATTERN",
    "Approval",
    "ForeignAccess",
    "ForeignAccessInput",
    "ForeignAccessList",
    "Holder",
    "HolderChanges",
    "HolderInput",
    "HolderList",
    "HolderRequisites",
    "IdentityCheck",
    "Power",
    "PowerInput",
    "PowerList",
    "PowerRevocation",
    "PowersQuery",
    "RegisteredHolder",
    "RegisteredSubscriber",
    "Registration",
    "RegistrationFilter",
    "RegistrationInput",
    "RegistrationList",
    "Rejection",
    "ScopeHolder",
    "Subscriber",
    "SubscriberChanges",
    "SubscriberInput",
    "SubscriberList",
]

MAX_ID = 2**63 - 1  # the database's BIGINT: a larger id names nothing


def _unset(description: str | None = None) -> Any:
    """The default of a field that may be left out but is never null (see :func:`_never_null`)."""
    return Field(None, description=description)


def _never_null(schema: dict[str, Any]) -> None:
    """No ``default: null`` on a field that may be absent but is never null."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None and "anyOf" not in prop:
            del prop["default"]


_LEFT_OUT = ConfigDict(json_schema_extra=_never_null)


# --- field types ----------------------------------------------------------------------------------

# The patterns read a value as sent; the registry collapses its whitespace first, so they admit
# spaces around it (and runs of them where the registry would keep one): ``_SPACE`` is every
# space ``policies.text`` admits.
_SPACE = character_class("space")
_SPACES = _SPACE[1:-1]
# ca.profiles.SubjectIdentity: an ASCII dot-atom address (rfc822Name is an IA5String), its local
# part at most 64 characters.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = (
    rf"^{_SPACE}*(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+{_SPACE}*$"
)
# ca.registry: 7 to 15 digits, optionally after +, once spaces and dashes are taken out.
PHONE_PATTERN = rf"^[{_SPACES}-]*\+?(?:[{_SPACES}-]*[0-9]){{7,15}}[{_SPACES}-]*$"
# ca.registry: letters (Latin or Cyrillic, either case: stored in capitals), digits, spaces, dashes.
_PASSPORT_CHAR = "A-Za-zА-Яа-яЁё0-9"
PASSPORT_PATTERN = rf"^{_SPACE}*[{_PASSPORT_CHAR}](?:{_SPACE}*[{_PASSPORT_CHAR}-])+{_SPACE}*$"

Email = Annotated[
    str,
    Text(254, pattern=EMAIL_PATTERN, says="a plausible ASCII e-mail address"),
    Field(json_schema_extra={"format": "email"}, examples=["office@alatoo.kg"]),
]
Phone = Annotated[
    str,
    Text(32, pattern=PHONE_PATTERN, says="7 to 15 digits, optionally after +, e.g. +996555123456"),
    Field(examples=["+996555123456"]),
]
Passport = Annotated[
    str,
    Text(32, pattern=PASSPORT_PATTERN, says="letters and digits, e.g. ID1234567 or AN 1234567"),
    Field(description="ID1234567, AN 1234567, ... (stored in capitals)"),
]
FullName = Annotated[
    str,
    Text(64, words=2, says="give the surname and the given name"),
    Field(description="Surname Given [Patronymic], as in the passport"),
]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
DayText = Annotated[str, Field(json_schema_extra={"format": "date"})]

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _calendar_day(value: object, last_year: int) -> date:
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise ValueError("a day as YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar day") from None
    if not FIRST_YEAR <= day.year <= last_year:
        raise ValueError(f"a day between {FIRST_YEAR} and {last_year}")
    return day


def _day_schema(pattern: str, last_year: int) -> dict[str, Any]:
    return {
        "type": "string",
        "format": "date",
        "pattern": pattern,
        "description": f"YYYY-MM-DD, years {FIRST_YEAR} to {last_year}",
    }


# Foreign access may last "for good" (until 9999-12-31); a power of attorney's days are those
# of ``ca.powers`` (years 1900 to 9998).
Day = Annotated[
    date,
    BeforeValidator(lambda v: _calendar_day(v, 9999)),
    WithJsonSchema(_day_schema(UNTIL_PATTERN, 9999)),
]
PowerDay = Annotated[
    date,
    BeforeValidator(lambda v: _calendar_day(v, LAST_YEAR)),
    WithJsonSchema(_day_schema(DAY_PATTERN, LAST_YEAR)),
]

_NOTE_LIMIT = 2000
Note = Annotated[str, Text(_NOTE_LIMIT, lines=True)]


def _address(value: str) -> str:
    try:
        address = str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("one static IPv4 or IPv6 address") from None
    if len(address) > 64:
        raise ValueError("one static IPv4 or IPv6 address, at most 64 characters")
    return value


Address = Annotated[
    str,
    AfterValidator(_address),
    WithJsonSchema(
        {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    ),
    Field(examples=["203.0.113.7"]),
]

# --- requests ------------------------------------------------------------------------------------


class SubscriberInput(Body):
    inn: Inn
    name: Annotated[
        str,
        Text(64),
        Field(description="As in the certificate's organizationName (X.520: 64 characters)"),
    ]
    legal_form: Annotated[str, Text(64), Field(description="ОсОО, ОАО, ИП, ...")]
    locality: Annotated[str, Text(128), Field(description="City or village (§18.2.2)")]
    email: Email


class SubscriberChanges(Body):
    """Any of the requisites but the INN."""

    model_config = _LEFT_OUT

    name: Annotated[str, Text(64)] = _unset()
    legal_form: Annotated[str, Text(64)] = _unset()
    locality: Annotated[str, Text(128)] = _unset()
    email: Email = _unset()


class HolderRequisites(Body):
    """A holder as a registration request names it (for the subscriber of the request)."""

    full_name: FullName
    position: Annotated[str, Text(64)]
    passport_series: Passport
    email: Email
    phone: Phone


class HolderInput(HolderRequisites):
    inn: Inn = Field(description="The subscriber it acts for (in the caller's scope)")


class HolderChanges(Body):
    model_config = _LEFT_OUT

    full_name: FullName = _unset()
    position: Annotated[str, Text(64)] = _unset()
    passport_series: Passport = _unset()
    email: Email = _unset()
    phone: Phone = _unset()
    document: Annotated[str, Text(200)] = _unset(
        "Needed when email or phone changes: the reference of the documents the holder"
        " presented at the office (journalled; the old e-mail is told of the change)"
    )


class ForeignAccessInput(Body):
    address: Address
    location: Annotated[str, Text(200), Field(description="Where the subscriber works from")]
    valid_from: Day = Field(description="First day, included")
    valid_until: Day = Field(description="Last day, included; not before valid_from")


class RegistrationInput(Body):
    channel: Literal["office", "online"] = Field(
        description="A portal submits online requests only"
    )
    subscriber: SubscriberInput
    holder: HolderRequisites
    role: CertRole
    storage: Storage


class Approval(Body):
    note: Note | None = Field(None, description="Optional remark kept with the decision")
    grant_scope: bool | None = Field(
        None,
        description="Whether the submitting portal gets the subscriber in its scope. Required "
        "(else 409) when the INN is already registered outside that portal's scope; a new "
        "INN is granted unless false",
    )


class IdentityCheck(Body):
    document: Annotated[str, Text(200)] = Field(
        description="What the officer checked, e.g. the office file reference (not the "
        "passport series: it stays out of the journal)"
    )


class Rejection(Body):
    note: Note = Field(description="The reason, kept with the decision")


class PowerInput(Body):
    holder_id: Id
    taxpayer_inn: Inn
    taxpayer_name: Annotated[str, Text(200)]
    taxpayer_legal_form: Annotated[str, Text(64)]
    taxpayer_locality: Annotated[str, Text(128)]
    document_number: Annotated[str, Text(64)]
    issued_on: PowerDay = Field(description="On or before valid_from")
    valid_from: PowerDay = Field(description="First day (Bishkek), included")
    valid_until: PowerDay = Field(description="Last day (Bishkek), included; not before valid_from")


class PowerRevocation(Body):
    note: Note = Field(description="The reason, kept with the revocation")


class RegistrationFilter(Query):
    model_config = _LEFT_OUT

    status: Annotated[
        Literal["pending", "approved", "rejected"] | None,
        WithJsonSchema({"type": "string", "enum": ["", "pending", "approved", "rejected"]}),
    ] = Field(None, description="Only the requests in this state (empty: all)")

    @field_validator("status", mode="before")
    @classmethod
    def _empty_is_any(cls, value: object) -> object:
        return None if value == "" else value


class PowersQuery(Query):
    holder_id: Id = Field(description="The holder's id")

    @field_validator("holder_id", mode="before")
    @classmethod
    def _positive_digits(cls, value: object) -> object:
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise ValueError("a holder id (a positive whole number)")
        if not 0 < int(value) <= MAX_ID:
            raise ValueError("a holder id (a positive whole number)")
        return int(value)


# --- answers -------------------------------------------------------------------------------------

# What the registry keeps, as the domain normalised it (whitespace collapsed, the passport series in
# capitals, the phone number without spaces or dashes).
InnOut = Annotated[str, Field(pattern="^[0-9]{14}$")]
Line32 = Annotated[str, Field(min_length=1, max_length=32)]
Line64 = Annotated[str, Field(min_length=1, max_length=64)]
Line128 = Annotated[str, Field(min_length=1, max_length=128)]
Line200 = Annotated[str, Field(min_length=1, max_length=200)]
NoteOut = Annotated[str, Field(min_length=1, max_length=_NOTE_LIMIT)]
EmailOut = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"})]
PhoneOut = Annotated[str, Field(pattern=r"^\+?[0-9]{7,15}$", examples=["+996555123456"])]
PassportOut = Annotated[
    str,
    Field(pattern="^[A-ZА-ЯЁ0-9][A-ZА-ЯЁ0-9 -]{1,31}$", description="Officers only"),
]


class Subscriber(View):
    inn: InnOut
    name: Line64
    legal_form: Line64
    locality: Line128
    email: EmailOut
    status: Literal["active", "closed"]
    created_at: Moment


class SubscriberList(View):
    subscribers: list[Subscriber]


class Holder(View):
    model_config = _LEFT_OUT

    id: Id
    inn: InnOut = Field(description="The subscriber it acts for")
    full_name: Line64
    surname: Line64
    given_name: Line64 = Field(description="Given name and patronymic")
    position: Line64
    email: EmailOut
    phone: PhoneOut
    status: Literal["active", "inactive"]
    identity_verified: bool = Field(
        description="An officer verified the person's identity (§3.3): no certificate without it"
    )
    identity_verified_at: Moment | None
    passport_series: PassportOut = _unset()
    identity_verified_by: str | None = Field(None, description="Officers only")
    identity_document: Line200 | None = Field(None, description="Officers only")


class HolderList(View):
    inn: InnOut
    holders: list[Holder]


class ForeignAccess(View):
    id: Id
    inn: InnOut
    address: str = Field(description="One static IPv4 or IPv6 address")
    location: Line200
    valid_from: DayText
    valid_until: DayText


class ForeignAccessList(View):
    inn: InnOut
    foreign_access: list[ForeignAccess]


class RegisteredSubscriber(View):
    """The subscriber as the request names it (checked, whitespace collapsed)."""

    inn: InnOut
    name: Line64
    legal_form: Line64
    locality: Line128
    email: EmailOut


class RegisteredHolder(View):
    """The holder as the request names it; the passport series for officers only."""

    model_config = _LEFT_OUT

    full_name: Line64
    position: Line64
    email: EmailOut
    phone: PhoneOut
    passport_series: PassportOut = _unset()


class ScopeHolder(View):
    """An API client that has a subscriber in its scope."""

    id: Id
    name: Annotated[str, Field(min_length=1, max_length=100)]


class Registration(View):
    model_config = _LEFT_OUT

    id: Id
    channel: Literal["office", "online"]
    status: Literal["pending", "approved", "rejected"]
    inn: InnOut
    subscriber: RegisteredSubscriber
    holder: RegisteredHolder
    role: CertRole
    storage: Storage
    submitted_at: Moment
    submitted_by: str = Field(examples=["client:3"])
    deadline_at: Moment = Field(
        description="§3.3: 24 hours at the office; end of the 7th working day online"
    )
    overdue: bool = Field(description="Pending past its deadline")
    decided_at: Moment | None
    decided_by: str | None
    decision_note: NoteOut | None
    holder_id: Id | None = Field(description="The holder, once approved")
    tariff: str = Field(examples=["cert:head"])
    amount_due: TyiynOrZero = Field(
        description="tyiyn: the price on approval (today's while not approved)"
    )
    payment: Literal["payment_account", "balance"] | None = Field(
        description="Approved: paid to payment_account, or (later certificates) debited "
        "from the balance"
    )
    payment_account: Annotated[str, Field(pattern="^[0-9]{16}$")] | None
    existing_subscriber: bool | None = Field(
        None,
        description="Officers only: the INN is already registered (pending: now; decided: at "
        "the decision; null for decisions older than this field)",
    )
    in_scope_of: list[ScopeHolder] = _unset(
        "Officers only: the API clients that have the subscriber in scope"
    )


class RegistrationList(View):
    registrations: list[Registration]


class Power(View):
    id: Id
    holder_id: Id
    taxpayer_inn: InnOut
    taxpayer_name: Line200
    taxpayer_legal_form: Line64
    taxpayer_locality: Line128
    document_number: Line64
    issued_on: DayText
    valid_from: DayText
    valid_until: DayText
    valid_today: bool = Field(description="Unrevoked and valid today")
    created_at: Moment
    created_by: str
    revoked_at: Moment | None
    revoked_by: str | None
    revocation_note: NoteOut | None


class PowerList(View):
    holder_id: Id
    on: DayText = Field(description="Today, in Bishkek")
    valid_taxpayers: list[InnOut] = Field(description="Taxpayers the holder may file for today")
    powers: list[Power]

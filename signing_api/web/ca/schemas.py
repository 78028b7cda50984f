"""The typed contract of the certificate routes: issuance, status changes and renewals.

Request bodies (``Body``: strict JSON, unknown fields refused), query strings (``Query``) and the
answers (``View``) of ``web/ca/certificates.py``, ``revocation.py`` and ``renewals.py``. The
models check shape, format and range; what depends on the registry, the money or the
certificate's state stays in ``ca/`` (``InvalidField``, ``KeyRefused``, ``Conflict`` ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import core_schema

from ca.issuance import CERTIFICATE_STATES
from ca.revocation import REVOCATION_REASONS
from policies.cert_profiles import CLOUD_ALLOWED_KEY_SPECS, CertRole, Storage
from policies.signing import SIGNING_POLICY
from signing_api.web.common import HOLDER_HEADER
from signing_api.web.contract import Body, Inn, Query, Text, Tyiyn, View

__all__ = [
    "HOLDER_PARAMETER",
    "IDEMPOTENCY_PARAMETER",
    "SERIAL_PARAMETER",
    "Activation",
    "ActivationRequest",
    "AutoRenewal",
    "Certificate",
    "CertificateList",
    "CertificatePaymentProblem",
    "CertificateQuery",
    "CertificateRefusalProblem",
    "CertificateRequest",
    "CertificateWithChain",
    "IssuedCertificate",
    "ListedCertificate",
    "OneOf",
    "Renewal",
    "RenewalApproval",
    "RenewalList",
    "RenewalQuery",
    "RenewalRejection",
    "RenewalSubmission",
    "Revocation",
    "StatusNote",
    "UploadedDocument",
]


@dataclass(frozen=True)
class OneOf:
    """A string field that is one of ``values`` (an ``enum`` in the schema).

    ``normalise`` is applied before the comparison only: the value goes on as it was sent, for
    the domain reads it with its own leniency (``EC_P256`` is ``ec-p256``). ``refused`` gives a
    clearer message for some values that are not accepted.
    """

    values: tuple[str, ...]
    normalise: Callable[[str], str] | None = None
    refused: Mapping[str, str] = field(default_factory=dict, compare=False)

    def check(self, value: str) -> str:
        if value in self.refused:
            raise ValueError(self.refused[value])
        wanted = self.normalise(value) if self.normalise is not None else value
        if wanted not in self.values:
            raise ValueError(f"one of {', '.join(self.values)}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        written: dict[str, Any] = dict(handler(schema))
        written["enum"] = list(self.values)
        return written


# --- path and header parameters ------------------------------------------------------------------

SERIAL_PARAMETER: dict[str, Any] = {
    "name": "serial",
    "in": "path",
    "required": True,
    "description": (
        "The certificate's serial number in hex (case and leading zeros forgiven); a malformed"
        " one is a 404 like an unknown one"
    ),
    "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{1,40}$"},
}
HOLDER_PARAMETER: dict[str, Any] = {
    "name": HOLDER_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Portals: the holder (its id) the portal acts for, whom it has authenticated; the rules"
        " that depend on who acts read it (a malformed id is a 400, an unknown one a 404)"
    ),
    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
}
IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "The same key from the same client again returns the certificate the first request"
        " issued (200), instead of issuing and charging twice; echoed back"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
}

# --- field types ---------------------------------------------------------------------------------

HolderId = Annotated[int, Field(ge=1, le=2**62, description="The holder's id")]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Money = Annotated[int, Field(description="tyiyn (1 som = 100 tyiyn)")]
Serial = Annotated[str, Field(pattern="^[0-9a-f]{1,40}$", description="Lowercase hex")]
SentSerial = Annotated[
    str,
    Text(pattern=r"^\s*[0-9A-Fa-f]{1,40}\s*$", says="a certificate serial number in hex"),
    Field(description="The certificate's serial number in hex (case and leading zeros forgiven)"),
]
Pem = Annotated[str, Field(min_length=1, max_length=65536)]
Note = Annotated[str, Field(max_length=1000)]
KeySpecName = Annotated[
    str,
    OneOf(
        tuple(spec.name for spec in CLOUD_ALLOWED_KEY_SPECS),
        normalise=lambda text: text.strip().lower().replace("_", "-"),
    ),
    Field(description="Cloud only: the key Tamga generates (default ec-p256; case forgiven)"),
]
_HOLD = ("certificateHold", "certificate_hold")
RevocationReason = Annotated[
    str,
    OneOf(
        tuple(
            dict.fromkeys(
                [*(flag.value for flag in REVOCATION_REASONS.values()), *REVOCATION_REASONS]
            )
        ),
        refused=dict.fromkeys(_HOLD, "certificateHold is a suspension: use suspend"),
    ),
    Field(description="RFC 5280 reason, by its RFC name (keyCompromise) or ours (key_compromise)"),
]
RecordedReason = Annotated[
    str,
    OneOf((*REVOCATION_REASONS, "certificate_hold")),
    Field(description="The latest revocation or suspension (certificate_hold) reason"),
]


def _digits(value: object) -> object:
    """A query parameter that is a whole number is written with digits only."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("a whole number")
    return value


def _instant(value: object) -> object:
    """An ISO 8601 instant with its offset (``2026-11-23T08:00:00Z``)."""
    if not isinstance(value, str):
        return value  # None, or the wrong type: the field's own check says so
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError("an ISO 8601 time with offset, e.g. 2026-11-23T08:00:00Z")
    return moment


def _absent(description: str | None = None) -> Any:
    """A field left out of the answer when it has no value (never ``null``)."""

    def drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(None, description=description, json_schema_extra=drop_default)


# --- requests ------------------------------------------------------------------------------------


class CertificateRequest(Body):
    """RuToken: ``csr_pem`` (the CSR made on the token); cloud: ``key_spec`` (optional). A cloud
    certificate's PIN is never sent here: its holder chooses it with the activation code that
    Tamga mails to the holder's registered e-mail (``POST …/activation``)."""

    holder_id: HolderId
    role: CertRole
    storage: Storage
    csr_pem: Pem | None = Field(None, description="RuToken: the PKCS#10 request, PEM")
    key_spec: KeySpecName | None = None


_CODE_CHARS = SIGNING_POLICY.activation.code_chars


class ActivationRequest(Body):
    activation_code: str = Field(
        min_length=_CODE_CHARS,
        max_length=64,
        pattern=r"^[0-9A-Za-z -]+$",
        description=(
            f"The {_CODE_CHARS}-character code mailed to the holder (Crockford base32; dashes"
            " and spaces ignored). Only the holder receives it: a portal relays it, an officer"
            " never sees it."
        ),
    )
    pin: Annotated[
        str,
        Field(
            min_length=SIGNING_POLICY.pin_min_length,
            max_length=SIGNING_POLICY.pin_max_length,
            description="The PIN the holder chooses for signing with this certificate",
        ),
    ]


class CertificateQuery(Query):
    expiring_within_days: int | None = Field(
        None,
        ge=0,
        le=3660,
        description="Active certificates expiring within so many days, soonest first (renewal)",
    )
    holder_id: int | None = Field(None, ge=1, le=2**62, description="One holder's")
    inn: Inn | None = Field(None, description="One subscriber's certificates")

    @field_validator("expiring_within_days", "holder_id", mode="before")
    @classmethod
    def _whole(cls, value: object) -> object:
        return _digits(value)


class StatusNote(Body):
    note: Note | None = None


class Revocation(Body):
    reason: RevocationReason
    invalidity_date: datetime | None = Field(
        None,
        description="When the key is known or suspected to have been compromised; with offset",
    )
    note: Note | None = None

    @field_validator("invalidity_date", mode="before")
    @classmethod
    def _as_instant(cls, value: object) -> object:
        return _instant(value)


class RenewalSubmission(Body):
    serial: SentSerial
    document: Annotated[
        str,
        Field(
            min_length=1,
            max_length=65536,
            description="The text served at .../renewal-request, exactly as served",
        ),
    ]
    signature: Annotated[
        str,
        Text(
            pattern=r"^(?:[A-Za-z0-9+/]+={0,2}|\s*-----BEGIN [\s\S]*)$",
            says="the detached CMS signature (base64 DER, or PEM)",
        ),
        Field(
            max_length=262144,
            description="The detached CMS signature of the document: base64 DER, or PEM",
        ),
    ]
    csr_pem: Pem | None = Field(None, description="RuToken: the CSR of the new key, PEM")


class RenewalQuery(Query):
    status: Literal["review", "accepted", "approved", "rejected", "issued"] | None = None


class RenewalApproval(Body):
    note: str | None = None


class RenewalRejection(Body):
    note: Annotated[str, Text(pattern=r"\S", says="say why the renewal is rejected")]


class AutoRenewal(Body):
    enabled: bool = Field(description="false cancels the automatic renewal, true restores it")


# --- answers -------------------------------------------------------------------------------------


class ListedCertificate(View):
    serial: Serial
    status: Literal["pending", "failed", "active", "suspended", "revoked"]
    state: Annotated[
        str, OneOf(CERTIFICATE_STATES), Field(description="The status, with time considered")
    ]
    holder_id: int
    holder: str = Field(description="The holder's full name as the certificate states it")
    registry_holder: str = Field(
        description="The holder's full name in the registry now (differs after a change)"
    )
    inn: str = Field(pattern="^[0-9]{14}$")
    role: CertRole
    storage: Storage
    key_spec: str = Field(examples=["ec-p256"])
    subject: str
    not_before: Moment
    not_after: Moment
    days_left: int = Field(description="Whole days until not_after; negative once expired")
    issued_at: Moment | None
    tariff: str
    price: Money
    renewal_of: Serial | None = Field(description="The certificate this one renews")
    auto_renew: bool
    revoked_at: Moment | None
    revocation_reason: RecordedReason | None
    invalidity_date: Moment | None
    key_destroyed_at: Moment | None


class Certificate(ListedCertificate):
    certificate_pem: str | None = Field(description="PEM, once issued")


class CertificateWithChain(Certificate):
    chain_pem: str = Field(description="The issuing CA certificate, then the root (PEM)")


class CodeSentView(View):
    serial: str
    purpose: Literal["activate", "reset"] = Field(
        description="activate: the first PIN; reset: a new PIN and authenticator (the old"
        " seed is destroyed when the code is used)"
    )
    sent_to: str = Field(description="The holder's registered e-mail, masked (h***@example.kg)")
    expires_at: Moment


class IssuedCertificate(CertificateWithChain):
    activation: CodeSentView | SkipJsonSchema[None] = _absent(
        "Cloud: the activation code mailed to the holder (not on an idempotent replay)"
    )


class CertificateList(View):
    certificates: list[ListedCertificate]
    count: int


class Activation(View):
    serial: str
    otpauth_uri: str = Field(description="The holder's TOTP enrolment, shown this once")


class RenewalDocumentView(View):
    id: int
    filename: str
    content_type: str
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    size: int = Field(description="Bytes")


class Renewal(View):
    id: int
    serial: Serial = Field(description="The certificate renewed")
    inn: str = Field(pattern="^[0-9]{14}$")
    holder_id: int
    status: Literal["review", "accepted", "approved", "rejected", "issued"] = Field(
        description="review: requisites changed, waits for documents and an officer"
    )
    automatic: bool
    late: bool
    changed: list[str] = Field(description="The requisites that differ from the certificate's")
    new_not_after: Moment
    new_serial: Serial | None
    submitted_at: Moment
    decided_at: Moment | None
    decision_note: str | None
    documents: list[RenewalDocumentView]


class RenewalList(View):
    renewals: list[Renewal]
    count: int


class UploadedDocument(View):
    id: int
    filename: str
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


# --- refusals with more than a detail ------------------------------------------------------------


class FieldError(View):
    field: str
    detail: str


class _Problem(View):
    type: str = Field(json_schema_extra={"format": "uri"})
    title: str
    status: int
    detail: str
    instance: str | SkipJsonSchema[None] = _absent()


class CertificatePaymentProblem(_Problem):
    """payment-required: nothing was issued or recorded; pay, then ask again."""

    amount_due: Tyiyn
    payment_account: str | None = Field(
        pattern="^[0-9]{16}$",
        description="The first certificate's payment account; null: top up the balance",
    )


class CertificateRefusalProblem(_Problem):
    """validation-failed (``errors``), or certificate-refused: the key or CSR (``errors``
    names csr_pem) or the pre-issuance lint (``lint_findings``)."""

    errors: list[FieldError] | SkipJsonSchema[None] = _absent("Every bad field, each named")
    lint_findings: list[str] | SkipJsonSchema[None] = _absent("What pkilint refused")

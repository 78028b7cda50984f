"""HTTP routes of the CA: subscriber certificates (issue, read, list the expiring ones).

``POST /api/v1/certificates`` issues a certificate for a holder the caller may see: while the
price is not paid the answer is 402 problem+json with ``amount_due`` (tyiyn) and, for the
first certificate, the 16-digit ``payment_account`` to pay; once paid, 201 with the serial,
the certificate and the chain. An ``Idempotency-Key`` header makes a retry return the same
certificate (200) instead of issuing and charging twice.

The JSON views are plain functions of a session so that ``tamga ca ...`` prints what the API
answers.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, g, request
from sqlalchemy.orm import Session

from ca.hierarchy import active_certificate
from ca.issuance import (
    certificate_state,
    days_left,
    get_certificate,
    issue_certificate,
    list_certificates,
)
from ca.models import Certificate, Holder
from policies.dates import iso_utc
from policies.roles import ClientRole
from signing_api.cloud import SigningRefused, check_pin, enrol
from signing_api.web.auth import require_client
from signing_api.web.common import (
    acting_holder,
    ca_refusals,
    ca_transaction,
    require_visible,
    visible_inns,
)
from signing_api.web.context import actor, json_body, now, reply, runtime
from signing_api.web.problems import Problem

__all__ = [
    "OPENAPI",
    "blueprint",
    "certificate_json",
    "chain_pem",
    "request_key",
]

blueprint = Blueprint("certificates", __name__)

_CALLERS = (ClientRole.OFFICER, ClientRole.PORTAL)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_FIELDS = {"holder_id", "role", "storage", "csr_pem", "key_spec", "pin"}


def _pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()


def chain_pem(session: Session) -> str:
    """The issuing CA certificate, then the root: what a relying party needs above a leaf."""
    return "".join(
        active_certificate(session, name).public_bytes(serialization.Encoding.PEM).decode()
        for name in ("issuing", "root")
    )


def certificate_json(session: Session, row: Certificate, *, now: datetime) -> dict[str, Any]:
    """A certificate as the API shows it (the PEM once it is issued)."""
    holder = session.get_one(Holder, row.holder_id)
    return {
        "serial": row.serial,
        "status": row.status,
        "state": certificate_state(row, now),
        "holder_id": row.holder_id,
        "holder": holder.full_name,
        "inn": row.subscriber_inn,
        "role": row.role,
        "storage": row.storage,
        "key_spec": row.key_spec,
        "subject": row.subject,
        "not_before": iso_utc(row.not_before),
        "not_after": iso_utc(row.not_after),
        "days_left": days_left(row, now),
        "issued_at": iso_utc(row.issued_at),
        "tariff": row.tariff,
        "price": row.price,
        "renewal_of": _serial_of(session, row.renewal_of),
        "auto_renew": row.auto_renew,
        "revoked_at": iso_utc(row.revoked_at),
        "revocation_reason": row.revocation_reason,
        "invalidity_date": iso_utc(row.invalidity_date),
        "key_destroyed_at": iso_utc(row.key_destroyed_at),
        "certificate_pem": None if row.der is None else _pem(row.der),
    }


def _serial_of(session: Session, certificate_id: int | None) -> str | None:
    if certificate_id is None:
        return None
    return session.get_one(Certificate, certificate_id).serial


def request_key() -> str | None:
    """``client:<id>:<Idempotency-Key>``: a retried request finds its first result."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise Problem("bad-request", "Idempotency-Key is 1-200 visible ASCII characters")
    return f"client:{g.client_id}:{key}"


def _visible_certificate(session: Session, serial: str) -> Certificate:
    row = get_certificate(session, serial)
    require_visible(session, row.subscriber_inn, "certificate")
    return row


@blueprint.post("/api/v1/certificates")
@require_client(*_CALLERS)
def issue() -> Response:
    body = json_body()
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise Problem(
            "validation-failed", f"unknown field {unknown[0]}", errors={unknown[0]: "unknown"}
        )
    for name in ("csr_pem", "key_spec"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise Problem("validation-failed", f"{name} is a string", errors={name: "a string"})
    holder_id = body.get("holder_id")
    pin = body.get("pin")
    if pin is not None and (body.get("storage") != "cloud" or not isinstance(pin, str)):
        raise Problem(
            "validation-failed",
            "a PIN is set for cloud certificates only",
            errors={"pin": "a string, for storage cloud"},
        )
    if pin is not None:
        try:
            check_pin(pin)  # before anything is issued or charged
        except SigningRefused as ex:
            raise Problem("validation-failed", ex.message, errors={"pin": ex.message}) from None
    rt, moment, who, key = runtime(), now(), actor(), request_key()
    with ca_transaction() as session:
        if isinstance(holder_id, int) and not isinstance(holder_id, bool):
            holder = session.get(Holder, holder_id)
            if holder is not None:
                require_visible(session, holder.subscriber_inn, "holder")
    with ca_refusals():  # issuance runs its own transactions
        issued = issue_certificate(
            rt.transaction,
            ca_token=rt.ca_token,
            cloud_token=rt.cloud_token,
            holder_id=holder_id,
            role=body.get("role"),
            storage=body.get("storage"),
            csr=body.get("csr_pem"),
            key_spec=body.get("key_spec"),
            public_url=rt.config.public_url,
            now=moment,
            actor=who,
            request_key=key,
        )
    with ca_transaction() as session:
        row = session.get_one(Certificate, issued.certificate.id)
        view = certificate_json(session, row, now=moment) | {"chain_pem": chain_pem(session)}
    if pin is not None and not issued.replayed:
        view["otpauth_uri"] = _enrol(row.serial, pin, moment, who)
    return reply(
        view, 200 if issued.replayed else 201, location=f"/api/v1/certificates/{row.serial}"
    )


def _enrol(serial: str, pin: object, moment: datetime, who: str) -> str:
    """Set the holder's PIN and TOTP seed; the otpauth URI (shown this once)."""
    rt = runtime()
    try:
        with rt.transaction() as session:
            row = get_certificate(session, serial)
            return enrol(session, rt.cloud_token, row, pin=pin, now=moment, actor=who)
    except SigningRefused as ex:
        raise Problem("validation-failed", ex.message, errors={"pin": ex.message}) from None


@blueprint.post("/api/v1/certificates/<serial>/activation")
@require_client(*_CALLERS)
def activate(serial: str) -> Response:
    """Set the PIN and OTP of a cloud certificate issued without them (its holder only)."""
    body = json_body()
    moment, who = now(), actor()
    with ca_transaction() as session:
        row = _visible_certificate(session, serial)
        holder = acting_holder(session)
        if holder is None or holder.id != row.holder_id:
            raise Problem(
                "forbidden", "only the certificate's holder sets its PIN (X-Tamga-Holder)"
            )
    return reply(
        {"serial": serial, "otpauth_uri": _enrol(serial, body.get("pin"), moment, who)}, 201
    )


@blueprint.get("/api/v1/certificates/<serial>")
@require_client(*_CALLERS)
def show(serial: str) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = _visible_certificate(session, serial)
        return reply(certificate_json(session, row, now=moment) | {"chain_pem": chain_pem(session)})


def _int_arg(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise Problem(
            "validation-failed",
            f"{name} is a whole number from {low} to {high}",
            errors={name: f"a whole number from {low} to {high}"},
        )
    return int(raw)


@blueprint.get("/api/v1/certificates")
@require_client(*_CALLERS)
def listing() -> Response:
    """Certificates the caller may see; ``expiring_within_days=N`` for the renewal notice."""
    within = _int_arg("expiring_within_days", 0, 3660)
    holder_id = _int_arg("holder_id", 1, 2**62)
    inn = request.args.get("inn")
    moment = now()
    with ca_transaction() as session:
        inns = visible_inns(session)
        if inn is not None:
            inns = set() if inns is not None and inn not in inns else {inn}
        rows = list_certificates(
            session, now=moment, inns=inns, holder_id=holder_id, expiring_within_days=within
        )
        items = [
            {
                k: v
                for k, v in certificate_json(session, r, now=moment).items()
                if k != "certificate_pem"
            }
            for r in rows
        ]
    return reply({"certificates": items, "count": len(items)})


# ---- OpenAPI --------------------------------------------------------------------------------

_PROBLEM = {"description": "problem+json", "content": {"application/problem+json": {}}}
_CERT = {"$ref": "#/components/schemas/Certificate"}
_SERIAL = {"name": "serial", "in": "path", "required": True, "schema": {"type": "string"}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "paths": {
        "/api/v1/certificates": {
            "post": {
                "operationId": "issueCertificate",
                "summary": "Issue a certificate for a holder (paid first; idempotent by key)",
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CertificateRequest"}
                        }
                    },
                },
                "responses": {
                    "201": _ok("issued", _CERT),
                    "200": _ok("a replay of an issued request", _CERT),
                    "402": _PROBLEM | {"description": "unpaid: amount_due, payment_account"},
                    "404": _PROBLEM,
                    "409": _PROBLEM,
                    "422": _PROBLEM,
                },
            },
            "get": {
                "operationId": "listCertificates",
                "summary": "Certificates the caller may see; expiring_within_days for renewal",
                "parameters": [
                    {"name": "expiring_within_days", "in": "query", "schema": {"type": "integer"}},
                    {"name": "holder_id", "in": "query", "schema": {"type": "integer"}},
                    {"name": "inn", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": _ok("the list", {"type": "object"}), "422": _PROBLEM},
            },
        },
        "/api/v1/certificates/{serial}/activation": {
            "post": {
                "operationId": "activateCertificate",
                "summary": "Set a cloud certificate's PIN; the otpauth URI once (its holder)",
                "parameters": [_SERIAL],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"pin": {"type": "string"}}}
                        }
                    },
                },
                "responses": {
                    "201": _ok("the otpauth URI", {"type": "object"}),
                    "403": _PROBLEM,
                    "404": _PROBLEM,
                    "422": _PROBLEM,
                },
            }
        },
        "/api/v1/certificates/{serial}": {
            "get": {
                "operationId": "getCertificate",
                "summary": "One certificate, with its PEM and chain",
                "parameters": [_SERIAL],
                "responses": {"200": _ok("the certificate", _CERT), "404": _PROBLEM},
            }
        },
    },
    "components": {
        "schemas": {
            "CertificateRequest": {
                "type": "object",
                "required": ["holder_id", "role", "storage"],
                "properties": {
                    "holder_id": {"type": "integer"},
                    "role": {
                        "type": "string",
                        "enum": [
                            "head",
                            "accountant",
                            "head_as_accountant",
                            "complex_5",
                            "complex_10",
                            "complex_unlimited",
                        ],
                    },
                    "storage": {"type": "string", "enum": ["cloud", "rutoken"]},
                    "csr_pem": {"type": "string", "description": "RuToken: PKCS#10, PEM"},
                    "key_spec": {"type": "string", "enum": ["ec-p256", "rsa-2048"]},
                    "pin": {"type": "string", "description": "cloud: the holder's PIN"},
                },
            },
            "Certificate": {
                "type": "object",
                "properties": {
                    "serial": {"type": "string", "pattern": "^[0-9a-f]+$"},
                    "status": {"type": "string"},
                    "state": {"type": "string"},
                    "holder_id": {"type": "integer"},
                    "inn": {"type": "string"},
                    "role": {"type": "string"},
                    "storage": {"type": "string"},
                    "not_before": {"type": "string", "format": "date-time"},
                    "not_after": {"type": "string", "format": "date-time"},
                    "days_left": {"type": "integer"},
                    "certificate_pem": {"type": "string", "nullable": True},
                    "chain_pem": {"type": "string"},
                },
            },
        }
    },
}

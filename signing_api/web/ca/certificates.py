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
from ca.requests import IssueRequest
from policies.cert_profiles import Storage
from policies.dates import iso_utc
from policies.roles import ClientRole
from signing_api.cloud import CodeSent, SigningRefused, activate, send_code
from signing_api.web.ca.schemas import (
    IDEMPOTENCY_PARAMETER,
    SERIAL_PARAMETER,
    Activation,
    ActivationRequest,
    CertificateList,
    CertificatePaymentProblem,
    CertificateQuery,
    CertificateRefusalProblem,
    CertificateRequest,
    CertificateWithChain,
    CodeSentView,
    IssuedCertificate,
)
from signing_api.web.common import (
    ca_refusals,
    ca_transaction,
    require_visible,
    visible_inns,
)
from signing_api.web.context import actor, now, reply, runtime, send_mail
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem, problem_of

__all__ = [
    "blueprint",
    "certificate_json",
    "chain_pem",
    "request_key",
]

blueprint = Blueprint("certificates", __name__)

_CALLERS = (ClientRole.OFFICER, ClientRole.PORTAL)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


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
        # What the certificate says, not what the registry says now (issue #12 finding 13).
        "holder": row.requisites.get("full_name", holder.full_name),
        "registry_holder": holder.full_name,
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


_ISSUE_REFUSED = "Invalid fields (errors), or the key, CSR or certificate refused"


@blueprint.post("/api/v1/certificates")
@operation(
    "issueCertificate",
    "Issue a certificate for a holder (paid first; idempotent by key)",
    body=CertificateRequest,
    responses={
        201: Reply(IssuedCertificate, "Issued"),
        200: Reply(IssuedCertificate, "A replay of an issued request (same Idempotency-Key)"),
        402: Reply(
            CertificatePaymentProblem,
            "Unpaid: amount_due, and the payment account of a first certificate",
            media_type="application/problem+json",
        ),
        422: Reply(
            CertificateRefusalProblem, _ISSUE_REFUSED, media_type="application/problem+json"
        ),
    },
    parameters=[IDEMPOTENCY_PARAMETER],
    tag="ca",
    roles=_CALLERS,
    errors=(400, 402, 404, 409, 422),
    refusals={
        402: "the price is not paid yet",
        422: "fields that do not fit together (a csr_pem for rutoken only, a pin for cloud "
        "only), a key or CSR refused, the Idempotency-Key used for another request",
    },
    description=(
        "While the price is not paid the answer is 402 with amount_due (tyiyn) and, for the"
        " subscriber's first certificate, the 16-digit payment_account to pay; later"
        " certificates are paid from the balance. RuToken: send csr_pem (the CSR made on the"
        " token); cloud: Tamga generates the key (key_spec) and mails a one-time activation"
        " code to the holder, who chooses the PIN with it (POST …/activation)."
    ),
)
def issue(body: CertificateRequest) -> Response:
    rt, moment, who, key = runtime(), now(), actor(), request_key()
    with ca_transaction() as session:
        holder = session.get(Holder, body.holder_id)
        if holder is not None:
            require_visible(session, holder.subscriber_inn, "holder")
    with ca_refusals():  # issuance runs its own transactions
        request = IssueRequest.parse(
            holder_id=body.holder_id,
            role=body.role,
            storage=body.storage,
            csr=body.csr_pem,
            key_spec=body.key_spec,
        )
        issued = issue_certificate(
            rt.transaction,
            ca_token=rt.ca_token,
            cloud_token=rt.cloud_token,
            request=request,
            public_url=rt.config.public_url,
            now=moment,
            actor=who,
            request_key=key,
        )
    with ca_transaction() as session:
        row = session.get_one(Certificate, issued.certificate.id)
        view = certificate_json(session, row, now=moment) | {"chain_pem": chain_pem(session)}
    if Storage(row.storage) is Storage.CLOUD and not issued.replayed:
        view["activation"] = _send_code(row.serial, moment, who).view()
    return reply(
        view, 200 if issued.replayed else 201, location=f"/api/v1/certificates/{row.serial}"
    )


def _send_code(serial: str, moment: datetime, who: str) -> CodeSent:
    """A new activation code to the holder's e-mail: committed, then handed to SMTP."""
    rt = runtime()
    try:
        with rt.transaction() as session:
            sent = send_code(session, get_certificate(session, serial), now=moment, actor=who)
    except SigningRefused as ex:
        raise problem_of(ex) from None
    send_mail([sent.message_id])
    return sent


_RELAYS = "Officers and portals relay it for certificates they may see."


@blueprint.post("/api/v1/certificates/<serial>/activation-code")
@operation(
    "sendActivationCode",
    "Mail a new one-time activation code to the certificate's holder",
    responses={202: Reply(CodeSentView, "Sent to the holder's registered e-mail")},
    parameters=[SERIAL_PARAMETER],
    tag="ca",
    roles=_CALLERS,
    errors=(404, 422),
    refusals={
        422: "the certificate is not a cloud one, not active or suspended, or its holder is"
        " inactive"
    },
    description=(
        "For a cloud certificate whose holder has no PIN yet (purpose activate), forgot it or"
        " lost the authenticator (purpose reset: using the code destroys the old PIN and"
        " seed). The code goes only to the holder's registered e-mail; the previous open code"
        " is void. " + _RELAYS
    ),
)
def send_activation_code(serial: str) -> Response:
    moment, who = now(), actor()
    with ca_transaction() as session:
        _visible_certificate(session, serial)
    return reply(_send_code(serial, moment, who).view(), 202)


@blueprint.post("/api/v1/certificates/<serial>/activation")
@operation(
    "activateCertificate",
    "The holder sets its PIN with its activation code; the otpauth URI once",
    body=ActivationRequest,
    responses={201: Reply(Activation, "Activated: the otpauth URI, shown this once")},
    parameters=[SERIAL_PARAMETER],
    tag="ca",
    roles=_CALLERS,
    errors=(400, 404, 422),
    refusals={
        422: "a PIN of one repeated character; no open code, or a wrong, used, expired or void"
        " one; activation held back after a contact change; activated already"
    },
    description=(
        "The code mailed to the holder is the proof that the holder acts: five wrong codes"
        " void it, it expires after 72 hours, and it is refused for 24 hours after an"
        " officer changed the holder's contact. " + _RELAYS
    ),
)
def activate_certificate(serial: str, body: ActivationRequest) -> Response:
    rt, moment, who = runtime(), now(), actor()
    with ca_transaction() as session:
        _visible_certificate(session, serial)
    try:
        with rt.transaction() as session:
            done = activate(
                session,
                rt.cloud_token,
                get_certificate(session, serial),
                code=body.activation_code,
                pin=body.pin,
                now=moment,
                actor=who,
            )
    except SigningRefused as ex:
        raise problem_of(ex) from None
    if done.refusal is not None:  # the attempt was counted and committed
        raise problem_of(done.refusal)
    return reply({"serial": serial, "otpauth_uri": done.otpauth_uri}, 201)


@blueprint.get("/api/v1/certificates/<serial>")
@operation(
    "getCertificate",
    "One certificate, with its PEM and chain",
    responses={200: Reply(CertificateWithChain, "The certificate")},
    parameters=[SERIAL_PARAMETER],
    tag="ca",
    roles=_CALLERS,
    errors=(404,),
)
def show(serial: str) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = _visible_certificate(session, serial)
        return reply(certificate_json(session, row, now=moment) | {"chain_pem": chain_pem(session)})


@blueprint.get("/api/v1/certificates")
@operation(
    "listCertificates",
    "Certificates the caller may see; expiring_within_days for renewal",
    query=CertificateQuery,
    responses={200: Reply(CertificateList, "Newest first; soonest expiry first when expiring")},
    tag="ca",
    roles=_CALLERS,
)
def listing(query: CertificateQuery) -> Response:
    """Certificates the caller may see; ``expiring_within_days=N`` for the renewal notice."""
    moment = now()
    with ca_transaction() as session:
        inns = visible_inns(session)
        if query.inn is not None:
            inns = set() if inns is not None and query.inn not in inns else {query.inn}
        rows = list_certificates(
            session,
            now=moment,
            inns=inns,
            holder_id=query.holder_id,
            expiring_within_days=query.expiring_within_days,
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

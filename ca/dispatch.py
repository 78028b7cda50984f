"""Dispatch confirmations: Tamga's own signed statement that a report left for an agency.

When filing sends a report to an agency, Tamga confirms it: an **encapsulated CMS** (the
statement inside, :func:`ca.cms.sign_encapsulated`) signed by the operator's ``tamga-dispatch``
key in the CA token, with the dispatch certificate, the issuing CA and the root in it, and a
signature-time-stamp from our own TSA. It proves that the report was sent, and when, even when
the agency's system was down and no receipt came back.

The statement (the eContent) is canonical UTF-8 JSON, sorted keys and no spaces::

    {"agency":"tax","document_sha256":"<hex>","inn":"<14 digits>","kind":"<form>",
     "office":"003","period":"2026-11","report_id":"<id>","sent_at":"<ISO-8601>",
     "signatures":"accountant:<hex>,head:<hex>","type":"dispatch-confirmation"}

``signatures`` names the SHA-256 of each signature file (the CMS DER) the report left with, so
the confirmation, time-stamped by our TSA, proves those signatures existed when it was sent:
the dispute engine uses it as the operator's evidence for a signature without its own
time-stamp (a RuToken signature made with openssl, say).

``ensure_dispatch`` (called by ``tamga init``) makes the key (sensitive, never extractable)
and has the issuing CA certify it (policies.ca_profiles.DISPATCH: digitalSignature and
nonRepudiation, no CA, policy ``<arc>.3.1``), linted by pkilint before the CA key signs, as the
TSA certificate is. ``dispatch_chain`` gives what a verifier needs; ``read_confirmation``
verifies a confirmation and returns its statement.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from sqlalchemy.orm import Session

from ca.cms import CMSInvalid, sign_encapsulated, verify_encapsulated
from ca.errors import CAError, CertificateMismatch, HierarchyNotReady, InvalidFields
from ca.hierarchy import active_certificate
from ca.operator_keys import OperatorCertificate, ensure_operator_certificate, same_key
from ca.tsa import timestamp_token
from db import audit
from hsm import HSMToken, Signer
from policies.ca_profiles import DISPATCH, ISSUING_CA, ROOT_CA
from policies.identifiers import is_inn
from policies.text import describe, refused_character

__all__ = [
    "STATEMENT_FIELDS",
    "STATEMENT_TYPE",
    "DispatchUnavailable",
    "confirm_dispatch",
    "confirmation_content",
    "dispatch_certificate",
    "dispatch_chain",
    "ensure_dispatch",
    "read_confirmation",
]

STATEMENT_TYPE = "dispatch-confirmation"
# What the caller states; "type" is ours (it may be given, with our value only).
STATEMENT_FIELDS = (
    "report_id",
    "document_sha256",
    "agency",
    "office",
    "inn",
    "kind",
    "period",
    "sent_at",
    "signatures",
)
_MAX_VALUE = 200  # characters: identifiers, codes and a timestamp, never prose
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# "head:<sha256 of its CMS>,accountant:<sha256>": the signature files the report left with
_SIGNATURES = re.compile(r"^[a-z_]{1,24}:[0-9a-f]{64}(,[a-z_]{1,24}:[0-9a-f]{64}){0,3}$")


class DispatchUnavailable(CAError):
    """No confirmation can be signed now: no dispatch certificate, not valid now, wrong key."""


# --- the statement -----------------------------------------------------------------------------


def _check_sent_at(value: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return "must be an ISO-8601 date and time"
    if moment.tzinfo is None:
        return "must carry its UTC offset (e.g. 2026-12-03T09:15:00Z)"
    return None


_FIELD_CHECKS: dict[str, Callable[[str], str | None]] = {
    "document_sha256": lambda value: (
        None if _SHA256_HEX.match(value) else "must be 64 lowercase hexadecimal digits (SHA-256)"
    ),
    "inn": lambda value: None if is_inn(value) else "must be 14 digits",
    "signatures": lambda value: (
        None
        if _SIGNATURES.match(value)
        else "must be slot:sha256 pairs separated by commas (head:<64 hex>,accountant:<64 hex>)"
    ),
    "sent_at": _check_sent_at,
}


def _check_value(field: str, value: object) -> str | None:
    """What is wrong with one statement value, or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > _MAX_VALUE:
        return f"is longer than {_MAX_VALUE} characters"
    refused = refused_character(value)
    if refused is not None:
        return f"contains {describe(refused)}"
    if value != value.strip():
        return "has surrounding spaces"
    check = _FIELD_CHECKS.get(field)
    return None if check is None else check(value)


def confirmation_content(statement: Mapping[str, str]) -> bytes:
    """The eContent for ``statement``: canonical UTF-8 JSON with ``"type"`` added.

    Raises :class:`ca.errors.InvalidFields` naming every missing, unknown or malformed field.
    """
    errors: dict[str, str] = {}
    for field in STATEMENT_FIELDS:
        if field not in statement:
            errors[field] = "is missing"
            continue
        problem = _check_value(field, statement[field])
        if problem is not None:
            errors[field] = problem
    for field in statement:
        if field == "type":
            if statement[field] != STATEMENT_TYPE:
                errors[field] = f"must be {STATEMENT_TYPE!r} (or left out)"
        elif field not in STATEMENT_FIELDS:
            errors[str(field)] = "is not a field of a dispatch confirmation"
    if errors:
        raise InvalidFields(errors)
    document = {field: statement[field] for field in STATEMENT_FIELDS} | {"type": STATEMENT_TYPE}
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8")


# --- the key and its certificate ---------------------------------------------------------------


_DISPATCH_CERTIFICATE = OperatorCertificate(
    name=DISPATCH.name,
    title="dispatch",
    purpose="dispatch confirmations",
    key_label=DISPATCH.key_label,
    key_spec=DISPATCH.key_spec,
    validity_years=DISPATCH.validity_years,
    subject=DISPATCH.subject,
    key_usage=x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,  # nonRepudiation: the operator stands by what it says
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    ),
    extensions=(
        (
            x509.CertificatePolicies(
                [x509.PolicyInformation(ObjectIdentifier(DISPATCH.policy_oid), None)]
            ),
            False,
        ),
    ),
)


def ensure_dispatch(
    session: Session, ca_token: HSMToken, *, public_url: str, now: datetime, actor: str
) -> x509.Certificate:
    """The dispatch certificate, making the dispatch key and its certificate first if missing
    (``ca.operator_keys.ensure_operator_certificate``: idempotent; ``HierarchyNotReady`` before
    the issuing CA has a certificate, ``CertificateMismatch`` for another key's certificate)."""
    return ensure_operator_certificate(
        session, ca_token, _DISPATCH_CERTIFICATE, public_url=public_url, now=now, actor=actor
    )


def dispatch_certificate(session: Session) -> x509.Certificate:
    """The active dispatch certificate; DispatchUnavailable before ``tamga init`` made it."""
    try:
        return active_certificate(session, DISPATCH.name)
    except HierarchyNotReady as ex:
        raise DispatchUnavailable("there is no dispatch certificate yet (run `tamga init`)") from ex


def dispatch_chain(session: Session) -> list[x509.Certificate]:
    """[dispatch, issuing CA, root]: what a confirmation carries and a verifier needs.

    The root is the trust anchor (``openssl cms -verify -CAfile``); the issuing CA certificate is
    the intermediate.
    """
    return [
        dispatch_certificate(session),
        active_certificate(session, ISSUING_CA.name),
        active_certificate(session, ROOT_CA.name),
    ]


# --- confirmations -------------------------------------------------------------------------------


def confirm_dispatch(
    session: Session,
    signer: Signer,
    *,
    statement: Mapping[str, str],
    tsa: Signer,
    tsa_clock: Callable[[], datetime],
    now: datetime,
    actor: str,
) -> bytes:
    """DER of the dispatch confirmation for ``statement`` (see the module docstring).

    ``signer`` is the dispatch key (``Runtime.dispatch_signer``), ``now`` the signing-time; the
    signature value is then time-stamped by our TSA (``tsa``), which reads its own clock
    (``tsa_clock``) as in CAdES-B-T signing. Journals one ``dispatch.confirmed`` entry (the TSA
    journals its token as well). Raises :class:`ca.errors.InvalidFields` for a bad statement and
    :class:`DispatchUnavailable` when the key or certificate cannot sign now.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    content = confirmation_content(statement)
    if signer.label != DISPATCH.key_label:
        raise DispatchUnavailable(
            f"dispatch confirmations are signed only with {DISPATCH.key_label!r},"
            f" not {signer.label!r}"
        )
    chain = dispatch_chain(session)
    cert = chain[0]
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise DispatchUnavailable("the dispatch certificate is not valid at this moment")
    if not same_key(cert, signer.public_key):
        raise CertificateMismatch(
            "the dispatch key on the token does not match the installed dispatch certificate"
        )

    def stamp(imprint: bytes, hash_name: str) -> bytes:
        return timestamp_token(session, tsa, imprint, hash_name, now=tsa_clock(), actor=actor)

    confirmation = sign_encapsulated(
        content, cert, signer.private_key(), chain[1:], signing_time=now, timestamper=stamp
    )
    audit.append(
        session,
        actor=actor,
        action="dispatch.confirmed",
        object=f"report:{statement['report_id']}",
        details={
            "report_id": statement["report_id"],
            "agency": statement["agency"],
            "office": statement["office"],
            "document_sha256": statement["document_sha256"],
            "sent_at": statement["sent_at"],
            "confirmation_sha256": hashlib.sha256(confirmation).hexdigest(),
            "certificate_serial": format(cert.serial_number, "x"),
        },
        now=now,
    )
    return confirmation


def read_confirmation(
    confirmation: bytes, certificate: x509.Certificate
) -> tuple[dict[str, str], datetime]:
    """Verify a confirmation made by ``certificate``: (its statement, its signing-time).

    The signature is checked with :func:`ca.cms.verify_encapsulated` (``certificate`` pinned);
    the chain and the time-stamp are the relying party's business (``dispatch_chain``). Raises
    :class:`ca.cms.CMSInvalid` when it does not verify or is not a dispatch confirmation.
    """
    content, signed_at = verify_encapsulated(confirmation, certificate)
    try:
        statement = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as ex:
        raise CMSInvalid("the confirmation's content is not UTF-8 JSON") from ex
    if not isinstance(statement, dict) or statement.get("type") != STATEMENT_TYPE:
        raise CMSInvalid("the signed content is not a dispatch confirmation")
    try:
        canonical = confirmation_content(statement)
    except InvalidFields as ex:
        raise CMSInvalid(f"the dispatch confirmation's statement is malformed: {ex}") from ex
    if canonical != content:
        raise CMSInvalid("the dispatch confirmation's statement is not in canonical form")
    return statement, signed_at

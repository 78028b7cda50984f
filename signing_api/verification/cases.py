"""Dispute cases: the §8 procedure run on uploaded material, stored, and paid for (§8.5).

:func:`open_case` checks every field of a request at once (:class:`InvalidDispute` names each bad
one), runs the engine on the material with the operator's archive as trust (our CA certificates
and every CRL ever issued, :func:`archive.trust_from_archive`), charges the subscriber the
``dispute`` tariff through the billing facade and stores the case, all in the caller's one
transaction: a refusal at any point (bad fields, unreadable material, a balance that does not
cover the fee) leaves no case, no journal entry and no money moved. The case is append-only
(migration 0011) and journalled (``dispute.case.opened``); the fee's ledger transaction has the
key ``dispute:<case id>``. A request key (the HTTP ``Idempotency-Key``) makes a retry return the
first case and do nothing again; the same key with other material is refused.

No Flask here: the HTTP edge hands over the multipart parts as :class:`NamedBytes` by field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

import billing
import db
from policies.dates import iso_utc
from policies.identifiers import is_inn
from policies.money import som
from policies.tariffs import TARIFFS, TariffSchedule
from policies.text import describe, normalise, refused_character
from signing_api.verification import (
    package_signatures,
    verify_package,
    verify_pdf,
    verify_signature,
)
from signing_api.verification.archive import operator_evidence, trust_from_archive
from signing_api.verification.errors import (
    DisputeIdempotencyConflict,
    DisputeNotFound,
    DisputePaymentRequired,
    InvalidDispute,
)
from signing_api.verification.inputs import NamedBytes, UnreadableInput, sha256_hex
from signing_api.verification.models import DisputeCase
from signing_api.verification.report import DocumentReport
from signing_api.verification.stored import canonical_json, report_from_json

__all__ = [
    "DISPUTE_TARIFF",
    "FILE_FIELDS",
    "TEXT_FIELDS",
    "Material",
    "Opened",
    "case_json",
    "case_summary",
    "get_case",
    "list_cases",
    "open_case",
    "stored_report",
]

_log = logging.getLogger("tamga.disputes")
_BISHKEK = ZoneInfo("Asia/Bishkek")
DISPUTE_TARIFF = "dispute"
TEXT_FIELDS = ("subscriber_inn",)
FILE_FIELDS = ("document", "signature", "pdf", "package")
FORMS_TEXT = "send signature (with document when it is detached), or pdf, or package"
MAX_NAME = 200


@dataclass(frozen=True)
class Material:
    """What is disputed: ``cms`` (a signature, and its document when detached), a PDF with
    its embedded signatures, or a filed report's evidence package."""

    form: str  # cms | pdf | package
    document: NamedBytes | None  # the detached document, the PDF or the package
    signature: NamedBytes | None  # form cms only


@dataclass(frozen=True)
class Opened:
    case: DisputeCase
    replayed: bool


# --- the request's fields -------------------------------------------------------------------


def _check_subscriber(session: Session, values: Sequence[str], errors: dict[str, str]) -> str:
    if not values:
        errors["subscriber_inn"] = "required: the 14-digit INN of the subscriber who pays (§8.5)"
        return ""
    if len(values) > 1:
        errors["subscriber_inn"] = "sent more than once"
        return ""
    inn = values[0]
    if not is_inn(inn):
        errors["subscriber_inn"] = "a 14-digit INN"
        return ""
    try:
        billing.balance(session, inn)
    except billing.AccountNotFound:
        errors["subscriber_inn"] = f"no subscriber with INN {inn}"
        return ""
    return inn


def _file_name(given: str, field: str, errors: dict[str, str]) -> str:
    """The upload's own name, without directories, as text fit for the report and its PDF."""
    name = normalise(given.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    bad = refused_character(name)
    if bad is not None:
        errors[field] = f"its file name has a character that is not accepted: {describe(bad)}"
        return field
    if len(name) > MAX_NAME:
        errors[field] = f"its file name is longer than {MAX_NAME} characters"
        return field
    return name or field


def _check_parts(
    files: Mapping[str, Sequence[NamedBytes]],
    texts: Mapping[str, Sequence[str]],
    errors: dict[str, str],
) -> None:
    """Every part is a field of this request, and of its kind (text or file)."""
    for name in texts:
        if name in FILE_FIELDS:
            errors[name] = "is a file: send it as a multipart file part (with a filename)"
        elif name not in TEXT_FIELDS:
            errors[name] = "is not a field of this request"
    for name in files:
        if name in TEXT_FIELDS:
            errors[name] = "is a text field, not a file"
        elif name not in FILE_FIELDS:
            errors[name] = "is not a field of this request"


def _uploads(
    files: Mapping[str, Sequence[NamedBytes]], errors: dict[str, str]
) -> dict[str, NamedBytes]:
    """The material's files by field: one each, not empty, with a name fit for the report."""
    given: dict[str, NamedBytes] = {}
    for name in FILE_FIELDS:
        parts = files.get(name, ())
        if len(parts) > 1:
            errors[name] = "sent more than once"
        elif parts and not parts[0].data:
            errors[name] = "is an empty file"
        elif parts:
            given[name] = NamedBytes(_file_name(parts[0].name, name, errors), parts[0].data)
    return given


def _check_material(
    files: Mapping[str, Sequence[NamedBytes]],
    texts: Mapping[str, Sequence[str]],
    errors: dict[str, str],
) -> Material | None:
    _check_parts(files, texts, errors)
    given = _uploads(files, errors)
    sent = {name for name in FILE_FIELDS if files.get(name)}
    forms = [f for f in ("signature", "pdf", "package") if f in sent]
    if not sent:
        if not any(name in texts for name in FILE_FIELDS):
            for name in ("signature", "pdf", "package"):
                errors.setdefault(name, f"required: {FORMS_TEXT}")
        return None
    if "document" in sent and "signature" not in sent:
        errors.setdefault("signature", "required with document: the signature over it")
    if len(forms) > 1 or ("document" in sent and forms and forms != ["signature"]):
        for name in sorted(sent):
            errors.setdefault(name, f"one form only: {FORMS_TEXT}")
    if errors or len(forms) != 1:
        return None
    if forms[0] == "signature":
        return Material("cms", given.get("document"), given["signature"])
    return Material(forms[0], given[forms[0]], None)


def _fingerprint(inn: str, material: Material) -> str:
    content: dict[str, Any] = {"inn": inn, "form": material.form}
    for role, item in (("document", material.document), ("signature", material.signature)):
        if item is not None:
            content[role] = {"name": item.name, "sha256": sha256_hex(item.data)}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _earlier(session: Session, request_key: str | None, print_: str) -> DisputeCase | None:
    if request_key is None:
        return None
    earlier = session.scalars(
        select(DisputeCase).where(DisputeCase.request_key == request_key)
    ).one_or_none()
    if earlier is not None and earlier.request_print != print_:
        raise DisputeIdempotencyConflict(
            "this Idempotency-Key was used for another dispute case",
            {"Idempotency-Key": "used before for other material or another subscriber"},
        )
    return earlier


# --- the procedure --------------------------------------------------------------------------


def _field_of(material: Material, message: str) -> str:
    """The request field an :class:`UnreadableInput` is about (its message starts with a name)."""
    if material.form != "cms":
        return material.form
    document = material.document
    signature = material.signature
    if (
        document is not None
        and signature is not None
        and document.name != signature.name
        and message.startswith(f"{document.name}:")
    ):
        return "document"
    return "signature"


def _verify(session: Session, material: Material, now: datetime) -> DocumentReport:
    trust = trust_from_archive(session)
    try:
        if material.form == "cms":
            if material.signature is None:
                raise InvalidDispute({"signature": "required"})
            return verify_signature(
                signature=material.signature,
                document=material.document,
                trust=trust,
                now=now,
                evidence=operator_evidence(session, [material.signature.data]),
            )
        if material.document is None:
            raise InvalidDispute({material.form: "required"})
        if material.form == "pdf":
            return verify_pdf(material.document, trust, now=now)
        return verify_package(
            material.document,
            trust,
            now=now,
            evidence=operator_evidence(session, package_signatures(material.document.data)),
        )
    except UnreadableInput as ex:
        raise InvalidDispute({_field_of(material, str(ex)): str(ex)}) from None
    except ValueError as ex:
        # asn1crypto parses lazily: a malformed inner field (a signed attribute's length) can
        # surface as ValueError wherever the engine first reads it. Unreadable material, not a
        # server error; logged with its traceback in case it is the engine's fault.
        _log.warning("the engine could not read the %s material", material.form, exc_info=True)
        field = _field_of(material, "")
        raise InvalidDispute({field: f"unreadable: {ex}".splitlines()[0]}) from None


def _payment_required(inn: str, price: int, available: int) -> DisputePaymentRequired:
    return DisputePaymentRequired(
        f"the dispute procedure costs {som(price)} som (§8.5); the balance of {inn} has"
        f" {som(max(available, 0))} som available: top it up and ask again",
        amount_due=price - max(available, 0),
        payment_account=None,
    )


def open_case(
    session: Session,
    *,
    files: Mapping[str, Sequence[NamedBytes]],
    texts: Mapping[str, Sequence[str]],
    client_id: int | None,
    opened_as: str,
    request_key: str | None,
    now: datetime,
    actor: str,
    tariffs: TariffSchedule = TARIFFS,
) -> Opened:
    """Run the §8 procedure on the material, charge the subscriber and store the case.

    ``files``/``texts``: the request's file and text parts by field name (``subscriber_inn``;
    ``signature`` with an optional ``document``, or ``pdf``, or ``package``). Everything happens
    in the caller's transaction; any refusal raised leaves nothing behind once it rolls back.
    """
    errors: dict[str, str] = {}
    inn = _check_subscriber(session, texts.get("subscriber_inn", ()), errors)
    material = _check_material(files, texts, errors)
    if errors or material is None or not inn:
        raise InvalidDispute(errors or {"request": FORMS_TEXT})
    print_ = _fingerprint(inn, material)
    if (earlier := _earlier(session, request_key, print_)) is not None:
        return Opened(earlier, replayed=True)
    tariff = tariffs.price(DISPUTE_TARIFF, now.astimezone(_BISHKEK).date())
    available = billing.balance(session, inn).available
    if available < tariff.price:
        raise _payment_required(inn, tariff.price, available)
    report = _verify(session, material, now)
    # Money: the subscriber's account locked, then the key read again (a concurrent retry may
    # have stored the case meanwhile), then the charge and the case (billing's lock order).
    billing.lock_account(session, inn)
    if (earlier := _earlier(session, request_key, print_)) is not None:
        return Opened(earlier, replayed=True)
    case_id = str(uuid.uuid4())
    fee_key = f"dispute:{case_id}"
    try:
        posting = billing.charge_tariff(
            session,
            inn=inn,
            tariff_code=DISPUTE_TARIFF,
            key=fee_key,
            now=now,
            actor=actor,
            tariffs=tariffs,
        )
    except billing.InsufficientFunds as ex:
        raise _payment_required(inn, tariff.price, ex.available) from None
    stored = canonical_json(report)
    document, signature = material.document, material.signature
    case = DisputeCase(
        id=case_id,
        subscriber_inn=inn,
        client_id=client_id,
        opened_by=actor,
        opened_as=opened_as,
        created_at=now,
        request_key=request_key,
        request_print=print_,
        form=material.form,
        document_name=None if document is None else document.name,
        document=None if document is None else document.data,
        document_sha256=None if document is None else sha256_hex(document.data),
        document_size=None if document is None else len(document.data),
        signature_name=None if signature is None else signature.name,
        signature=None if signature is None else signature.data,
        signature_sha256=None if signature is None else sha256_hex(signature.data),
        signature_size=None if signature is None else len(signature.data),
        report=stored,
        report_sha256=sha256_hex(stored),
        indication=report.indication.value,
        sub_indication=None if report.sub_indication is None else report.sub_indication.value,
        engine=report.engine,
        tariff=tariff.code,
        fee=tariff.price,
        fee_key=fee_key,
        fee_txn=posting.transaction_id,
    )
    session.add(case)
    session.flush()
    db.append(
        session,
        actor=actor,
        action="dispute.case.opened",
        object=f"dispute:{case.id}",
        details={
            "subscriber": inn,
            "form": case.form,
            "document_sha256": case.document_sha256,
            "signature_sha256": case.signature_sha256,
            "report_sha256": case.report_sha256,
            "indication": case.indication,
            "sub_indication": case.sub_indication,
            "engine": case.engine,
            "fee": case.fee,
            "transaction": case.fee_txn,
        },
        now=now,
    )
    return Opened(case, replayed=False)


# --- reading --------------------------------------------------------------------------------


def get_case(session: Session, case_id: str) -> DisputeCase:
    row = session.get(DisputeCase, case_id) if len(case_id) <= 36 else None
    if row is None:
        raise DisputeNotFound(f"no dispute case {case_id}")
    return row


def list_cases(
    session: Session, *, limit: int, before: str | None = None, inn: str | None = None
) -> list[DisputeCase]:
    """Cases newest first; ``before``: the id of the last case of the previous page."""
    stmt = select(DisputeCase).order_by(DisputeCase.created_at.desc(), DisputeCase.id.desc())
    if before is not None:
        try:
            cursor = get_case(session, before)
        except DisputeNotFound:
            raise InvalidDispute({"before": "the id of a case of the previous page"}) from None
        stmt = stmt.where(
            or_(
                DisputeCase.created_at < cursor.created_at,
                and_(DisputeCase.created_at == cursor.created_at, DisputeCase.id < cursor.id),
            )
        )
    if inn is not None:
        stmt = stmt.where(DisputeCase.subscriber_inn == inn)
    return list(session.scalars(stmt.limit(limit)))


def stored_report(case: DisputeCase) -> DocumentReport:
    """The case's report as values, read from its stored bytes (never the engine run again)."""
    return report_from_json(case.report)


def _file(name: str | None, sha256: str | None, size: int | None) -> dict[str, Any] | None:
    if name is None:
        return None
    return {"name": name, "sha256": sha256, "size": size}


def case_json(case: DisputeCase, *, with_report: bool = True) -> dict[str, Any]:
    """A case as the API shows it (``with_report``: the stored report, parsed, inside)."""
    view: dict[str, Any] = {
        "id": case.id,
        "subscriber_inn": case.subscriber_inn,
        "created_at": iso_utc(case.created_at),
        "opened_by": case.opened_by,
        "opened_as": case.opened_as,
        "form": case.form,
        "document": _file(case.document_name, case.document_sha256, case.document_size),
        "signature": _file(case.signature_name, case.signature_sha256, case.signature_size),
        "indication": case.indication,
        "sub_indication": case.sub_indication,
        "engine": case.engine,
        "report_sha256": case.report_sha256,
        "fee": {
            "tariff": case.tariff,
            "amount": case.fee,
            "ledger_key": case.fee_key,
            "transaction": case.fee_txn,
        },
    }
    if with_report:
        view["report"] = json.loads(case.report)
    return view


def case_summary(case: DisputeCase) -> dict[str, str]:
    """What the report's PDF prints about the case itself (``pdf.render_report_pdf``'s keys)."""
    return {
        "case_id": case.id,
        "inn": case.subscriber_inn,
        "opened_at": iso_utc(case.created_at) or "",
        "opened_by": f"{case.opened_by} ({case.opened_as})",
        "Плата / Fee (§8.5)": f"{som(case.fee)} KGS, ledger transaction {case.fee_txn}",
        "SHA-256 отчёта / Report SHA-256": case.report_sha256,
    }

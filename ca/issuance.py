"""Issuing subscriber certificates: two-phase, Boulder-style, paid through ``billing``.

``issue_certificate`` runs in several short transactions, because the HSM call in the middle
must never happen inside one (a crash there would leave no trace) nor hold row locks while the
token works:

0. *Payment first*: a subscriber's first certificate is paid through a 16-digit payment
   account (``billing.issue_payment_account``, purpose ``cert:first:<inn>``), issued and
   committed on its own so that the 402 answer names a real account; while it is unpaid the
   request is refused with ``PaymentRequired``. Later certificates are paid from the balance.
1. *Reserve*: a cloud key is taken from the key pool (``ca.key_pool``: made ahead by the
   worker, taken in its own short transaction, never twice) or, when the pool has none of that
   spec, generated in ``tamga-cloud`` (sensitive, never extractable either way); a RuToken CSR
   is checked (proof of possession, key policy, not certified for anybody else).
   In one transaction: the serial is reserved, the body is built from the registry (never
   from the CSR) and linted with pkilint after signing a copy with a throwaway key, the
   ``pending`` row keeps the SHA-256 of the linted to-be-signed bytes and the §18.2.2
   requisites, the price is held (``cert:<id>:issue``) or the first-certificate hold
   (``pa:<number>``) is bound to it, and the audit journal says ``ca.certificate.signing``.
2. *Sign*: once, with the issuing CA key in the HSM; the result must be the linted body.
3. *Commit*: the row becomes ``active``, the hold is posted (the money is taken only for a
   certificate that exists), the status history and the journal say ``issued``.

Any failure after step 1 marks the row ``failed``, releases a balance hold (the first
certificate's payment stays for the next attempt), destroys the cloud key (generated or taken
from the pool: a taken key never returns to it) and journals ``ca.certificate.failed``. A lint
refusal happens inside step 1, so nothing is signed at all.

Requests are idempotent by ``request_key`` (the API builds it from the client and its
``Idempotency-Key``): a replay of an issued request returns the same certificate.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ParamSpec, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import billing
from ca.errors import CAError, Conflict, InvalidField, KeyRefused, NotFound, PaymentRequired
from ca.hierarchy import active_certificate
from ca.key_pool import claim_key, destroy_taken_key, new_cloud_label
from ca.models import Certificate, CertificateEvent, Holder, Subscriber
from ca.pricing import certificate_price, first_certificate_purpose
from ca.profiles import (
    CertificateRequest,
    Finding,
    build_certificate,
    check_subscriber_key,
    key_spec_name,
    lint_certificate,
    matches_linted,
    prelint,
    signature_hash,
)
from ca.registry import require_verified, requisites, subject_identity
from ca.requests import IssueRequest
from ca.serials import reserve_serial
from db import audit
from hsm import HSMError, HSMToken, PublicKey
from policies.ca_profiles import ISSUING_CA
from policies.cert_profiles import CertRole, KeyRejected, Storage
from policies.key_pool import KEY_POOL, KeyPoolPolicy
from policies.keys import KeySpec
from policies.money import som
from policies.statuses import (
    CertificateChange,
    CertificateState,
    CertificateStatus,
    CustomerAccountStatus,
    HolderStatus,
    HoldStatus,
    PaymentAccountStatus,
    SubscriberStatus,
)
from policies.tariffs import Revenue

__all__ = [
    "CERTIFICATE_STATES",
    "Issued",
    "certificate_state",
    "days_left",
    "get_certificate",
    "issue_certificate",
    "list_certificates",
    "load_csr",
    "spki_sha256",
]

Transaction = Callable[[], AbstractContextManager[Session]]
P = ParamSpec("P")
Linter = Callable[[x509.Certificate], list[Finding]]

# What a relying party is told about a certificate (certificate_state).
CERTIFICATE_STATES = tuple(CertificateState)


# RFC 4514 leaves these as dotted OIDs; people read the names openssl prints.
_NAMES = {
    NameOID.TITLE: "title",
    NameOID.SURNAME: "SN",
    NameOID.GIVEN_NAME: "GN",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}


@dataclass(frozen=True)
class Issued:
    """An issued certificate; ``replayed`` when a request with the same key had issued it."""

    certificate: Certificate
    replayed: bool


# ---- reading ------------------------------------------------------------------------------------


def spki_sha256(public_key: PublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def get_certificate(session: Session, serial: str) -> Certificate:
    """The certificate with lowercase-hex ``serial`` (leading zeros and case forgiven)."""
    text = serial.strip().lower() if isinstance(serial, str) else ""
    if not text or len(text) > 40 or any(c not in "0123456789abcdef" for c in text):
        raise NotFound(f"no certificate with serial {serial!r}")
    row = session.scalars(
        select(Certificate).where(Certificate.serial == format(int(text, 16), "x"))
    ).one_or_none()
    if row is None:
        raise NotFound(f"no certificate with serial {text}")
    return row


def certificate_state(row: Certificate, now: datetime) -> str:
    """One of ``CERTIFICATE_STATES``: the status, with time taken into account."""
    if row.status in (
        CertificateStatus.PENDING,
        CertificateStatus.FAILED,
        CertificateStatus.REVOKED,
        CertificateStatus.SUSPENDED,
    ):
        return row.status
    if now < row.not_before:
        return CertificateState.NOT_YET_VALID
    return CertificateState.EXPIRED if now >= row.not_after else CertificateState.VALID


def days_left(row: Certificate, now: datetime) -> int:
    """Whole days until ``not_after`` (0 on the last day, negative once expired)."""
    return (row.not_after - now).days if row.not_after > now else -((now - row.not_after).days + 1)


def list_certificates(
    session: Session,
    *,
    now: datetime,
    inns: set[str] | None = None,
    holder_id: int | None = None,
    expiring_within_days: int | None = None,
    include_failed: bool = False,
) -> list[Certificate]:
    """Certificates newest first, optionally of some subscribers, a holder, or expiring soon.

    ``expiring_within_days=N`` lists the active certificates that expire within N days from
    ``now`` and are not expired yet (the renewal notice uses N = 30), soonest first.
    """
    query = select(Certificate)
    if inns is not None:
        query = query.where(Certificate.subscriber_inn.in_(sorted(inns)))
    if holder_id is not None:
        query = query.where(Certificate.holder_id == holder_id)
    if not include_failed:
        query = query.where(Certificate.status != CertificateStatus.FAILED)
    if expiring_within_days is not None:
        if expiring_within_days < 0:
            raise InvalidField("expiring_within_days", "must not be negative")
        horizon = now + timedelta(days=expiring_within_days)
        query = query.where(
            Certificate.status == CertificateStatus.ACTIVE,
            Certificate.not_after > now,
            Certificate.not_after <= horizon,
        ).order_by(Certificate.not_after, Certificate.id)
    else:
        query = query.order_by(Certificate.id.desc())
    return list(session.scalars(query))


# ---- the request ----------------------------------------------------------------------------


def load_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """A CSR from PEM or DER; KeyRefused if it is neither or its signature is not valid."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(raw.strip())
        else:
            csr = x509.load_der_x509_csr(raw)
    except ValueError as ex:
        raise KeyRefused(f"not a PKCS#10 certificate request (PEM or DER): {ex}") from None
    try:
        algorithm = csr.signature_hash_algorithm
    except Exception:
        algorithm = None
    if algorithm is None or algorithm.name not in _CSR_HASHES:
        named = csr.signature_algorithm_oid._name
        raise KeyRefused(
            f"the CSR is signed with {named}: not accepted (sign it with SHA-256, SHA-384 or"
            " SHA-512)"
        )
    try:
        valid = csr.is_signature_valid
    except Exception as ex:  # an unsupported key type or algorithm
        raise KeyRefused(f"the CSR's signature cannot be checked: {ex}") from None
    if not valid:
        raise KeyRefused("the CSR's signature does not verify: no proof of possession")
    return csr


_CSR_HASHES = frozenset({"sha256", "sha384", "sha512"})


def _check_not_certified_elsewhere(session: Session, digest: str, holder_id: int) -> None:
    """A public key belongs to one person; a key once revoked as compromised is dead."""
    query = select(Certificate).where(
        Certificate.spki_sha256 == digest, Certificate.status != CertificateStatus.FAILED
    )
    for row in session.scalars(query):
        if row.holder_id != holder_id:
            raise KeyRefused("this public key is already certified for another holder")
        if row.revocation_reason == "key_compromise":
            raise KeyRefused("this public key was revoked as compromised")


@dataclass(frozen=True)
class _Plan:
    holder_id: int
    inn: str
    role: CertRole
    storage: Storage
    tariff: str
    price: int
    first_payment: str | None  # "pa:<number>" when the first-certificate payment pays it


def _first_payment(
    session: Session, inn: str, tariff: str, price: int, *, now: datetime, actor: str
) -> tuple[str | None, PaymentRequired | None]:
    """(the paid first-certificate hold key or None when the balance pays, the refusal).

    A subscriber pays its first certificate through a payment account; "first" means none
    of its certificates was ever issued with that payment. The refusal is returned, not
    raised, so that a payment account issued here is committed before the caller refuses.
    """
    purpose = first_certificate_purpose(inn)
    account = billing.payment_account_for(session, purpose)
    if account is None:
        ever = session.scalar(
            select(func.count())
            .select_from(Certificate)
            .where(Certificate.subscriber_inn == inn, Certificate.issued_at.is_not(None))
        )
        if ever:
            return None, None
        info = billing.issue_payment_account(
            session, inn=inn, purpose=purpose, tariff=tariff, amount_due=price, now=now,
            actor=actor,
        )  # fmt: skip
        return None, PaymentRequired(
            f"the first certificate of {inn} is paid through payment account {info.number}:"
            f' pay {som(price)} som (service "EDS payment") and ask again',
            amount_due=price,
            payment_account=info.number,
        )
    if account.status == PaymentAccountStatus.OPEN and account.tariff != tariff:
        raise Conflict(
            f"the first certificate of {inn} is to be {account.tariff} (payment account"
            f" {account.number}, unpaid); {tariff} was asked"
        )
    if account.status == PaymentAccountStatus.OPEN:
        return None, PaymentRequired(
            f"payment account {account.number} ({som(account.amount_due)} som) is not paid yet",
            amount_due=account.amount_due,
            payment_account=account.number,
        )
    key = f"pa:{account.number}"
    if billing.hold_status(session, key) != HoldStatus.OPEN:
        return None, None  # used for an earlier certificate: the balance pays from now on
    busy = session.scalar(
        select(func.count())
        .select_from(Certificate)
        .where(Certificate.payment_key == key, Certificate.status != CertificateStatus.FAILED)
    )
    if busy:
        return None, None
    if account.tariff != tariff:
        raise Conflict(
            f"the first certificate of {inn} was paid as {account.tariff} through payment"
            f" account {account.number}; issue that kind first ({tariff} was asked)"
        )
    return key, None


def _plan(
    transaction: Transaction,
    request: IssueRequest,
    *,
    now: datetime,
    actor: str,
    prepaid: bool,
) -> _Plan:
    holder_id, cert_role, cert_storage = request.holder_id, request.role, request.storage
    with transaction() as session:
        holder = session.get(Holder, holder_id)
        if holder is None:
            raise NotFound(f"no holder {holder_id}")
        if holder.status != HolderStatus.ACTIVE:
            raise Conflict(f"holder {holder_id} is {holder.status}")
        require_verified(holder)  # §3.3: the registration authority vouched for the person
        subscriber = session.get_one(Subscriber, holder.subscriber_inn)
        if subscriber.status != SubscriberStatus.ACTIVE:
            raise Conflict(f"subscriber {subscriber.inn} is {subscriber.status}")
        state = billing.balance(session, subscriber.inn)
        if state.status != CustomerAccountStatus.ACTIVE:
            raise Conflict(f"the contract of {subscriber.inn} is {state.status}")
        tariff, price = certificate_price(cert_role, cert_storage, now)
        first, refusal = (
            (None, None)
            if prepaid
            else _first_payment(session, subscriber.inn, tariff, price, now=now, actor=actor)
        )
    if refusal is not None:
        raise refusal
    return _Plan(holder_id, subscriber.inn, cert_role, cert_storage, tariff, price, first)


def _replay(session: Session, request_key: str | None) -> Certificate | None:
    if request_key is None:
        return None
    row = session.scalars(
        select(Certificate).where(Certificate.request_key == request_key)
    ).one_or_none()
    if row is not None and row.status == CertificateStatus.PENDING:
        raise Conflict("a request with this Idempotency-Key is being processed; ask again")
    return row


@contextlib.contextmanager
def _refusal_audited(
    transaction: Transaction, *, actor: str, now: datetime, what: str
) -> Iterator[None]:
    """Journal a refusal in its own transaction (the refused one rolled back)."""
    try:
        yield
    except CAError as ex:
        with transaction() as session:
            audit.append(
                session,
                actor=actor,
                action="ca.certificate.refused",
                object=what,
                outcome="refused",
                details={"reason": type(ex).__name__, "message": str(ex)[:500]},
                now=now,
            )
        raise


def _replay_wins(issue: Callable[P, Issued]) -> Callable[P, Issued]:
    """Idempotency by ``request_key``: a known request returns its certificate, before and after.

    Before: a replay writes nothing. After a refusal: a concurrent request with the same key may
    have issued (or be issuing) meanwhile, and it decides, not the refusal this one met on the
    way (e.g. the first-certificate payment already used by it).
    """

    @functools.wraps(issue)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Issued:
        transaction = cast(Transaction, args[0] if args else kwargs["transaction"])
        request_key = cast(str | None, kwargs.get("request_key"))
        with transaction() as session:
            replay = _replay(session, request_key)
        if replay is not None:
            return Issued(replay, replayed=True)
        try:
            return issue(*args, **kwargs)
        except CAError:
            if request_key is None:
                raise
            with transaction() as session:
                replay = _replay(session, request_key)
            if replay is None:
                raise
            return Issued(replay, replayed=True)

    return wrapper


@_replay_wins
def issue_certificate(
    transaction: Transaction,
    *,
    ca_token: HSMToken,
    cloud_token: HSMToken,
    request: IssueRequest,
    public_url: str,
    now: datetime,
    actor: str,
    request_key: str | None = None,
    not_before: datetime | None = None,
    renewal_of: int | None = None,
    prepaid_key: str | None = None,
    lint: Linter = lint_certificate,
    key_pool: KeyPoolPolicy = KEY_POOL,
) -> Issued:
    """Issue the certificate ``request`` asks for (see the module docstring for the phases).

    ``prepaid_key``: the ledger hold that already pays it (a renewal charged on acceptance
    passes its own; None: the first-certificate payment or a hold on the balance).
    ``not_before`` defaults to ``now`` (a renewal starts when the old certificate ends).
    ``key_pool``: whose maximum age a pooled cloud key must be under to be taken.
    """
    what = f"holder:{request.holder_id}"
    with _refusal_audited(transaction, actor=actor, now=now, what=what):
        wanted = _key_request(request)
        plan = _plan(transaction, request, now=now, actor=actor, prepaid=prepaid_key is not None)
        if prepaid_key is None and plan.first_payment is None:
            with transaction() as session:  # refuse early, before a key is generated
                available = billing.balance(session, plan.inn).available
            if available < plan.price:
                raise PaymentRequired(
                    f"a {plan.tariff} certificate costs {som(plan.price)} som; the balance"
                    f" of {plan.inn} has {som(available)} som available",
                    amount_due=plan.price - available,
                    payment_account=None,
                )
        key = _subject_key(wanted, cloud_token, transaction, now=now, pool=key_pool)
    label = key.label
    try:
        with _refusal_audited(transaction, actor=actor, now=now, what=what):
            row_id, builder, linted, algorithm = _reserve(
                transaction, plan, key=key, public_url=public_url, now=now, actor=actor,
                request_key=request_key, not_before=not_before or now, renewal_of=renewal_of,
                prepaid_key=prepaid_key, lint=lint,
            )  # fmt: skip
    except BaseException:
        _discard_key(transaction, cloud_token, key, now=now, actor=actor)
        raise
    try:
        issuer_key = ca_token.private_key(ISSUING_CA.key_label)
        final = builder.sign(issuer_key, algorithm)
        matches_linted(final, linted)
        with transaction() as session:
            row = session.get_one(Certificate, row_id, with_for_update=True)
            row.der = final.public_bytes(serialization.Encoding.DER)
            row.status, row.issued_at = CertificateStatus.ACTIVE, now
            billing.post_hold(session, key=row.payment_key, now=now, actor=actor)
            session.add(
                CertificateEvent(
                    certificate_id=row.id, action=CertificateChange.ISSUED, at=now, actor=actor
                )
            )
            audit.append(
                session,
                actor=actor,
                action="ca.certificate.issued",
                object=f"certificate:{row.serial}",
                details={
                    "serial": row.serial,
                    "holder": row.holder_id,
                    "inn": row.subscriber_inn,
                    "role": row.role,
                    "storage": row.storage,
                    "price": row.price,
                    "not_after": row.not_after.isoformat(),
                },
                now=now,
            )
            session.flush()
            session.expunge(row)
        return Issued(row, replayed=False)
    except BaseException as ex:
        _fail(transaction, row_id, cloud_token, label, now=now, actor=actor, error=ex)
        raise


def _key_request(request: IssueRequest) -> PublicKey | KeySpec:
    """What the request says of the key: a checked RuToken key, or the cloud key to make."""
    if request.storage is Storage.RUTOKEN:
        assert request.csr is not None  # noqa: S101 - IssueRequest.parse required it
        public_key = load_csr(request.csr).public_key()
        try:
            check_subscriber_key(public_key, Storage.RUTOKEN)
        except KeyRejected as ex:
            raise KeyRefused(f"key refused: {ex}") from None
        return cast(PublicKey, public_key)  # check_subscriber_key let only RSA and EC through
    assert request.key_spec is not None  # noqa: S101 - IssueRequest.parse chose it
    return request.key_spec


@dataclass(frozen=True)
class _SubjectKey:
    """The new certificate's key: a RuToken key (no label) or a cloud key and where it came from."""

    public_key: PublicKey
    label: str | None  # CKA_LABEL in tamga-cloud
    spec: str  # KeySpec.name
    pooled: bool = False  # taken from the key pool (else generated now, or a RuToken key)

    @property
    def source(self) -> str:
        if self.label is None:
            return "csr"
        return "pool" if self.pooled else "generated"


def _subject_key(
    wanted: PublicKey | KeySpec,
    cloud_token: HSMToken,
    transaction: Transaction,
    *,
    now: datetime,
    pool: KeyPoolPolicy,
) -> _SubjectKey:
    """The new certificate's key: the CSR's, a ready key from the pool, or one generated now."""
    if not isinstance(wanted, KeySpec):
        return _SubjectKey(wanted, None, key_spec_name(wanted))
    with transaction() as session:  # committed at once: the key is ours, the row lock released
        taken = claim_key(session, wanted, now=now, policy=pool)
    if taken is not None:
        return _SubjectKey(taken.public_key, taken.label, wanted.name, pooled=True)
    label = new_cloud_label()  # an empty pool never fails an issuance
    try:
        info = cloud_token.generate_key(label, wanted)
    except HSMError as ex:
        raise CAError(f"the cloud HSM could not generate a key: {ex}") from ex
    return _SubjectKey(info.public_key, label, wanted.name)


def _reserve(
    transaction: Transaction,
    plan: _Plan,
    *,
    key: _SubjectKey,
    public_url: str,
    now: datetime,
    actor: str,
    request_key: str | None,
    not_before: datetime,
    renewal_of: int | None,
    prepaid_key: str | None,
    lint: Linter,
) -> tuple[int, x509.CertificateBuilder, x509.Certificate, hashes.SHA256 | hashes.SHA384]:
    public_key, key_spec = key.public_key, key.spec
    digest = spki_sha256(public_key)
    try:
        with transaction() as session:
            # The subscriber's row lock serialises its issuances (one first-payment use).
            subscriber = session.get_one(Subscriber, plan.inn, with_for_update=True)
            holder = session.get_one(Holder, plan.holder_id)
            _check_not_certified_elsewhere(session, digest, plan.holder_id)
            payment_key = prepaid_key or plan.first_payment
            if prepaid_key is None and plan.first_payment is not None:
                # Again under the lock: a concurrent request may have taken it meanwhile.
                payment_key, refusal = _first_payment(
                    session, plan.inn, plan.tariff, plan.price, now=now, actor=actor
                )
                if refusal is not None:
                    raise refusal
            issuer = active_certificate(session, ISSUING_CA.name)
            serial = reserve_serial(session, issuer=ISSUING_CA.name, purpose="subscriber", now=now)
            request = CertificateRequest(
                identity=subject_identity(subscriber, holder),
                role=plan.role,
                storage=plan.storage,
                public_key=public_key,
                not_before=not_before,
                serial=serial,
            )
            try:
                builder = build_certificate(request, issuer, public_url)
            except CAError as ex:
                raise Conflict(str(ex)) from None
            linted = prelint(request, issuer, public_url, lint=lint)
            row = Certificate(
                serial=format(serial, "x"),
                subscriber_inn=plan.inn,
                holder_id=plan.holder_id,
                role=plan.role.value,
                storage=plan.storage.value,
                key_spec=key_spec,
                key_label=key.label,
                spki_sha256=digest,
                subject=linted.subject.rfc4514_string(_NAMES),
                requisites=requisites(subscriber, holder),
                not_before=request.not_before,
                not_after=request.not_after,
                status=CertificateStatus.PENDING,
                tbs_sha256=hashlib.sha256(linted.tbs_certificate_bytes).hexdigest(),
                tariff=plan.tariff,
                price=plan.price,
                payment_key=payment_key or "",
                request_key=request_key,
                renewal_of=renewal_of,
                auto_renew=plan.storage is Storage.CLOUD,
                created_at=now,
                created_by=actor,
            )
            session.add(row)
            session.flush()
            if payment_key is None:
                row.payment_key = f"cert:{row.id}:issue"
                try:
                    billing.hold(
                        session,
                        inn=plan.inn,
                        amount=plan.price,
                        key=row.payment_key,
                        revenue_kind=Revenue.CERTIFICATES,
                        description=f"Сертификат ЭЦП {row.serial} ({plan.tariff})",
                        now=now,
                        actor=actor,
                    )
                except billing.InsufficientFunds as ex:
                    raise PaymentRequired(
                        f"a {plan.tariff} certificate costs {som(plan.price)} som; the"
                        f" balance of {plan.inn} has {som(ex.available)} som available",
                        amount_due=plan.price - ex.available,
                        payment_account=None,
                    ) from None
            audit.append(
                session,
                actor=actor,
                action="ca.certificate.signing",
                object=f"certificate:{row.serial}",
                details={
                    "serial": row.serial,
                    "holder": plan.holder_id,
                    "inn": plan.inn,
                    "role": plan.role.value,
                    "storage": plan.storage.value,
                    "key_spec": key_spec,
                    "key_label": key.label,
                    "key_source": key.source,
                    "tbs_sha256": row.tbs_sha256,
                    "payment": row.payment_key,
                },
                now=now,
            )
            row_id = row.id
    except IntegrityError:
        raise Conflict("a request with this Idempotency-Key or renewal is already known") from None
    return row_id, builder, linted, signature_hash(issuer)


def _discard_key(
    transaction: Transaction, cloud_token: HSMToken, key: _SubjectKey, *, now: datetime, actor: str
) -> None:
    """Destroy the cloud key of an issuance refused before its reservation was committed."""
    if key.label is None:
        return
    if key.pooled:  # the pool journalled this key's making: journal its end too
        try:
            with transaction() as session:
                destroy_taken_key(session, cloud_token, key.label, reason="issuance refused",
                                  now=now, actor=actor)  # fmt: skip
            return
        except Exception:  # noqa: S110 - the refusal being raised matters more than this entry
            pass
    _destroy_quietly(cloud_token, key.label)


def _destroy_quietly(token: HSMToken, label: str) -> bool:
    try:
        token.destroy_key(label)
    except HSMError:
        return False
    return True


def _fail(
    transaction: Transaction,
    row_id: int,
    cloud_token: HSMToken,
    label: str | None,
    *,
    now: datetime,
    actor: str,
    error: BaseException,
) -> None:
    """Undo a reserved issuance after the sign step failed: nothing valid was handed out."""
    destroyed = label is not None and _destroy_quietly(cloud_token, label)
    with transaction() as session:
        row = session.get_one(Certificate, row_id, with_for_update=True)
        if row.status != CertificateStatus.PENDING:
            return
        # A failed row frees its request key and renewal link for the next attempt.
        row.status = CertificateStatus.FAILED
        row.request_key, row.der, row.renewal_of = None, None, None
        if destroyed:
            row.key_destroyed_at = now
        if not row.payment_key.startswith("pa:"):  # the first payment waits for a retry
            with contextlib.suppress(billing.HoldNotOpen, billing.NotFound):
                billing.void_hold(session, key=row.payment_key, now=now, actor=actor)
        audit.append(
            session,
            actor=actor,
            action="ca.certificate.failed",
            object=f"certificate:{row.serial}",
            outcome="failure",
            details={
                "serial": row.serial,
                "error": f"{type(error).__name__}: {error}"[:500],
                "key_label": label,
                "key_destroyed": destroyed,
            },
            now=now,
        )

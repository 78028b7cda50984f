"""OCSP (RFC 6960, lightweight profile RFC 5019): pre-signed answers from ``crl.status_at``.

``respond`` turns any byte string into a DER OCSPResponse:

- not a DER OCSPRequest with exactly one CertID (RFC 5019 §2.1.1: one per request; pyca
  refuses more), or a nonce longer than 32 octets (RFC 8954 §2.1): ``malformedRequest``;
- a CertID whose issuerNameHash/issuerKeyHash is neither the active issuing CA's nor the root's
  (or the root's when the root is an external national root whose key we do not hold), or a
  hash algorithm we do not compute: ``unauthorized``;
- the issuing CA's certificates: *good*, *revoked* (revocationTime, revocationReason; omitted
  for ``unspecified``), *on hold* as revoked with certificateHold (RFC 6960 §2.2), *unknown* for
  a serial it never issued. The operator's own certificates (TSA, dispatch, OCSP responder) are
  in ``ca_certificates``, never revoked: *good*. Signed by the delegated responder
  (``tamga-ocsp``, :mod:`ca.ocsp_responder`), its certificate in ``certs``;
- the root's certificates (the issuing CA's): *good* or *unknown*, signed by the root key.

Answers without a nonce are pre-signed and stored in ``ocsp_responses`` (one row per issuer,
serial and CertID hash algorithm). Answering is a lookup: the row is served while it is *fresh*
— ``thisUpdate <= now < nextUpdate`` and saying
what ``status_at`` says now (status, since, reason). Otherwise it is re-signed, stored and served;
so a status change is never hidden by a stored answer, whether or not the revoking transaction
called :func:`sign_statuses`. Answers with a nonce, and *unknown* answers, are signed per
request and not stored (a cache of unknown serials would grow with whatever a client sends).

Every answer stored is journalled: one ``ocsp.signed`` entry per batch (a miss, a status
change, a worker batch), never per cached answer. Answers signed per request and not stored
(a nonce, an unknown serial) change nothing and anyone may ask for them: they are not journalled.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ca import CACertificate, HierarchyNotReady
from crl.errors import CRLError
from crl.models import OCSPResponseRow
from crl.status import Status, status_at
from db import audit
from hsm import HSMToken
from policies.ca_profiles import DISPATCH, ISSUING_CA, ROOT_CA
from policies.ocsp import OCSP, OCSPProfile
from policies.tsa import TSA

__all__ = [
    "OCSPAnswer",
    "OCSPUnavailable",
    "Outcome",
    "malformed_response",
    "refresh_responses",
    "respond",
    "sign_statuses",
    "unsuccessful_response",
]

log = logging.getLogger("tamga.ocsp")

# CertID hash algorithms we match (RFC 5019 §2.1.1 requires SHA-1; SHA-256 and up are common).
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# What sign_statuses pre-signs for a serial with no stored answer yet: openssl's and RFC 5019's
# SHA-1, and SHA-256.
_PRESIGNED = ("sha1", "sha256")
# Operator certificates issued by the issuing CA (ca.operator_keys): answered good.
_OPERATOR_NAMES = (TSA.name, DISPATCH.name, OCSP.name)


class OCSPUnavailable(CRLError):
    """The responder cannot sign now: no responder certificate, or not valid at this moment."""


class Outcome(StrEnum):
    """What the HTTP layer needs to know of an answer."""

    SUCCESSFUL = "successful"  # stored or pre-signable: cacheable until nextUpdate
    FRESH = "fresh"  # signed for this request only (nonce, unknown): not cacheable
    MALFORMED = "malformed_request"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class OCSPAnswer:
    der: bytes
    outcome: Outcome
    this_update: datetime | None = None
    next_update: datetime | None = None
    produced_at: datetime | None = None

    @property
    def cacheable(self) -> bool:
        return self.outcome is Outcome.SUCCESSFUL


@dataclass(frozen=True)
class _Issuer:
    name: str  # "root" | "issuing"
    cert: x509.Certificate


@dataclass(frozen=True)
class _Said:
    """What a response says of a certificate: compared with status_at now for freshness."""

    status: Status
    since: datetime | None
    reason: str | None


def unsuccessful_response(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def malformed_response() -> bytes:
    return unsuccessful_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)


# --- issuers ---------------------------------------------------------------------------------


def _key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value (RFC 6960 §4.1.1 issuerKeyHash)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    contents: bytes = asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents
    return contents[1:]  # the leading octet counts unused bits (0)


_ISSUER_HASHES: dict[tuple[bytes, str], tuple[bytes, bytes]] = {}


def _issuer_hashes(cert: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of CertIDs naming ``cert`` as issuer (memoised)."""
    key = (cert.fingerprint(hashes.SHA256()), algorithm)
    found = _ISSUER_HASHES.get(key)
    if found is None:
        found = (
            hashlib.new(algorithm, cert.subject.public_bytes()).digest(),
            hashlib.new(algorithm, _key_bits(cert)).digest(),
        )
        if len(_ISSUER_HASHES) > 64:
            _ISSUER_HASHES.clear()
        _ISSUER_HASHES[key] = found
    return found


def _issuers(session: Session) -> list[_Issuer]:
    """The CAs this responder answers for: the active issuing CA, and the root if its key is
    ours (an external national root answers for the issuing CA itself)."""
    found: list[_Issuer] = []
    rows = session.scalars(
        select(CACertificate).where(
            CACertificate.name.in_((ROOT_CA.name, ISSUING_CA.name)),
            CACertificate.active.is_(True),
        )
    )
    for row in rows:
        if row.key_label is None:  # not our key (the configured national root)
            continue
        found.append(_Issuer(row.name, x509.load_der_x509_certificate(row.der)))
    return found


def _match(session: Session, request: ocsp.OCSPRequest, algorithm: str) -> _Issuer | None:
    asked = (request.issuer_name_hash, request.issuer_key_hash)
    for issuer in _issuers(session):
        if _issuer_hashes(issuer.cert, algorithm) == asked:
            return issuer
    return None


def _issuer_by_name(session: Session, name: str) -> _Issuer:
    row = session.scalars(
        select(CACertificate)
        .where(CACertificate.name == name, CACertificate.active.is_(True))
        .order_by(CACertificate.id.desc())
    ).first()
    if row is None or row.key_label is None:
        raise HierarchyNotReady(f"the {name} CA's key is not ours to answer for")
    return _Issuer(name, x509.load_der_x509_certificate(row.der))


# --- statuses --------------------------------------------------------------------------------


def _said(session: Session, issuer: _Issuer, serial: int, now: datetime) -> _Said:
    """What is true of ``serial`` under ``issuer`` at ``now`` (crl.status_at for the issuing
    CA's subscribers; installed CA/operator certificates are good: nothing revokes them)."""
    if issuer.name == ISSUING_CA.name:
        status = status_at(session, serial, now)
        if status.status is not Status.UNKNOWN:
            return _Said(status.status, status.since, status.reason)
        names: tuple[str, ...] = _OPERATOR_NAMES
    else:
        names = (ISSUING_CA.name,)
    installed = session.scalars(
        select(CACertificate.der).where(
            CACertificate.serial == f"{serial:x}", CACertificate.name.in_(names)
        )
    ).first()
    if installed is not None:
        cert = x509.load_der_x509_certificate(installed)
        if cert.issuer == issuer.cert.subject:
            return _Said(Status.GOOD, None, None)
    return _Said(Status.UNKNOWN, None, None)


# --- signing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signed:
    der: bytes
    this_update: datetime
    next_update: datetime
    produced_at: datetime
    responder_serial: str


@dataclass(frozen=True)
class _Responder:
    """Who signs for an issuer: the delegated responder (issuing) or the root key itself."""

    cert: x509.Certificate
    key_label: str
    include_cert: bool


def _responder(session: Session, issuer: _Issuer, now: datetime) -> _Responder:
    if issuer.name == ROOT_CA.name:
        # Its certificate too: openssl finds a byKey signer only among the answer's certs.
        return _Responder(issuer.cert, ROOT_CA.key_label, include_cert=True)
    row = session.scalars(
        select(CACertificate)
        .where(CACertificate.name == OCSP.name, CACertificate.active.is_(True))
        .order_by(CACertificate.id.desc())
    ).first()
    if row is None or row.key_label is None:
        raise OCSPUnavailable("the OCSP responder has no certificate yet (run `tamga init`)")
    cert = x509.load_der_x509_certificate(row.der)
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        raise OCSPUnavailable("the OCSP responder certificate is not valid at this moment")
    return _Responder(cert, row.key_label, include_cert=True)


def _signature_hash(cert: x509.Certificate) -> hashes.HashAlgorithm:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size > 256:
        return hashes.SHA384() if key.curve.key_size <= 384 else hashes.SHA512()
    return hashes.SHA256()


def _sign(
    token: HSMToken,
    responder: _Responder,
    issuer: _Issuer,
    serial: int,
    algorithm: str,
    said: _Said,
    now: datetime,
    *,
    nonce: bytes | None = None,
    policy: OCSPProfile = OCSP,
) -> _Signed:
    this_update = now.replace(microsecond=0)
    next_update = min(this_update + policy.response_validity, responder.cert.not_valid_after_utc)
    name_hash, key_hash = _issuer_hashes(issuer.cert, algorithm)
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None
    if said.status is Status.GOOD:
        cert_status = ocsp.OCSPCertStatus.GOOD
    elif said.status is Status.UNKNOWN:
        cert_status = ocsp.OCSPCertStatus.UNKNOWN
    else:
        cert_status = ocsp.OCSPCertStatus.REVOKED
        if said.since is None:
            raise CRLError(f"certificate {serial:x} is {said.status} without a time")
        revoked_at = said.since.astimezone(UTC).replace(microsecond=0)
        if said.status is Status.ON_HOLD:
            reason = x509.ReasonFlags.certificate_hold
        elif said.reason and said.reason != "unspecified":
            reason = x509.ReasonFlags[said.reason]  # RFC 5280 §5.3.1: omit unspecified
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=serial,
            algorithm=_HASHES[algorithm](),
            cert_status=cert_status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=revoked_at,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.cert)
    )
    if responder.include_cert:
        builder = builder.certificates([responder.cert])
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    key = token.private_key(responder.key_label)
    response = builder.sign(key, _signature_hash(responder.cert))
    return _Signed(
        der=response.public_bytes(serialization.Encoding.DER),
        this_update=this_update,
        next_update=next_update,
        produced_at=response.produced_at_utc,
        responder_serial=format(responder.cert.serial_number, "x"),
    )


def _journal(
    session: Session,
    *,
    actor: str,
    now: datetime,
    why: str,
    entries: list[tuple[str, str, str]],
) -> None:
    """One ``ocsp.signed`` entry for a batch: (issuer, serial, status) of each response."""
    serials = sorted({f"{issuer}:{serial}" for issuer, serial, _ in entries})
    details: dict[str, object] = {
        "why": why,
        "responses": len(entries),
        "statuses": {s: sum(1 for *_, t in entries if t == s) for s in {t for *_, t in entries}},
    }
    if len(serials) <= 50:
        details["serials"] = serials
    else:
        details["serials_sha256"] = hashlib.sha256("\n".join(serials).encode()).hexdigest()
    audit.append(
        session, actor=actor, action="ocsp.signed", object="ocsp", details=details, now=now
    )


def _store(
    session: Session, issuer: _Issuer, serial: int, algorithm: str, said: _Said, signed: _Signed
) -> None:
    values = {
        "issuer": issuer.name,
        "serial": f"{serial:x}",
        "hash_algorithm": algorithm,
        "status": said.status.value,
        "revoked_at": said.since,
        "reason": said.reason,
        "this_update": signed.this_update,
        "next_update": signed.next_update,
        "produced_at": signed.produced_at,
        "responder_serial": signed.responder_serial,
        "der": signed.der,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(OCSPResponseRow).values(**values)
    keys = ("issuer", "serial", "hash_algorithm")
    session.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={k: statement.excluded[k] for k in values if k not in keys},
        )
    )


def _fresh(row: OCSPResponseRow, said: _Said, now: datetime) -> bool:
    """Within its validity and saying what status_at says now.

    An answer signed under the previous responder certificate stays fresh: its nextUpdate is
    capped at that certificate's notAfter, and renewal happens ``renew_before`` (longer than
    ``response_validity``, policies.ocsp checks it) before then, so the refresh queue re-signs
    it under the new certificate while the old one is still valid — no burst of signing on the
    request path after a renewal, and no scan of the table for another responder serial.
    """
    return row.this_update <= now < row.next_update and (
        row.status,
        row.revoked_at,
        row.reason,
    ) == (said.status.value, said.since, said.reason)


# --- answering -------------------------------------------------------------------------------


def _nonce(request: ocsp.OCSPRequest, policy: OCSPProfile) -> bytes | None:
    try:
        found = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None
    if not 1 <= len(found) <= policy.max_nonce_octets:
        raise ValueError("nonce length")
    return found


@dataclass(frozen=True)
class _Asked:
    """One checked CertID: the issuer it names, the serial, the hash algorithm, the nonce."""

    issuer: _Issuer
    serial: int
    algorithm: str
    nonce: bytes | None


_UNAUTHORIZED = ocsp.OCSPResponseStatus.UNAUTHORIZED
# pyca raises NotImplementedError for a request with several CertIDs (RFC 5019: one only).
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    NotImplementedError,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


def _asked(session: Session, request_der: bytes, policy: OCSPProfile) -> _Asked | Outcome:
    """The request's one CertID, or the unsuccessful outcome that answers it."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        nonce = _nonce(request, policy)
        serial = request.serial_number
    except _PARSE_ERRORS:
        return Outcome.MALFORMED
    try:
        algorithm = request.hash_algorithm.name
    except UnsupportedAlgorithm:
        return Outcome.UNAUTHORIZED
    if algorithm not in _HASHES or serial <= 0:
        return Outcome.UNAUTHORIZED
    issuer = _match(session, request, algorithm)
    if issuer is None:
        return Outcome.UNAUTHORIZED
    return _Asked(issuer, serial, algorithm, nonce)


def respond(
    session: Session,
    request_der: bytes,
    *,
    token: HSMToken,
    now: datetime,
    actor: str,
    policy: OCSPProfile = OCSP,
) -> OCSPAnswer:
    """The DER OCSPResponse for any byte string (see the module's docstring).

    Raises only when the responder cannot sign (:class:`OCSPUnavailable`, ``HSMError``).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    asked = _asked(session, request_der, policy)
    if asked is Outcome.MALFORMED:
        return OCSPAnswer(malformed_response(), asked)
    if not isinstance(asked, _Asked):
        return OCSPAnswer(unsuccessful_response(_UNAUTHORIZED), Outcome.UNAUTHORIZED)
    issuer, serial, algorithm = asked.issuer, asked.serial, asked.algorithm
    said = _said(session, issuer, serial, now)
    entry = [(issuer.name, f"{serial:x}", said.status.value)]
    if asked.nonce is not None or said.status is Status.UNKNOWN:
        responder = _responder(session, issuer, now)
        signed = _sign(
            token, responder, issuer, serial, algorithm, said, now, nonce=asked.nonce, policy=policy
        )
        # Not journalled: it changes nothing, and anyone may ask for any number of them (a
        # journal entry each would let any client grow the journal and queue on its head).
        return OCSPAnswer(
            signed.der, Outcome.FRESH, signed.this_update, signed.next_update, signed.produced_at
        )
    row = session.get(OCSPResponseRow, (issuer.name, f"{serial:x}", algorithm))
    if row is not None and _fresh(row, said, now):
        return OCSPAnswer(
            row.der, Outcome.SUCCESSFUL, row.this_update, row.next_update, row.produced_at
        )
    responder = _responder(session, issuer, now)
    signed = _sign(token, responder, issuer, serial, algorithm, said, now, policy=policy)
    _store(session, issuer, serial, algorithm, said, signed)
    _journal(session, actor=actor, now=now, why="stale" if row else "miss", entries=entry)
    return OCSPAnswer(
        signed.der, Outcome.SUCCESSFUL, signed.this_update, signed.next_update, signed.produced_at
    )


# --- pre-signing -----------------------------------------------------------------------------


def _serial_int(serial: int | str) -> int:
    return serial if isinstance(serial, int) else int(serial, 16)


def sign_statuses(
    session: Session,
    *,
    serials: Iterable[int | str],
    token: HSMToken,
    now: datetime,
    actor: str,
    policy: OCSPProfile = OCSP,
) -> int:
    """(Re)sign and store the issuing CA's answers for ``serials`` as ``status_at`` says at
    ``now``; the number of responses stored.

    Call it in the transaction that suspends, resumes or revokes, after the change: OCSP then
    answers from a stored row at once, and the CRL and OCSP never disagree. Each serial gets its
    stored hash algorithms re-signed, or SHA-1 and SHA-256 when none is stored yet. Serials the
    CA never issued are skipped. One journal entry for the whole call.

    A status change never fails for OCSP's sake: without an issuing CA or a valid responder
    certificate it signs nothing and returns 0 (the lookup path re-signs on the next request,
    or answers tryLater). ``HSMError`` propagates (nothing is written to the database before the
    HSM signs); a caller that must not depend on the HSM catches it, for the same reason.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    wanted = sorted({_serial_int(s) for s in serials})
    if not wanted:
        return 0
    try:
        issuer = _issuer_by_name(session, ISSUING_CA.name)
        responder = _responder(session, issuer, now)
    except (HierarchyNotReady, OCSPUnavailable) as ex:
        log.warning("OCSP answers not pre-signed: %s", ex)
        return 0
    entries: list[tuple[str, str, str]] = []
    for serial in wanted:
        said = _said(session, issuer, serial, now)
        if said.status is Status.UNKNOWN:
            continue
        stored = session.scalars(
            select(OCSPResponseRow.hash_algorithm).where(
                OCSPResponseRow.issuer == issuer.name,
                OCSPResponseRow.serial == f"{serial:x}",
            )
        ).all()
        for algorithm in sorted(set(stored) or set(_PRESIGNED)):
            signed = _sign(token, responder, issuer, serial, algorithm, said, now, policy=policy)
            _store(session, issuer, serial, algorithm, said, signed)
            entries.append((issuer.name, f"{serial:x}", said.status.value))
    if entries:
        _journal(session, actor=actor, now=now, why="status", entries=entries)
    return len(entries)


def refresh_responses(
    session: Session,
    *,
    token: HSMToken,
    now: datetime,
    actor: str,
    policy: OCSPProfile = OCSP,
    limit: int | None = None,
) -> int:
    """Re-sign one batch of stored answers that are due (nextUpdate within the refresh margin),
    oldest first, under the responder certificate in force; the number re-signed.

    Rows are taken with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers on several nodes
    share the queue; call it in a loop of transactions until it returns 0. One journal entry
    per batch.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    issuers = {i.name: i for i in _issuers(session)}
    if not issuers:
        return 0
    batch = limit or policy.refresh_batch
    rows = session.scalars(
        select(OCSPResponseRow)
        .where(
            OCSPResponseRow.next_update <= now + policy.refresh_margin,  # the index's range
            OCSPResponseRow.issuer.in_(issuers),
        )
        .order_by(OCSPResponseRow.next_update)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    entries: list[tuple[str, str, str]] = []
    responders: dict[str, _Responder] = {}
    for row in rows:
        issuer = issuers[row.issuer]
        if issuer.name not in responders:
            responders[issuer.name] = _responder(session, issuer, now)
        serial = int(row.serial, 16)
        said = _said(session, issuer, serial, now)
        if said.status is Status.UNKNOWN:  # cannot happen for a stored row; drop it if it does
            session.delete(row)
            continue
        signed = _sign(
            token,
            responders[issuer.name],
            issuer,
            serial,
            row.hash_algorithm,
            said,
            now,
            policy=policy,
        )
        row.status, row.revoked_at, row.reason = said.status.value, said.since, said.reason
        row.this_update, row.next_update = signed.this_update, signed.next_update
        row.produced_at, row.responder_serial = signed.produced_at, signed.responder_serial
        row.der = signed.der
        entries.append((issuer.name, row.serial, said.status.value))
    if entries:
        _journal(session, actor=actor, now=now, why="refresh", entries=entries)
    return len(entries)

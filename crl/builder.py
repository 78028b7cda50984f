"""Full CRLs for the root and the issuing CA (RFC 5280 §5), signed in the HSM, numbered.

``issue_crl`` builds and signs one CRL from the revoked entries it is given and records it in
``crl_issues``; it never decides *what* is revoked (that is the CA's registry). The CRL updater
holds no key of its own: it asks the token to sign with the issuer's key, Boulder-style.

CRL numbers are strictly increasing per issuer across every node: the number is the issuer's
highest + 1, and ``UNIQUE(issuer, number)`` makes a second node that picked the same number
fail its insert (on PostgreSQL it waits for the first node's commit), roll back to a savepoint
and try again with the number after. Call ``issue_crl`` in a transaction of its own, before
anything else takes the audit journal's lock, so that nodes queue on the CRL row alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca import active_certificate
from ca.revocation import crl_entries, last_status_change
from crl.errors import CRLError, ForeignIssuer, UnknownIssuer
from crl.models import CRLIssue
from db import audit
from hsm import HSMToken, KeyNotFound
from policies.ca_profiles import ISSUING_CA, ROOT_CA, CAProfile
from policies.crl import CRL_ISSUERS, CRL_POLICY, CRLPolicy

__all__ = [
    "IssuedCRL",
    "RevokedEntry",
    "crl_due",
    "current_crl",
    "issue_crl",
    "refresh_crl",
    "revoked_entries",
    "same_second_issues",
]

_PROFILES: dict[str, CAProfile] = {"root": ROOT_CA, "issuing": ISSUING_CA}
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# RFC 5280 §4.1.2.2: a serial is a positive INTEGER of at most 20 octets (DER, sign bit clear).
_SERIAL_LIMIT = 1 << (20 * 8 - 1)
# Concurrent issuers each lose at most one race per other issuer; 32 covers any sane cluster.
_NUMBER_ATTEMPTS = 32


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked (or suspended: ``certificateHold``) certificate to list on a CRL.

    ``not_after`` is the certificate's expiry: an entry stays on the CRL until then and is
    dropped from the first CRL whose thisUpdate is later (RFC 5280 §3.3 lets a CA remove
    entries once the certificate has expired). None keeps the entry for ever.
    """

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None = None
    invalidity_date: datetime | None = None
    not_after: datetime | None = None

    def __post_init__(self) -> None:
        if not 0 < self.serial < _SERIAL_LIMIT:
            raise ValueError("serial must be a positive integer of at most 20 octets")
        object.__setattr__(self, "revoked_at", _aware(self.revoked_at, "revoked_at"))
        if self.invalidity_date is not None:
            object.__setattr__(
                self, "invalidity_date", _aware(self.invalidity_date, "invalidity_date")
            )
        if self.not_after is not None:
            object.__setattr__(self, "not_after", _aware(self.not_after, "not_after"))
        if self.reason is x509.ReasonFlags.remove_from_crl:
            # removeFromCRL only has a meaning in delta CRLs (RFC 5280 §5.3.1); we issue full
            # CRLs, where lifting a hold is expressed by leaving the entry out.
            raise ValueError("removeFromCRL belongs to delta CRLs; omit the entry instead")


@dataclass(frozen=True)
class IssuedCRL:
    """A signed CRL as recorded in ``crl_issues``."""

    issuer: str
    number: int
    this_update: datetime
    next_update: datetime
    der: bytes
    sha256: str
    entries: int
    status_as_of: datetime | None = None

    def load(self) -> x509.CertificateRevocationList:
        """The CRL parsed by pyca/cryptography."""
        return x509.load_der_x509_crl(self.der)

    @classmethod
    def from_row(cls, row: CRLIssue) -> IssuedCRL:
        return cls(
            issuer=row.issuer,
            number=row.number,
            this_update=row.this_update,
            next_update=row.next_update,
            der=row.der,
            sha256=row.sha256,
            entries=row.entries,
            status_as_of=row.status_as_of,
        )


def _check_issuer(issuer: str) -> CAProfile:
    if issuer not in CRL_ISSUERS:
        raise UnknownIssuer(f"no CRL is published for {issuer!r}: choose one of {CRL_ISSUERS}")
    return _PROFILES[issuer]


def _signing_key(token: HSMToken, profile: CAProfile, cert: x509.Certificate) -> object:
    """The issuer's key on the token, after checking it is the key the certificate certifies."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        public = token.public_key(profile.key_label)
    except KeyNotFound:
        public = None
    if public is None or public.public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise ForeignIssuer(
            f"the {profile.name} CA's key is not on token {token.label!r}: its CRL is "
            "published by whoever holds that key"
        )
    return token.private_key(profile.key_label)


def _revoked_certificate(entry: RevokedEntry) -> x509.RevokedCertificate:
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(entry.serial)
        .revocation_date(entry.revoked_at)
    )
    # RFC 5280 §5.3.1: the reasonCode extension SHOULD be absent rather than carry
    # unspecified (0), so an unspecified reason is written as no extension at all.
    if entry.reason is not None and entry.reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(entry.reason), critical=False)
    if entry.invalidity_date is not None:
        builder = builder.add_extension(x509.InvalidityDate(entry.invalidity_date), critical=False)
    return builder.build()


def _listed(revoked: Iterable[RevokedEntry], this_update: datetime) -> list[RevokedEntry]:
    """The entries still due on a CRL at ``this_update``, by serial; a repeated serial refuses."""
    listed: dict[int, RevokedEntry] = {}
    for entry in revoked:
        if entry.serial in listed:
            raise CRLError(f"serial {entry.serial:x} is listed twice")
        if entry.not_after is not None and entry.not_after < this_update:
            continue  # expired before this CRL: it may leave the list (RFC 5280 §3.3)
        listed[entry.serial] = entry
    return [listed[serial] for serial in sorted(listed)]


def _sign(
    profile: CAProfile,
    cert: x509.Certificate,
    key: object,
    number: int,
    entries: list[x509.RevokedCertificate],
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    # The entries go in through the constructor: add_revoked_certificate() copies the list on
    # every call, which made 100,000 entries take seconds (bench/issue.py).
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=entries)
        .issuer_name(cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    algorithm = _HASHES[profile.key_spec.default_scheme.hash_name]()
    crl = builder.sign(key, algorithm)  # type: ignore[arg-type]  # an HSM-backed key adapter
    return crl.public_bytes(serialization.Encoding.DER)


def _highest_number(session: Session, issuer: str) -> int:
    query = select(func.max(CRLIssue.number)).where(CRLIssue.issuer == issuer)
    return session.scalar(query) or 0


def issue_crl(
    session: Session,
    *,
    issuer: str,
    token: HSMToken,
    revoked: Iterable[RevokedEntry],
    now: datetime,
    actor: str,
    policy: CRLPolicy = CRL_POLICY,
    status_as_of: datetime | None = None,
) -> IssuedCRL:
    """Sign and record a new full CRL for ``issuer`` listing ``revoked`` (minus expired ones).

    ``status_as_of``: the newest status change ``revoked`` reflects (read before it).

    1. check the issuer and that its key is on ``token``;
    2. keep the entries whose certificate has not expired by thisUpdate;
    3. take the next CRL number, sign, insert; a concurrent issuer that took the number first
       makes the insert fail: back to the savepoint, next number, sign again;
    4. journal ``crl.issued``.
    """
    profile = _check_issuer(issuer)
    this_update = _aware(now, "now").replace(microsecond=0)  # CRL times have whole seconds
    next_update = this_update + policy.next_update
    cert = active_certificate(session, issuer)
    key = _signing_key(token, profile, cert)
    listed = _listed(revoked, this_update)
    entries = [_revoked_certificate(entry) for entry in listed]
    for _ in range(_NUMBER_ATTEMPTS):
        number = _highest_number(session, issuer) + 1
        der = _sign(profile, cert, key, number, entries, this_update, next_update)
        row = CRLIssue(
            issuer=issuer,
            number=number,
            this_update=this_update,
            next_update=next_update,
            der=der,
            sha256=hashlib.sha256(der).hexdigest(),
            entries=len(entries),
            created_at=this_update,
            status_as_of=status_as_of,
        )
        savepoint = session.begin_nested()
        try:
            session.add(row)
            session.flush()
        except IntegrityError:
            savepoint.rollback()  # another node committed this number: take the next one
            continue
        savepoint.commit()
        break
    else:  # pragma: no cover - needs more than _NUMBER_ATTEMPTS simultaneous issuers
        raise CRLError(f"could not take a CRL number for {issuer!r}: too many concurrent issuers")
    audit.append(
        session,
        actor=actor,
        action="crl.issued",
        object=f"crl:{issuer}",
        details={
            "issuer": issuer,
            "number": number,
            "entries": len(entries),
            "this_update": this_update.isoformat(),
            "next_update": next_update.isoformat(),
            "sha256": row.sha256,
        },
        now=now,
    )
    return IssuedCRL.from_row(row)


def current_crl(session: Session, issuer: str, now: datetime) -> IssuedCRL | None:
    """The newest CRL of ``issuer`` already in force at ``now`` (None before the first)."""
    _check_issuer(issuer)
    query = (
        select(CRLIssue)
        .where(CRLIssue.issuer == issuer, CRLIssue.this_update <= _aware(now, "now"))
        .order_by(CRLIssue.number.desc())
        .limit(1)
    )
    row = session.scalars(query).first()
    return None if row is None else IssuedCRL.from_row(row)


def crl_due(session: Session, issuer: str, now: datetime, policy: CRLPolicy = CRL_POLICY) -> bool:
    """True when ``issuer`` has no CRL yet, its newest is old, or a status changed since."""
    newest = current_crl(session, issuer, now)
    return newest is None or _stale(newest, now, policy) or _changed_since(session, issuer, newest)


def _stale(issued: IssuedCRL, now: datetime, policy: CRLPolicy) -> bool:
    return _aware(now, "now") - issued.this_update >= policy.reissue_every


def revoked_entries(session: Session, issuer: str, now: datetime) -> tuple[RevokedEntry, ...]:
    """What the CA has revoked or suspended under ``issuer`` and not expired, for its next CRL.

    The issuing CA's entries come from the certificate registry (``ca.revocation``); nothing
    revokes an issuing CA, so the root's list stays empty.
    """
    _check_issuer(issuer)
    if issuer != ISSUING_CA.name:
        return ()
    return tuple(
        RevokedEntry(
            serial=entry.serial,
            revoked_at=entry.revoked_at,
            reason=entry.reason,
            invalidity_date=entry.invalidity_date,
            not_after=entry.not_after,
        )
        for entry in crl_entries(session, now)
    )


def _changed_since(session: Session, issuer: str, issued: IssuedCRL) -> bool:
    """A certificate changed status after what ``issued`` reflects: it must be reissued.

    One comparison at one precision: the change times as ``certificate_events`` records them,
    to the microsecond, against the newest of them the CRL was built from, not against its
    thisUpdate (whole seconds), which made a CRL look stale for the rest of its second and
    reissued it on every fetch.
    """
    if issuer != ISSUING_CA.name:
        return False
    changed = last_status_change(session)
    if changed is None:
        return False
    return issued.status_as_of is None or changed > issued.status_as_of


def same_second_issues(session: Session, issued: IssuedCRL) -> int:
    """How many CRLs of its issuer share ``issued``'s thisUpdate (HTTP dates have seconds)."""
    query = select(func.count()).where(
        CRLIssue.issuer == issued.issuer, CRLIssue.this_update == issued.this_update
    )
    return int(session.scalar(query) or 0)


def refresh_crl(
    session: Session,
    *,
    issuer: str,
    token: HSMToken,
    now: datetime,
    actor: str,
    force: bool = False,
    policy: CRLPolicy = CRL_POLICY,
) -> tuple[IssuedCRL, bool]:
    """(the CRL to publish, whether it was just issued): the current one unless due or forced."""
    current = current_crl(session, issuer, now)
    fresh = current is not None and not _stale(current, now, policy)
    if current is not None and fresh and not force and not _changed_since(session, issuer, current):
        return current, False
    as_of = last_status_change(session) if issuer == ISSUING_CA.name else None  # read first
    issued = issue_crl(
        session,
        issuer=issuer,
        token=token,
        revoked=revoked_entries(session, issuer, now),
        now=now,
        actor=actor,
        policy=policy,
        status_as_of=as_of,
    )
    return issued, True

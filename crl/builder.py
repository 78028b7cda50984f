"""Full (base) and delta CRLs for the root and the issuing CA (RFC 5280 §5), signed in the HSM.

``issue_crl`` builds and signs one full CRL from the revoked entries it is given and records it
in ``crl_issues``; ``refresh_crl`` reads the entries from the CA's registry itself (plain rows,
no ORM object per certificate: a million entries take seconds, docs/crl.md) and
``issue_delta_crl`` lists what changed since the newest full CRL (RFC 5280 §5.2.4). The CRL
updater holds no key of its own: it asks the token to sign the TBSCertList's digest with the
issuer's key, Boulder-style; the DER is written by :mod:`crl.der`, byte for byte what pyca
writes.

Base and delta CRLs share one cRLNumber sequence per issuer, strictly increasing across every
node. **Lock order**: every issuance first takes the named lock ``crl`` (``db.locks``: an
advisory transaction lock on PostgreSQL), then chooses the number (the issuer's highest + 1),
inserts its row and journals. A status change takes it after its certificate row, when its
delta is issued in its transaction (``crl.changes``); a concurrent HTTP fetch that reissues
waits for it before it touches a number: nobody holds a number while waiting for the lock. (It
was the audit journal's head lock until appends stopped locking anything, issue #16.) The lock
also makes the number race rare; ``UNIQUE(issuer, number)`` still catches one (a second node
that picked the same number fails its insert, rolls back to a savepoint and takes the next).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca import active_certificate
from ca.revocation import crl_entries, crl_rows, last_status_change, status_changes_since
from crl import der
from crl.errors import CRLError, ForeignIssuer, UnknownIssuer
from crl.models import CRLIssue
from db import audit
from db.locks import lock_name
from hsm import HSMToken, KeyNotFound
from policies.ca_profiles import ISSUING_CA, ROOT_CA, CAProfile
from policies.crl import CRL_ISSUERS, CRL_POLICY, DELTA_ISSUERS, CRLPolicy, delta_name

__all__ = [
    "BaseInfo",
    "IssuedCRL",
    "RevokedEntry",
    "crl_due",
    "current_crl",
    "delta_due",
    "delta_url",
    "issue_crl",
    "issue_delta_crl",
    "newest_base",
    "newest_base_number",
    "refresh_crl",
    "refresh_delta",
    "revoked_entries",
    "same_second_issues",
]

_PROFILES: dict[str, CAProfile] = {"root": ROOT_CA, "issuing": ISSUING_CA}
# CRLReason codes by the names ``certificates.revocation_reason`` stores (ReasonFlags names).
_CODES: dict[str, int] = {flag.name: der.REASON_CODES[flag.value] for flag in x509.ReasonFlags}
_REMOVE_FROM_CRL = der.REASON_CODES["removeFromCRL"]
_CRL_NUMBER = der.object_identifier("2.5.29.20")
_DELTA_INDICATOR = der.object_identifier("2.5.29.27")
_FRESHEST_CRL = der.object_identifier("2.5.29.46")
_AUTHORITY_KEY_ID = der.object_identifier("2.5.29.35")
FULL, DELTA = "full", "delta"
# RFC 5280 §4.1.2.2: a serial is a positive INTEGER of at most 20 octets (DER, sign bit clear).
_SERIAL_LIMIT = 1 << (20 * 8 - 1)
# Concurrent issuers each lose at most one race per other issuer; 32 covers any sane cluster.
_NUMBER_ATTEMPTS = 32
CRL_LOCK = "crl"  # the named lock of every CRL issuance (db.locks)


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
    kind: str = FULL  # "full" (a base CRL) or "delta"
    base_number: int | None = None  # a delta's BaseCRLNumber

    @property
    def is_delta(self) -> bool:
        return self.kind == DELTA

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
            kind=row.kind,
            base_number=row.base_number,
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


def _entry_der(entry: RevokedEntry) -> bytes:
    # RFC 5280 §5.3.1: the reasonCode extension SHOULD be absent rather than carry
    # unspecified (0), so an unspecified reason is written as no extension at all.
    code = None if entry.reason is None else der.REASON_CODES[entry.reason.value]
    return der.revoked_entry(entry.serial, entry.revoked_at, code, entry.invalidity_date)


@dataclass(frozen=True)
class _Signing:
    """What every CRL of one issuer needs: its certificate, the key's label, the algorithm."""

    issuer: str
    profile: CAProfile
    cert: x509.Certificate
    token: HSMToken

    def authority_key_identifier(self) -> bytes:
        ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        value = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        return der.extension(_AUTHORITY_KEY_ID, value.public_bytes())

    def sign(
        self,
        entries: list[bytes],
        extensions: list[bytes],
        this_update: datetime,
        next_update: datetime,
    ) -> bytes:
        """The CertificateList: TBSCertList encoded here, its digest signed in the HSM."""
        scheme = self.profile.key_spec.default_scheme
        algorithm = der.algorithm_identifier(scheme.value)
        tbs = der.tbs_cert_list(
            algorithm=algorithm,
            issuer=self.cert.subject.public_bytes(),
            this_update=this_update,
            next_update=next_update,
            entries=entries,
            extensions=extensions,
        )
        digest = hashlib.new(scheme.hash_name, tbs).digest()
        signature = self.token.sign_digest(self.profile.key_label, digest, scheme)
        return der.certificate_list(tbs, algorithm, signature)


def _signing(session: Session, issuer: str, token: HSMToken) -> _Signing:
    profile = _check_issuer(issuer)
    cert = active_certificate(session, issuer)
    _signing_key(token, profile, cert)
    return _Signing(issuer, profile, cert, token)


def _highest_number(session: Session, issuer: str) -> int:
    query = select(func.max(CRLIssue.number)).where(CRLIssue.issuer == issuer)
    return session.scalar(query) or 0


def delta_url(public_url: str, issuer: str = ISSUING_CA.name) -> str:
    """Where the delta CRLs of ``issuer`` are published: the freshestCRL URI."""
    return f"{public_url.rstrip('/')}/crl/{delta_name(issuer)}.crl"


def _freshest(public_url: str, issuer: str) -> bytes:
    point = x509.DistributionPoint(
        [x509.UniformResourceIdentifier(delta_url(public_url, issuer))], None, None, None
    )
    return der.extension(_FRESHEST_CRL, x509.FreshestCRL([point]).public_bytes())


def _record(
    session: Session,
    signing: _Signing,
    *,
    entries: list[bytes],
    this_update: datetime,
    next_update: datetime,
    kind: str,
    base_number: int | None,
    freshest: bytes | None,
    status_as_of: datetime | None,
    now: datetime,
    actor: str,
) -> IssuedCRL:
    """Lock the journal head, take the next number, sign, insert, journal (the one lock order)."""
    issuer = signing.issuer
    lock_name(session, CRL_LOCK)  # before the number: see the module docstring (lock order)
    authority = signing.authority_key_identifier()
    for _ in range(_NUMBER_ATTEMPTS):
        number = _highest_number(session, issuer) + 1
        extensions = [der.extension(_CRL_NUMBER, x509.CRLNumber(number).public_bytes()), authority]
        if base_number is not None:
            indicator = x509.DeltaCRLIndicator(base_number).public_bytes()
            extensions.append(der.extension(_DELTA_INDICATOR, indicator, critical=True))
        if freshest is not None:
            extensions.append(freshest)
        crl_der = signing.sign(entries, extensions, this_update, next_update)
        row = CRLIssue(
            issuer=issuer,
            number=number,
            this_update=this_update,
            next_update=next_update,
            der=crl_der,
            sha256=hashlib.sha256(crl_der).hexdigest(),
            entries=len(entries),
            created_at=this_update,
            status_as_of=status_as_of,
            kind=kind,
            base_number=base_number,
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
    details: dict[str, object] = {
        "issuer": issuer,
        "number": number,
        "kind": kind,
        "entries": len(entries),
        "this_update": this_update.isoformat(),
        "next_update": next_update.isoformat(),
        "sha256": row.sha256,
    }
    if base_number is not None:
        details["base_number"] = base_number
    audit.append(
        session, actor=actor, action="crl.issued", object=f"crl:{issuer}", details=details, now=now
    )
    issued = IssuedCRL.from_row(row)
    session.expunge(row)  # a million-entry DER need not stay in the session's identity map
    return issued


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
    public_url: str | None = None,
) -> IssuedCRL:
    """Sign and record a new full CRL for ``issuer`` listing ``revoked`` (minus expired ones).

    ``status_as_of``: the newest status change ``revoked`` reflects (read before it).
    ``public_url``: where the delta CRLs are published; with ``policy.freshest_in_base`` the
    CRL then carries freshestCRL (only for an issuer that publishes deltas).

    1. check the issuer and that its key is on ``token``;
    2. keep the entries whose certificate has not expired by thisUpdate;
    3. lock the journal head, take the next CRL number, sign, insert; a concurrent issuer that
       took the number first makes the insert fail: back to the savepoint, next number, again;
    4. journal ``crl.issued``.
    """
    signing = _signing(session, issuer, token)
    this_update = _aware(now, "now").replace(microsecond=0)  # CRL times have whole seconds
    entries = [_entry_der(entry) for entry in _listed(revoked, this_update)]
    return _record(
        session,
        signing,
        entries=entries,
        this_update=this_update,
        next_update=this_update + policy.next_update,
        kind=FULL,
        base_number=None,
        freshest=_freshest_for(public_url, issuer, policy),
        status_as_of=status_as_of,
        now=now,
        actor=actor,
    )


def _freshest_for(public_url: str | None, issuer: str, policy: CRLPolicy) -> bytes | None:
    """freshestCRL for a full CRL: only with ``policy.freshest_in_base`` (off by default: the
    dispute engine's pyhanko-certvalidator then demands a delta CRL beside every full CRL, and
    takes the first one of the issuer whatever its base; OpenSSL finds the deltas through the
    certificates' own freshestCRL, docs/crl.md)."""
    if public_url is None or issuer not in DELTA_ISSUERS or not policy.freshest_in_base:
        return None
    return _freshest(public_url, issuer)


def _registry_entries(session: Session, issuer: str, now: datetime) -> list[bytes]:
    """The issuer's revoked and suspended certificates, encoded, in serial order: read as
    raw rows (``ca.revocation.crl_rows``) and encoded one by one (a million take seconds)."""
    if issuer != ISSUING_CA.name:
        return []
    extensions: dict[str | None, bytes] = {
        name: der.reason_extension(code) for name, code in _CODES.items()
    }
    extensions[None] = b""  # no reason recorded: unspecified
    time_of, entry, invalidity = der.time_of, der.entry, der.invalidity_extension
    encoded = []
    for serial_hex, revoked_at, reason, invalid in crl_rows(session, now):
        serial = int(serial_hex, 16)
        extra = extensions[reason]
        if invalid is not None:
            extra += invalidity(invalid)
        encoded.append((serial, entry(serial, time_of(revoked_at), extra)))
    encoded.sort(key=_first)
    return [item for _, item in encoded]


def _first(pair: tuple[int, bytes]) -> int:
    return pair[0]


def _newest(session: Session, issuer: str, kind: str, now: datetime | None) -> IssuedCRL | None:
    query = select(CRLIssue).where(CRLIssue.issuer == issuer, CRLIssue.kind == kind)
    if now is not None:
        query = query.where(CRLIssue.this_update <= _aware(now, "now"))
    row = session.scalars(query.order_by(CRLIssue.number.desc()).limit(1)).first()
    if row is None:
        return None
    issued = IssuedCRL.from_row(row)
    session.expunge(row)
    return issued


def current_crl(
    session: Session, issuer: str, now: datetime, *, delta: bool = False
) -> IssuedCRL | None:
    """The newest full CRL (``delta``: delta CRL) of ``issuer`` already in force at ``now``
    (None before the first)."""
    _check_issuer(issuer)
    return _newest(session, issuer, DELTA if delta else FULL, now)


def crl_due(session: Session, issuer: str, now: datetime, policy: CRLPolicy = CRL_POLICY) -> bool:
    """True when ``issuer`` has no full CRL yet, its newest is old, or a status changed since
    while the full CRL is still small enough to follow every change
    (``policy.full_after_change_up_to``; beyond it the delta CRLs carry the changes)."""
    newest = current_crl(session, issuer, now)
    return (
        newest is None
        or _stale(newest, now, policy)
        or _follows_change(session, issuer, newest, policy)
    )


def _follows_change(session: Session, issuer: str, issued: IssuedCRL, policy: CRLPolicy) -> bool:
    if issuer in DELTA_ISSUERS and issued.entries > policy.full_after_change_up_to:
        return False
    return _changed_since(session, issuer, issued)


def _stale(issued: IssuedCRL, now: datetime, policy: CRLPolicy) -> bool:
    every = policy.delta_every if issued.is_delta else policy.reissue_every
    return _aware(now, "now") - issued.this_update >= every


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
    """How many CRLs of its issuer and kind share ``issued``'s thisUpdate (HTTP dates have
    seconds)."""
    query = select(func.count()).where(
        CRLIssue.issuer == issued.issuer,
        CRLIssue.kind == issued.kind,
        CRLIssue.this_update == issued.this_update,
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
    public_url: str | None = None,
) -> tuple[IssuedCRL, bool]:
    """(the full CRL to publish, whether it was just issued): the current one unless due
    (:func:`crl_due`) or forced. The entries are read from the registry as plain rows."""
    current = current_crl(session, issuer, now)
    if current is not None and not force:  # crl_due, on the CRL already read (59 MB at 1M)
        due = _stale(current, now, policy) or _follows_change(session, issuer, current, policy)
        if not due:
            return current, False
    as_of = last_status_change(session) if issuer == ISSUING_CA.name else None  # read first
    signing = _signing(session, issuer, token)
    this_update = _aware(now, "now").replace(microsecond=0)
    issued = _record(
        session,
        signing,
        entries=_registry_entries(session, issuer, now),
        this_update=this_update,
        next_update=this_update + policy.next_update,
        kind=FULL,
        base_number=None,
        freshest=_freshest_for(public_url, issuer, policy),
        status_as_of=as_of,
        now=now,
        actor=actor,
    )
    return issued, True


@dataclass(frozen=True)
class BaseInfo:
    """The newest full CRL of an issuer, without its DER (a million entries are 59 MB)."""

    number: int
    entries: int
    status_as_of: datetime | None


def newest_base(session: Session, issuer: str) -> BaseInfo | None:
    """Number, entry count and ``status_as_of`` of ``issuer``'s newest full CRL (a delta's base)."""
    query = (
        select(CRLIssue.number, CRLIssue.entries, CRLIssue.status_as_of)
        .where(CRLIssue.issuer == issuer, CRLIssue.kind == FULL)
        .order_by(CRLIssue.number.desc())
        .limit(1)
    )
    row = session.execute(query).first()
    return None if row is None else BaseInfo(int(row[0]), int(row[1]), row[2])


def _delta_entries(
    session: Session, base: BaseInfo, this_update: datetime, policy: CRLPolicy
) -> list[bytes]:
    """What changed since ``base``, as delta CRL entries in serial order (RFC 5280 §5.2.4):
    a certificate revoked or suspended now is listed with its reason now (a hold the base
    lists that became a revocation included); one whose hold was lifted gets removeFromCRL
    (§5.3.1), dated when it was lifted. Changes up to ``after_revocation_within`` before the
    newest one the base reflects are listed again: a change committed late with an earlier
    time is not lost, and repeating an entry the base has is harmless."""
    since = None
    if base.status_as_of is not None:
        since = base.status_as_of - policy.after_revocation_within
    listed: list[tuple[int, bytes]] = []
    for change in status_changes_since(session, since):
        if change.not_after < this_update:
            continue  # expired: relying parties refuse it anyway (RFC 5280 §3.3)
        if change.revoked_at is not None and change.reason is not None:
            code = _CODES[change.reason]
            entry = der.revoked_entry(
                change.serial, change.revoked_at, code, change.invalidity_date
            )
        else:  # active again: its hold was lifted
            entry = der.revoked_entry(change.serial, change.changed_at, _REMOVE_FROM_CRL, None)
        listed.append((change.serial, entry))
    listed.sort(key=_first)
    return [entry for _, entry in listed]


def issue_delta_crl(
    session: Session,
    *,
    issuer: str = ISSUING_CA.name,
    token: HSMToken,
    now: datetime,
    actor: str,
    policy: CRLPolicy = CRL_POLICY,
) -> IssuedCRL:
    """Sign and record a delta CRL of ``issuer`` relative to its newest full CRL (the base):
    critical deltaCRLIndicator with the base's number, the next number of the shared sequence,
    nextUpdate ``policy.delta_next_update`` away. CRLError when there is no base yet."""
    _check_issuer(issuer)
    if issuer not in DELTA_ISSUERS:
        raise UnknownIssuer(f"no delta CRL is published for {issuer!r}")
    signing = _signing(session, issuer, token)
    lock_name(session, CRL_LOCK)  # the lock order of _record, before the base is read
    base = newest_base(session, issuer)
    if base is None:
        raise CRLError(f"the {issuer} CA has no full CRL yet: a delta needs a base")
    as_of = last_status_change(session)  # read before the changes
    this_update = _aware(now, "now").replace(microsecond=0)
    return _record(
        session,
        signing,
        entries=_delta_entries(session, base, this_update, policy),
        this_update=this_update,
        next_update=this_update + policy.delta_next_update,
        kind=DELTA,
        base_number=base.number,
        freshest=None,  # RFC 5280 §5.2.6: freshestCRL never appears in a delta CRL
        status_as_of=as_of,
        now=now,
        actor=actor,
    )


def newest_base_number(session: Session, issuer: str) -> int | None:
    """The number of ``issuer``'s newest full CRL: the base a new delta is relative to."""
    query = select(func.max(CRLIssue.number)).where(
        CRLIssue.issuer == issuer, CRLIssue.kind == FULL
    )
    return session.scalar(query)


def delta_due(session: Session, issuer: str, now: datetime, policy: CRLPolicy = CRL_POLICY) -> bool:
    """True when ``issuer``'s newest delta is missing, relative to an older base, at least
    ``delta_every`` old, or older than a status change."""
    newest = current_crl(session, issuer, now, delta=True)
    if newest is None or newest.base_number != newest_base_number(session, issuer):
        return True
    return _stale(newest, now, policy) or _changed_since(session, issuer, newest)


def refresh_delta(
    session: Session,
    *,
    issuer: str = ISSUING_CA.name,
    token: HSMToken,
    now: datetime,
    actor: str,
    force: bool = False,
    policy: CRLPolicy = CRL_POLICY,
    public_url: str | None = None,
) -> tuple[IssuedCRL, bool]:
    """(the delta CRL to publish, whether it was just issued): the current one unless due or
    forced; a missing base (a fresh installation) is issued first."""
    if issuer not in DELTA_ISSUERS:
        raise UnknownIssuer(f"no delta CRL is published for {issuer!r}")
    current = current_crl(session, issuer, now, delta=True)
    if current is not None and not force and not delta_due(session, issuer, now, policy):
        return current, False
    if newest_base_number(session, issuer) is None:
        refresh_crl(session, issuer=issuer, token=token, now=now, actor=actor, policy=policy,
                    public_url=public_url)  # fmt: skip
    issued = issue_delta_crl(
        session, issuer=issuer, token=token, now=now, actor=actor, policy=policy
    )
    return issued, True

"""Checking a subscriber's detached CMS signature over a document: the §8 procedure as a value.

:func:`check_signature` is the one verification that filing runs at intake and that the dispute
commission (§8) runs later. It never raises for a bad signature: every finding is a
:class:`Step` of the returned :class:`SignatureCheck`, in the order of §8.2:

1. §8.2.1 identify the signer's certificate: by the SignerInfo's issuerAndSerialNumber (or
   subjectKeyIdentifier) among the CMS certificates, or, when the CMS carries none, by issuer
   and serial in our registry. It must be a certificate *we* issued: a ``certificates`` row whose
   DER is the same certificate byte for byte (another CA's certificate with one of our serials
   is a failure, not a match).
2. §8.2.2 verify the signature over the document: the signature is detached and of id-data;
   the signed attributes hold one content-type (id-data) and one message-digest equal to the
   document's hash; signing-certificate-v2 (and v1), when present, name this certificate; the
   signature over the signed attributes verifies with the certificate's key.
3. §8.2.3 establish the signing time (the policy below).
4. §8.2.4 chain to our root: certificate → an issuing CA certificate of ours → our root (rows
   of ``ca_certificates``, replaced ones included), each certificate's signature verified,
   the root's own too.
5. §8.2.5 validity now: informational, it never makes the check fail (an expired certificate's
   earlier signatures stand, §1.5).
6. §8.2.6 validity at the signing time, of every certificate of the chain.
7. §8.2.7 not revoked and not suspended at the signing time, as :func:`crl.status_at` says:
   a revocation after the signing time does not count (§8.3).

A step that cannot be carried out because an earlier one failed (no certificate identified)
is listed as failed with a detail starting "not checked"; ``problems`` names only the steps
that failed on their own.

Signing-time policy (§8.2.3)
----------------------------
* A signature-time-stamp (RFC 3161 token in the SignerInfo's unsigned attributes, CAdES-B-T)
  counts only when it comes from **our** TSA: its signer is one of our TSA certificates
  (``ca_certificates`` rows named ``tsa``, replaced ones included), its signed attributes and
  signature verify with that certificate, its policy is our TSA policy, its genTime lies in the
  TSA certificate's validity, and its messageImprint is the hash of this SignerInfo's signature
  value. Then the signing time is the token's genTime (``time_source`` "signature-time-stamp"):
  the token proves the signature existed then. Of several such tokens the earliest counts.
* A token that names our TSA but fails any of those checks fails the step (the evidence was
  altered). A token from another TSA is ignored (we cannot vouch for its clock) and said so.
* Without a usable token the signing-time attribute is only the signer's claim: it is recorded
  (``claimed_signing_time``) but the checks of validity and status are made at ``now``, the
  intake time, which is the latest moment the signature can have been made
  (``time_source`` "intake"). A certificate revoked or expired before intake therefore fails,
  even if the signer claims an earlier time.
* A claimed signing time (or a genTime) more than :data:`CLOCK_TOLERANCE` after ``now`` fails
  the step, and so does a claimed time more than that after the time-stamp's genTime.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from asn1crypto import cms, tsp  # tsp registers signing-certificate(-v2) with cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.models import CACertificate, Certificate
from crl.status import Status, status_at
from policies.ca_profiles import ISSUING_CA, ROOT_CA
from policies.tsa import TSA

__all__ = ["CLOCK_TOLERANCE", "SignatureCheck", "Step", "TimeSource", "check_signature"]

TimeSource = Literal["signature-time-stamp", "intake"]

# How far a claimed signing time or a time-stamp may lie after ``now`` (clocks drift).
CLOCK_TOLERANCE = timedelta(minutes=5)

IDENTIFY, VERIFY, SIGNING_TIME, CHAIN, VALID_NOW, VALID_THEN, STATUS = (
    "8.2.1",
    "8.2.2",
    "8.2.3",
    "8.2.4",
    "8.2.5",
    "8.2.6",
    "8.2.7",
)
_NAMES = {
    IDENTIFY: "identify the certificate",
    VERIFY: "verify the signature over the document",
    SIGNING_TIME: "establish the signing time",
    CHAIN: "chain to the root CA",
    VALID_NOW: "certificate validity now",
    VALID_THEN: "certificate validity at the signing time",
    STATUS: "not revoked or suspended at the signing time",
}
_INFORMATIONAL = frozenset({VALID_NOW})

_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_ECDSA = {"sha256_ecdsa": "sha256", "sha384_ecdsa": "sha384", "sha512_ecdsa": "sha512"}
_RSA: dict[str, str | None] = {
    "rsassa_pkcs1v15": None,
    "sha256_rsa": "sha256",
    "sha384_rsa": "sha384",
    "sha512_rsa": "sha512",
}
# asn1crypto parses lazily: malformed input surfaces wherever a field is first read.
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of §8.2: its name, its clause ("8.2.1" …), whether it passed, and why."""

    name: str
    clause: str
    ok: bool
    detail: str

    @property
    def required(self) -> bool:
        """False for §8.2.5 (validity now): informational, it never fails the check."""
        return self.clause not in _INFORMATIONAL


@dataclass(frozen=True)
class SignatureCheck:
    """What :func:`check_signature` found: ``ok`` when every required step passed.

    ``signed_at`` is the moment validity and status were checked at (see ``time_source``);
    ``claimed_signing_time`` is the signer's signing-time attribute, if any. ``serial`` is the
    signer certificate's serial as the signature names it; ``certificate_id`` and the holder's
    facts are set only once the certificate is identified as ours. ``problems`` are the details
    of the failed required steps, for error messages.
    """

    ok: bool
    steps: tuple[Step, ...]
    serial: int | None
    certificate_id: int | None
    subscriber_inn: str | None
    holder_id: int | None
    certificate_role: str | None
    signed_at: datetime
    time_source: TimeSource
    claimed_signing_time: datetime | None
    tst_serial: int | None
    document_sha256: str
    problems: tuple[str, ...]

    def step(self, clause: str) -> Step:
        """The step of ``clause`` ("8.2.2", …)."""
        for found in self.steps:
            if found.clause == clause:
                return found
        raise KeyError(clause)


# --- internal values -------------------------------------------------------------------------


class _Fail(Exception):
    """A step failed; the message is its detail."""


class _Foreign(Exception):
    """A time-stamp from a TSA that is not ours: ignored."""


@dataclass(frozen=True)
class _Signed:
    """The parts of a detached CMS SignedData the steps read."""

    signer: Any  # asn1crypto SignerInfo
    encap: Any  # asn1crypto EncapsulatedContentInfo
    certificates: tuple[bytes, ...]  # DER of the plain certificates it carries


@dataclass(frozen=True)
class _Signer:
    """The identified certificate: our row and its parsed form."""

    row: Certificate
    cert: x509.Certificate


@dataclass(frozen=True)
class _Stamp:
    gen_time: datetime
    serial: int


@dataclass
class _Facts:
    """The facts of :class:`SignatureCheck`, filled in as the steps find them."""

    signed_at: datetime
    serial: int | None = None
    certificate_id: int | None = None
    subscriber_inn: str | None = None
    holder_id: int | None = None
    certificate_role: str | None = None
    time_source: TimeSource = "intake"
    claimed_signing_time: datetime | None = None
    tst_serial: int | None = None


@dataclass(frozen=True)
class _Time:
    """What §8.2.3 established."""

    signed_at: datetime
    source: TimeSource
    claimed: datetime | None
    tst_serial: int | None
    detail: str


@dataclass
class _Run:
    session: Session
    now: datetime
    content: bytes | None
    digest: bytes
    steps: list[Step] = field(default_factory=list)
    own_failures: list[str] = field(default_factory=list)

    def record(self, clause: str, ok: bool, detail: str, *, skipped: bool = False) -> None:
        self.steps.append(Step(_NAMES[clause], clause, ok, detail))
        if not ok and not skipped and clause not in _INFORMATIONAL:
            self.own_failures.append(f"§{clause} {detail}")

    def run(self, clause: str, check: Callable[[], str]) -> bool:
        """Record ``check()``'s detail as passed, or its failure; True if it passed."""
        try:
            detail = check()
        except _Fail as ex:
            self.record(clause, False, str(ex))
            return False
        except _PARSE_ERRORS as ex:
            self.record(clause, False, f"malformed CMS signature: {ex}")
            return False
        self.record(clause, True, detail)
        return True

    def skip(self, *clauses: str, why: str) -> None:
        for clause in clauses:
            self.record(clause, False, f"not checked: {why}", skipped=True)


# --- the check -------------------------------------------------------------------------------


def check_signature(
    session: Session,
    cms_der: bytes,
    *,
    content: bytes | None = None,
    digest: bytes | None = None,
    now: datetime,
) -> SignatureCheck:
    """Check the detached CMS ``cms_der`` over a document, given as ``content`` or as its
    SHA-256 ``digest`` (exactly one), at intake time ``now`` (see the module docstring).

    Raises ``ValueError``/``TypeError`` only for a call that is wrong whatever the signature
    (both or neither of content and digest, a digest that is not 32 bytes, a naive ``now``).
    """
    if content is not None and digest is not None:
        raise ValueError("give exactly one of content and digest, not both")
    if content is not None:
        document_sha256 = hashlib.sha256(content).digest()
    elif digest is not None:
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError("digest must be a SHA-256 digest (32 bytes)")
        document_sha256 = digest
    else:
        raise ValueError("give exactly one of content and digest")
    if not isinstance(cms_der, bytes):
        raise TypeError("cms_der must be bytes")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    run = _Run(session, now.astimezone(UTC), content, document_sha256)
    facts = _Facts(signed_at=run.now)
    _check(run, facts, cms_der)
    return SignatureCheck(
        ok=all(s.ok for s in run.steps if s.required),
        steps=tuple(run.steps),
        serial=facts.serial,
        certificate_id=facts.certificate_id,
        subscriber_inn=facts.subscriber_inn,
        holder_id=facts.holder_id,
        certificate_role=facts.certificate_role,
        signed_at=facts.signed_at,
        time_source=facts.time_source,
        claimed_signing_time=facts.claimed_signing_time,
        tst_serial=facts.tst_serial,
        document_sha256=document_sha256.hex(),
        problems=tuple(run.own_failures),
    )


def _check(run: _Run, facts: _Facts, cms_der: bytes) -> None:
    rest = (VERIFY, SIGNING_TIME, CHAIN, VALID_NOW, VALID_THEN, STATUS)
    try:
        signed = _load(cms_der)
        facts.serial = _named_serial(signed)
    except _Fail as ex:
        run.record(IDENTIFY, False, str(ex))
        run.skip(*rest, why="the signature could not be read")
        return
    except _PARSE_ERRORS as ex:
        run.record(IDENTIFY, False, f"malformed CMS signature: {ex}")
        run.skip(*rest, why="the signature could not be read")
        return

    found: list[_Signer] = []

    def identify() -> str:
        signer, detail = _identify(run.session, signed)
        found.append(signer)
        return detail

    identified = run.run(IDENTIFY, identify)
    if identified:
        signer = found[0]
        facts.serial = signer.cert.serial_number
        facts.certificate_id = signer.row.id
        facts.subscriber_inn = signer.row.subscriber_inn
        facts.holder_id = signer.row.holder_id
        facts.certificate_role = signer.row.role
        run.run(VERIFY, lambda: _verify(run, signed, signer.cert))
    else:
        run.skip(VERIFY, why="no certificate of ours was identified (§8.2.1)")

    def establish() -> str:
        established = _signing_time(run, signed)
        facts.signed_at, facts.time_source = established.signed_at, established.source
        facts.claimed_signing_time = established.claimed
        facts.tst_serial = established.tst_serial
        return established.detail

    timed = run.run(SIGNING_TIME, establish)
    if not identified:
        run.skip(CHAIN, VALID_NOW, VALID_THEN, STATUS, why="no certificate was identified")
        return
    chain: list[x509.Certificate] = []

    def build_chain() -> str:
        path, detail = _chain(run.session, found[0].cert)
        chain.extend(path)
        return detail

    run.run(CHAIN, build_chain)
    path = chain or [found[0].cert]
    run.run(VALID_NOW, lambda: _validity(path, run.now, "now"))
    if not timed:
        run.skip(VALID_THEN, STATUS, why="the signing time was not established (§8.2.3)")
        return
    signed_at = facts.signed_at
    run.run(VALID_THEN, lambda: _validity(path, signed_at, "at the signing time"))
    run.run(STATUS, lambda: _status(run, found[0].cert.serial_number, signed_at))


# --- reading the CMS -------------------------------------------------------------------------


def _load(cms_der: bytes) -> _Signed:
    if not cms_der:
        raise _Fail("malformed CMS signature: it is empty")
    content_info = cms.ContentInfo.load(cms_der, strict=True)
    if content_info["content_type"].native != "signed_data":
        raise _Fail("not a CMS SignedData signature")
    signed_data = content_info["content"]
    signed_data.native  # noqa: B018 - parse every field now: malformed DER fails here
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise _Fail(f"expected exactly one signer, found {len(signer_infos)}")
    certificates = tuple(
        choice.chosen.dump()
        for choice in signed_data["certificates"] or []
        if choice.name == "certificate"
    )
    return _Signed(signer_infos[0], signed_data["encap_content_info"], certificates)


def _named_serial(signed: _Signed) -> int | None:
    sid = signed.signer["sid"]
    if sid.name == "issuer_and_serial_number":
        return int(sid.chosen["serial_number"].native)
    return None


def _hex(serial: int) -> str:
    return format(serial, "x")


# --- §8.2.1 ----------------------------------------------------------------------------------


def _names_signer(sid: Any, der: bytes) -> bool:
    cert = asn1_x509.Certificate.load(der)
    if sid.name == "issuer_and_serial_number":
        return bool(
            cert.issuer == sid.chosen["issuer"]
            and cert.serial_number == sid.chosen["serial_number"].native
        )
    key_identifier = cert.key_identifier
    return key_identifier is not None and hmac.compare_digest(key_identifier, sid.chosen.native)


def _our_row(session: Session, serial: int) -> Certificate | None:
    query = select(Certificate).where(Certificate.serial == _hex(serial))
    return session.scalars(query).one_or_none()


def _identify(session: Session, signed: _Signed) -> tuple[_Signer, str]:
    sid = signed.signer["sid"]
    candidates = [der for der in signed.certificates if _names_signer(sid, der)]
    for der in candidates:
        serial = asn1_x509.Certificate.load(der).serial_number
        row = _our_row(session, serial)
        if row is not None and row.der is not None and hmac.compare_digest(row.der, der):
            cert = x509.load_der_x509_certificate(der)
            return _Signer(row, cert), (
                f"certificate {_hex(serial)} ({cert.subject.rfc4514_string()}), carried in the "
                f"signature, is certificate #{row.id} of our registry"
            )
    if candidates:
        serial = asn1_x509.Certificate.load(candidates[0]).serial_number
        raise _Fail(
            f"the signer's certificate {_hex(serial)} is not one this CA issued "
            "(no certificate of ours is that certificate)"
        )
    if sid.name != "issuer_and_serial_number":
        raise _Fail(
            "the signature names its signer by key identifier and carries no certificate "
            "with it: the certificate cannot be identified"
        )
    serial = int(sid.chosen["serial_number"].native)
    row = _our_row(session, serial)
    if row is None or row.der is None or not _names_signer(sid, row.der):
        raise _Fail(
            f"the signature carries no certificate and this CA issued no certificate "
            f"{_hex(serial)} by {sid.chosen['issuer'].human_friendly}"
        )
    cert = x509.load_der_x509_certificate(row.der)
    return _Signer(row, cert), (
        f"certificate {_hex(serial)} ({cert.subject.rfc4514_string()}) is certificate "
        f"#{row.id} of our registry (the signature carries no certificate)"
    )


# --- §8.2.2 ----------------------------------------------------------------------------------


def _attributes(attrs: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for attribute in attrs:
        found.setdefault(str(attribute["type"].native), []).append(attribute["values"])
    return found


def _single(attributes: dict[str, list[Any]], name: str) -> Any:
    """The one value of a signed attribute that must appear once with one value (RFC 5652)."""
    shown = name.replace("_", "-")
    instances = attributes.get(name, [])
    if not instances:
        raise _Fail(f"the signed attribute {shown} is missing")
    if len(instances) != 1 or len(instances[0]) != 1:
        raise _Fail(f"the signed attribute {shown} must have exactly one value")
    return instances[0][0]


def _verify(run: _Run, signed: _Signed, cert: x509.Certificate) -> str:
    encap = signed.encap
    if encap["content_type"].native != "data":
        raise _Fail("the signed content type is not id-data")
    if encap["content"].native is not None:
        raise _Fail("the signature carries its own content: a detached signature is expected")
    signer = signed.signer
    if signer["signed_attrs"].native is None:
        raise _Fail("the signature has no signed attributes (CAdES requires them)")
    attributes = _attributes(signer["signed_attrs"])
    if _single(attributes, "content_type").native != "data":
        raise _Fail("the content-type attribute is not id-data")
    hash_name = str(signer["digest_algorithm"]["algorithm"].native)
    if hash_name not in _HASHES:
        raise _Fail(f"unsupported digest algorithm {hash_name}")
    if run.content is not None:
        expected = hashlib.new(hash_name, run.content).digest()
    elif hash_name == "sha256":
        expected = run.digest
    else:
        raise _Fail(
            f"the signature uses {hash_name}: the document's SHA-256 cannot check it, "
            "the document itself is needed"
        )
    if not hmac.compare_digest(_single(attributes, "message_digest").native, expected):
        raise _Fail("message digest mismatch: the document is not the one that was signed")
    der = cert.public_bytes(serialization.Encoding.DER)
    _check_signing_certificate(attributes, der)
    retagged = b"\x31" + signer["signed_attrs"].dump()[1:]  # [0] IMPLICIT -> SET OF (§5.4)
    if not _verifies(
        cert.public_key(),
        str(signer["signature_algorithm"]["algorithm"].native),
        hash_name,
        signer["signature"].native,
        retagged,
    ):
        raise _Fail("bad signature: it does not verify with the certificate's key")
    return (
        f"the {hash_name} signature verifies with the key of certificate "
        f"{_hex(cert.serial_number)} over the document (SHA-256 {run.digest.hex()})"
    )


def _check_signing_certificate(attributes: dict[str, list[Any]], der: bytes) -> None:
    """signing-certificate-v2 (RFC 5035) and v1 (RFC 2634), when present, name ``der``."""
    if "signing_certificate_v2" in attributes:
        ess_cert_id = _single(attributes, "signing_certificate_v2")["certs"][0]
        name = str(ess_cert_id["hash_algorithm"]["algorithm"].native)
        if name not in _HASHES:
            raise _Fail(f"unsupported signing-certificate-v2 hash {name}")
        if not hmac.compare_digest(
            ess_cert_id["cert_hash"].native, hashlib.new(name, der).digest()
        ):
            raise _Fail("the signing-certificate-v2 attribute names another certificate")
    if "signing_certificate" in attributes:
        ess_cert_id = _single(attributes, "signing_certificate")["certs"][0]
        sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
        if not hmac.compare_digest(ess_cert_id["cert_hash"].native, sha1):
            raise _Fail("the signing-certificate attribute names another certificate")


def _verifies(
    public_key: CertificatePublicKeyTypes,
    algorithm: str,
    hash_name: str,
    signature: bytes,
    signed_attrs: bytes,
) -> bool:
    """Does ``signature`` (SignatureAlgorithmIdentifier ``algorithm``) verify over the DER of
    the signed attributes? A sender's bytes should already be DER; they are re-encoded once
    as openssl does, in case they are not (an unsorted SET OF, say)."""
    verify = _verifier(public_key, algorithm, hash_name)
    for data in (signed_attrs, cms.CMSAttributes.load(signed_attrs).dump(force=True)):
        try:
            verify(signature, data)
        except InvalidSignature:
            continue
        return True
    return False


def _verifier(
    public_key: CertificatePublicKeyTypes, algorithm: str, hash_name: str
) -> Callable[[bytes, bytes], None]:
    chosen = _HASHES[hash_name]()
    if algorithm in _ECDSA or algorithm == "ecdsa":
        if _ECDSA.get(algorithm, hash_name) != hash_name:
            raise _Fail(f"the signature algorithm {algorithm} does not match {hash_name}")
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise _Fail("an ECDSA signature, but the certificate's key is not an EC key")
        ec_key = public_key
        return lambda value, data: ec_key.verify(value, data, ec.ECDSA(chosen))
    if algorithm in _RSA:
        if _RSA[algorithm] not in (None, hash_name):
            raise _Fail(f"the signature algorithm {algorithm} does not match {hash_name}")
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise _Fail("an RSA signature, but the certificate's key is not an RSA key")
        rsa_key = public_key
        return lambda value, data: rsa_key.verify(value, data, padding.PKCS1v15(), chosen)
    raise _Fail(f"unsupported signature algorithm {algorithm}")


# --- §8.2.3 ----------------------------------------------------------------------------------


def _claimed_time(signer: Any) -> datetime | None:
    if signer["signed_attrs"].native is None:
        return None
    attributes = _attributes(signer["signed_attrs"])
    if "signing_time" not in attributes:
        return None
    moment = _single(attributes, "signing_time").native
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise _Fail("the signing-time attribute is not a valid time")
    return moment.astimezone(UTC)


def _tokens(signer: Any) -> list[Any]:
    unsigned = signer["unsigned_attrs"]
    if unsigned.native is None:
        return []
    return [
        token
        for attribute in unsigned
        if attribute["type"].native == "signature_time_stamp_token"
        for token in attribute["values"]
    ]


def _signing_time(run: _Run, signed: _Signed) -> _Time:
    claimed = _claimed_time(signed.signer)
    signature_value: bytes = signed.signer["signature"].native
    stamps: list[_Stamp] = []
    ignored: list[str] = []
    for token in _tokens(signed.signer):
        try:
            stamps.append(_time_stamp(run.session, token, signature_value))
        except _Foreign as ex:
            ignored.append(str(ex))
    said = f"; the signer claims {claimed.isoformat()}" if claimed is not None else ""
    if claimed is not None and claimed > run.now + CLOCK_TOLERANCE:
        raise _Fail(
            f"the signing-time attribute claims {claimed.isoformat()}, after the intake time "
            f"{run.now.isoformat()}"
        )
    if stamps:
        stamp = min(stamps, key=lambda s: s.gen_time)
        if stamp.gen_time > run.now + CLOCK_TOLERANCE:
            raise _Fail(
                f"the time-stamp's time {stamp.gen_time.isoformat()} is after the intake time "
                f"{run.now.isoformat()}"
            )
        if claimed is not None and claimed > stamp.gen_time + CLOCK_TOLERANCE:
            raise _Fail(
                f"the signing-time attribute claims {claimed.isoformat()}, after the "
                f"time-stamp {stamp.gen_time.isoformat()} that proves the signature existed"
            )
        detail = (
            f"time-stamped by our TSA at {stamp.gen_time.isoformat()} "
            f"(token {_hex(stamp.serial)}){said}"
        )
        return _Time(stamp.gen_time, "signature-time-stamp", claimed, stamp.serial, detail)
    why = "; ".join(ignored) if ignored else "no signature-time-stamp"
    detail = (
        f"{why}: checked at the intake time {run.now.isoformat()}, the latest moment the "
        f"signature can have been made{said}"
    )
    return _Time(run.now, "intake", claimed, None, detail)


def _tsa_certificates(session: Session) -> list[x509.Certificate]:
    rows = session.scalars(select(CACertificate).where(CACertificate.name == TSA.name))
    return [x509.load_der_x509_certificate(row.der) for row in rows]


def _time_stamp(session: Session, token: Any, signature_value: bytes) -> _Stamp:
    """The genTime of a token from our TSA over ``signature_value``.

    Raises :class:`_Foreign` for another TSA's token and :class:`_Fail` for a token of ours
    that does not check out.
    """
    if token["content_type"].native != "signed_data":
        raise _Fail("the signature-time-stamp is not a CMS SignedData")
    signed_data = token["content"]
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise _Fail("the signature-time-stamp must have exactly one signer")
    signer = signer_infos[0]
    tsa = _our_tsa(session, signer["sid"])
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise _Fail("the signature-time-stamp does not hold a TSTInfo")
    tst_der: bytes = encap["content"].parsed.dump()
    info = tsp.TSTInfo.load(tst_der)
    _check_token_signature(signer, tst_der, tsa)
    imprint = info["message_imprint"]
    imprint_hash = str(imprint["hash_algorithm"]["algorithm"].native)
    if imprint_hash not in _HASHES:
        raise _Fail(f"the time-stamp's imprint uses an unsupported hash {imprint_hash}")
    expected = hashlib.new(imprint_hash, signature_value).digest()
    if not hmac.compare_digest(imprint["hashed_message"].native, expected):
        raise _Fail("the signature-time-stamp is not over this signature's value")
    if info["policy"].native != TSA.policy_oid:
        raise _Fail(f"the signature-time-stamp's policy is not our TSA policy {TSA.policy_oid}")
    gen_time = info["gen_time"].native.astimezone(UTC)
    if not tsa.not_valid_before_utc <= gen_time <= tsa.not_valid_after_utc:
        raise _Fail("the signature-time-stamp was made outside its TSA certificate's validity")
    return _Stamp(gen_time, int(info["serial_number"].native))


def _our_tsa(session: Session, sid: Any) -> x509.Certificate:
    if sid.name != "issuer_and_serial_number":
        raise _Foreign("a signature-time-stamp not from our TSA was ignored")
    for cert in _tsa_certificates(session):
        asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
        if (
            asn1_cert.issuer == sid.chosen["issuer"]
            and asn1_cert.serial_number == sid.chosen["serial_number"].native
        ):
            return cert
    raise _Foreign(
        f"a signature-time-stamp from another TSA ({sid.chosen['issuer'].human_friendly}) "
        "was ignored"
    )


def _check_token_signature(signer: Any, tst_der: bytes, tsa: x509.Certificate) -> None:
    if signer["signed_attrs"].native is None:
        raise _Fail("the signature-time-stamp has no signed attributes")
    attributes = _attributes(signer["signed_attrs"])
    if _single(attributes, "content_type").native != "tst_info":
        raise _Fail("the signature-time-stamp's content-type attribute is not id-ct-TSTInfo")
    hash_name = str(signer["digest_algorithm"]["algorithm"].native)
    if hash_name not in _HASHES:
        raise _Fail(f"the signature-time-stamp uses an unsupported digest {hash_name}")
    if not hmac.compare_digest(
        _single(attributes, "message_digest").native, hashlib.new(hash_name, tst_der).digest()
    ):
        raise _Fail("the signature-time-stamp's TSTInfo was altered (message digest mismatch)")
    try:
        _check_signing_certificate(attributes, tsa.public_bytes(serialization.Encoding.DER))
    except _Fail as ex:
        raise _Fail(f"the signature-time-stamp: {ex}") from None
    retagged = b"\x31" + signer["signed_attrs"].dump()[1:]
    algorithm = str(signer["signature_algorithm"]["algorithm"].native)
    if not _verifies(tsa.public_key(), algorithm, hash_name, signer["signature"].native, retagged):
        raise _Fail("the signature-time-stamp's signature does not verify with our TSA's key")


# --- §8.2.4 to §8.2.7 ------------------------------------------------------------------------


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _ca_certificates(session: Session, name: str) -> list[x509.Certificate]:
    rows = session.scalars(
        select(CACertificate).where(CACertificate.name == name).order_by(CACertificate.id.desc())
    )
    return [x509.load_der_x509_certificate(row.der) for row in rows]


def _chain(session: Session, cert: x509.Certificate) -> tuple[list[x509.Certificate], str]:
    """certificate → issuing CA → root, from our CA certificates, every signature verified."""
    roots = [r for r in _ca_certificates(session, ROOT_CA.name) if _issued_by(r, r)]
    issuing = _ca_certificates(session, ISSUING_CA.name)
    path = [cert]
    for _depth in range(len(issuing) + 1):
        current = path[-1]
        root = next((r for r in roots if _issued_by(current, r)), None)
        if root is not None:
            path.append(root)
            names = " ← ".join(f"{c.subject.rfc4514_string()}" for c in path)
            return path, f"{names}: every signature verified, the root's own too"
        parent = next((c for c in issuing if c not in path and _issued_by(current, c)), None)
        if parent is None:
            raise _Fail(
                f"{current.subject.rfc4514_string()} is not signed by any of our CA "
                f"certificates named {current.issuer.rfc4514_string()}"
            )
        path.append(parent)
    raise _Fail("the chain does not reach our root")  # pragma: no cover - cycles are excluded


def _validity(path: Iterable[x509.Certificate], moment: datetime, when: str) -> str:
    """RFC 5280 §4.1.2.5: valid from notBefore to notAfter, both inclusive."""
    for cert in path:
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if not start <= moment <= end:
            what = "not yet valid" if moment < start else "expired"
            raise _Fail(
                f"{cert.subject.rfc4514_string()} (serial {_hex(cert.serial_number)}) is {what} "
                f"{when} ({moment.isoformat()}): valid {start.isoformat()} to {end.isoformat()}"
            )
    return f"every certificate of the chain is valid {when} ({moment.isoformat()})"


def _status(run: _Run, serial: int, signed_at: datetime) -> str:
    then = status_at(run.session, serial, signed_at)
    if then.status is Status.REVOKED:
        raise _Fail(
            f"certificate {_hex(serial)} was revoked at {_iso(then.since)} ({then.reason}), "
            f"before the signing time {signed_at.isoformat()}"
        )
    if then.status is Status.ON_HOLD:
        raise _Fail(
            f"certificate {_hex(serial)} was suspended at {_iso(then.since)} and still "
            f"suspended at the signing time {signed_at.isoformat()}"
        )
    if then.status is not Status.GOOD:
        raise _Fail(f"this CA has no status for certificate {_hex(serial)}")
    detail = f"certificate {_hex(serial)} was in force at the signing time {signed_at.isoformat()}"
    current = status_at(run.session, serial, run.now)
    if current.status is Status.REVOKED:
        detail += f"; revoked later, at {_iso(current.since)} ({current.reason}): §8.3"
        if current.invalidity_date is not None and current.invalidity_date <= signed_at:
            detail += f", though the key is said compromised from {_iso(current.invalidity_date)}"
    elif current.status is Status.ON_HOLD:
        detail += f"; suspended later, at {_iso(current.since)}: §8.3"
    return detail


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "an unknown time"

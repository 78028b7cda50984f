"""The §8 dispute engine: seven steps per signature, an ETSI EN 319 102-1 verdict, inputs named.

For each signature (a SignerInfo of a CMS, or a signature embedded in a PDF) the engine runs
the steps of §8.2 and records each as a :class:`~.report.StepResult` with its evidence:

1. identify the signer's certificate (the SignerInfo's issuer+serial or subject key identifier,
   among the certificates in the signature and the ones given);
2. verify the signature over the document (content-type and message-digest attributes, the
   signature value, signing-certificate(-v2) when present, the algorithms' strength at the
   signing time) — pyHanko's ``validate_sig_integrity``;
3. establish when it was signed: the earliest proof of existence (POE) — a verified RFC 3161
   signature-time-stamp (its TSA's path validated at its genTime, EKU timeStamping), else the
   operator's evidence record; the signer's signingTime attribute is recorded but proves nothing;
   without a POE the signature is judged as of the validation time;
4. the path to a trust anchor, RFC 5280 (name constraints, policies, basic constraints, key
   usage, critical extensions), each certificate's signature verified — pyhanko-certvalidator;
5. validity now (informational: an expired certificate's earlier signatures stand, §1.5);
6. validity of every certificate of the path at the signing time;
7. revocation at the signing time from the CRLs given (the archive of every CRL issued): for
   each CRL issuer the last CRL issued at or before the signing time and the first issued after
   it are used, so a suspension in force at that moment is seen even if lifted later; a
   revocation dated after the signing time does not invalidate the signature (§8.3), one dated
   before does; certificateHold is treated by its dates the same way.

Path validation (steps 4, 6 and 7) is pyhanko-certvalidator's RFC 5280 algorithm with
point-in-time revocation checking (CRL required for the signer and every CA below the anchor,
no fetching): the engine only chooses the moment and the CRLs, and sorts its findings into steps
and ETSI sub-indications. It never raises for a bad signature; unreadable input raises
:class:`~.inputs.UnreadableInput`.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

from asn1crypto import cms, core, pem, tsp  # tsp registers the signing-certificate attributes
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.validation.generic_cms import validate_sig_integrity
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InsufficientRevinfoError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    StaleRevinfoError,
    ValidationError,
)
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.validate import async_validate_path

from policies.verification import (
    CLOCK_TOLERANCE_SECONDS,
    MAX_SIGNERS,
    digest_acceptable_at,
    key_acceptable_at,
)
from signing_api.verification.inputs import (
    MAX_INPUT_BYTES,
    PARSE_ERRORS,
    NamedBytes,
    TrustMaterial,
    UnreadableInput,
    describe_name,
    read_certificates,
    sha256_hex,
)
from signing_api.verification.report import (
    ChainReport,
    DocumentReport,
    Evidence,
    Indication,
    InputFile,
    SignatureReport,
    SigningTime,
    StepResult,
    StepStatus,
    SubIndication,
    TimeProof,
)

__all__ = [
    "ENGINE",
    "OperatorEvidence",
    "package_signatures",
    "verify_chain",
    "verify_package",
    "verify_pdf",
    "verify_signature",
]

ENGINE = (
    f"tamga-verification/1 (pyhanko-certvalidator {version('pyhanko-certvalidator')}, "
    f"pyhanko {version('pyhanko')})"
)

_TOLERANCE = timedelta(seconds=CLOCK_TOLERANCE_SECONDS)
_PACKAGE_MEMBERS = 64  # a filed report's package has about ten
_SIGNER_USAGES = frozenset({"digital_signature", "non_repudiation"})
_REVINFO_POLICY = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CRL_REQUIRED,
    ),
    # A CRL issued after the signing time still speaks of it (entries carry their dates, and
    # certvalidator counts only those before the moment): the archive's later CRLs are evidence.
    retroactive_revinfo=True,
)


@dataclass(frozen=True)
class OperatorEvidence:
    """The operator's record that a signature existed at ``at`` (a proof of existence).

    ``signature_sha256`` is the SHA-256 of the SignerInfo's signature value (the raw signature
    bytes), which identifies the signature whatever container it travels in.
    """

    signature_sha256: str
    at: datetime
    description: str


# --- path validation (steps 4, 6, 7) ---------------------------------------------------------


@dataclass(frozen=True)
class _PathOutcome:
    """What pyhanko-certvalidator found for one certificate at one moment."""

    path: tuple[asn1_x509.Certificate, ...]  # signer first, anchor last; () if none was built
    error: ValidationError | PathBuildingError | None
    crls: tuple[asn1_crl.CertificateList, ...]  # the CRLs offered for this moment

    @property
    def ok(self) -> bool:
        return self.error is None


def _crl_this_update(crl: asn1_crl.CertificateList) -> datetime:
    return crl["tbs_cert_list"]["this_update"].native  # type: ignore[no-any-return]


def _crls_for(
    crls: Iterable[asn1_crl.CertificateList], moment: datetime
) -> tuple[asn1_crl.CertificateList, ...]:
    """For each CRL scope (issuer, base or delta, distribution point): the CRLs covering ``moment``.

    The last one issued at or before the moment says what was in force then (our CRLs are
    issued at every status change), so a suspension in force then is seen even if lifted
    later; the first one issued after it and the newest one catch a revocation recorded with an
    earlier date (a revocation stays listed until the certificate expires). All are offered;
    certvalidator applies §8.3 to each entry's date: only a date before the moment counts.
    """
    scopes: dict[tuple[bytes, bool, bytes], list[asn1_crl.CertificateList]] = {}
    for crl in crls:
        idp = crl.issuing_distribution_point_value
        key = (
            crl["tbs_cert_list"]["issuer"].dump(),
            crl.delta_crl_indicator_value is not None,
            idp.dump() if idp is not None else b"",
        )
        scopes.setdefault(key, []).append(crl)
    chosen: list[asn1_crl.CertificateList] = []
    for group in scopes.values():
        before = [c for c in group if _crl_this_update(c) <= moment]
        after = [c for c in group if _crl_this_update(c) > moment]
        if before:
            chosen.append(max(before, key=_crl_this_update))
        if after:
            chosen.append(min(after, key=_crl_this_update))
            latest = max(after, key=_crl_this_update)
            if latest is not chosen[-1]:
                chosen.append(latest)
    return tuple(chosen)


def _context(
    trust: TrustMaterial,
    extra: Sequence[asn1_x509.Certificate],
    moment: datetime,
    crls: Sequence[Any],
) -> ValidationContext:
    return ValidationContext(
        trust_roots=list(trust.anchors),
        other_certs=list(trust.intermediates) + list(extra),
        moment=moment,
        allow_fetching=False,
        crls=list(crls),
        revinfo_policy=_REVINFO_POLICY,
        time_tolerance=timedelta(seconds=1),
    )


async def _validate(
    cert: asn1_x509.Certificate,
    extra: Sequence[asn1_x509.Certificate],
    trust: TrustMaterial,
    moment: datetime,
) -> _PathOutcome:
    crls = _crls_for(trust.crls, moment)
    context = _context(trust, extra, moment, crls)
    errors: list[ValidationError | PathBuildingError] = []
    first_path: tuple[asn1_x509.Certificate, ...] = ()
    try:
        paths = context.path_builder.async_build_paths_lazy(cert)
        try:
            async for candidate in paths:
                chain = _chain_of(candidate)
                first_path = first_path or chain
                try:
                    await async_validate_path(context, candidate)
                    return _PathOutcome(chain, None, crls)
                except ValidationError as exc:
                    errors.append(exc)
        finally:
            await paths.cancel()  # type: ignore[no-untyped-call]
    except PathBuildingError as exc:
        return _PathOutcome((), exc, crls)
    if not errors:
        return _PathOutcome((), PathBuildingError("no path to a trust anchor"), crls)
    # Prefer the finding that is not about a signature (certvalidator's own rule), then the first.
    error = next((e for e in errors if "signature" not in str(e)), errors[0])
    return _PathOutcome(first_path, error, crls)


def _chain_of(path: ValidationPath) -> tuple[asn1_x509.Certificate, ...]:
    certs = [c for c in path.iter_certs(include_root=True) if isinstance(c, asn1_x509.Certificate)]
    return tuple(reversed(certs))


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# --- evidence helpers ------------------------------------------------------------------------


def _cert_evidence(cert: asn1_x509.Certificate, role: str) -> Evidence:
    validity = cert["tbs_certificate"]["validity"]
    return Evidence(
        kind="certificate",
        description=f"{role}: {describe_name(cert.subject)}, serial {cert.serial_number:x}, "
        f"issued by {describe_name(cert.issuer)}, valid {_iso(validity['not_before'].native)} "
        f"to {_iso(validity['not_after'].native)}",
        sha256=sha256_hex(cert.dump()),
    )


def _crl_evidence(crl: asn1_crl.CertificateList) -> Evidence:
    tbs = crl["tbs_cert_list"]
    number = crl.crl_number_value
    kind = "delta CRL" if crl.delta_crl_indicator_value is not None else "CRL"
    return Evidence(
        kind="crl",
        description=f"{kind} of {describe_name(tbs['issuer'])} number "
        f"{number.native if number is not None else '?'}, this update "
        f"{_iso(tbs['this_update'].native)}, next update {_iso(tbs['next_update'].native)}",
        sha256=sha256_hex(crl.dump()),
        at=tbs["this_update"].native,
    )


def _iso(moment: datetime | None) -> str:
    return "?" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _subject(cert: asn1_x509.Certificate) -> str:
    return describe_name(cert.subject)


def _revocations(
    cert: asn1_x509.Certificate, crls: Iterable[asn1_crl.CertificateList]
) -> list[tuple[datetime, str, asn1_crl.CertificateList]]:
    """Every entry for ``cert`` in CRLs of its issuer: (revocation date, reason, CRL)."""
    found = []
    issuer = cert.issuer.dump()
    for crl in crls:
        tbs = crl["tbs_cert_list"]
        if tbs["issuer"].dump() != issuer:
            continue
        for entry in tbs["revoked_certificates"]:
            if entry["user_certificate"].native != cert.serial_number:
                continue
            reason = entry.crl_reason_value
            found.append(
                (
                    entry["revocation_date"].native,
                    reason.native if reason is not None else "unspecified",
                    crl,
                )
            )
    return found


def _revocation_summary(
    cert: asn1_x509.Certificate, crls: Iterable[asn1_crl.CertificateList], signed_at: datetime
) -> tuple[str, tuple[Evidence, ...]]:
    """What every CRL given says about the signer: "not revoked", or each listing with its date."""
    entries = _revocations(cert, crls)
    if not entries:
        return "not listed on any CRL given", ()
    seen: dict[tuple[datetime, str], asn1_crl.CertificateList] = {}
    for when, reason, crl in sorted(entries, key=lambda e: (e[0], _crl_this_update(e[2]))):
        seen.setdefault((when, reason), crl)
    parts = []
    evidence = []
    for (when, reason), crl in seen.items():
        if reason == "remove_from_crl":
            parts.append(f"removed from the CRL {_iso(when)}")
            continue
        side = "after the signing time" if when > signed_at else "at or before the signing time"
        word = (
            "suspended (certificateHold)" if reason == "certificate_hold" else f"revoked ({reason})"
        )
        parts.append(f"{word} {_iso(when)}, {side}")
        evidence.append(_crl_evidence(crl))
    return "; ".join(parts), tuple(evidence)


# --- the signer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signed:
    """A SignerInfo to check, and how to get the digest of what it signed."""

    label: str
    signer: cms.SignerInfo
    content_type: str
    digest_of: Callable[[str], bytes]  # digest algorithm name -> digest of the signed content
    certificates: tuple[asn1_x509.Certificate, ...]  # carried by the signature


def _find_certificate(
    signer: cms.SignerInfo, candidates: Iterable[asn1_x509.Certificate]
) -> asn1_x509.Certificate | None:
    sid = signer["sid"]
    for cert in candidates:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                cert.issuer.dump() == wanted["issuer"].dump()
                and cert.serial_number == wanted["serial_number"].native
            ):
                return cert
        elif (
            sid.name == "subject_key_identifier"
            and cert.key_identifier is not None
            and cert.key_identifier == sid.chosen.native
        ):
            return cert
    return None


def _attribute(signer: cms.SignerInfo, name: str, *, signed: bool = True) -> list[Any]:
    attrs = signer["signed_attrs" if signed else "unsigned_attrs"]
    if isinstance(attrs, core.Void):
        return []
    values: list[Any] = []
    for attr in attrs:
        if attr["type"].native == name:
            values.extend(attr["values"])
    return values


def _signing_certificate_binding(signer: cms.SignerInfo, cert: asn1_x509.Certificate) -> str | None:
    """None when signing-certificate(-v2) is absent or names ``cert``; else what is wrong."""
    der = cert.dump()
    for value in _attribute(signer, "signing_certificate_v2"):
        ids = value["certs"]
        if len(ids) == 0:
            return "signing-certificate-v2 names no certificate"
        first = ids[0]
        algorithm = first["hash_algorithm"]["algorithm"].native
        try:
            digest = hashlib.new(
                algorithm.replace("_", "-") if algorithm.startswith("sha3") else algorithm, der
            ).digest()
        except ValueError:
            return f"signing-certificate-v2 uses an unknown hash {algorithm}"
        if digest != first["cert_hash"].native:
            return "signing-certificate-v2 names another certificate"
    for value in _attribute(signer, "signing_certificate"):
        ids = value["certs"]
        if len(ids) == 0 or hashlib.sha1(der).digest() != ids[0]["cert_hash"].native:  # noqa: S324 - RFC 2634's ESSCertID
            return "signing-certificate names another certificate"
    return None


def _key_strength(cert: asn1_x509.Certificate) -> tuple[str, int]:
    key = cert.public_key
    algorithm = key.algorithm
    try:
        bits = key.bit_size
    except PARSE_ERRORS:
        bits = 0
    return algorithm, bits


@dataclass(frozen=True)
class _Stamp:
    gen_time: datetime
    evidence: tuple[Evidence, ...]


async def _check_time_stamp(  # noqa: PLR0911 - one return per reason a token is not usable
    token: cms.ContentInfo,
    signature_value: bytes,
    trust: TrustMaterial,
    now: datetime,
) -> _Stamp | str:
    """A verified signature-time-stamp, or why it cannot be used as a proof of existence."""
    try:
        if token["content_type"].native != "signed_data":
            return "the time-stamp is not a SignedData"
        signed = token["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            return "the time-stamp does not hold a TSTInfo"
        tst_der = encap["content"].parsed.dump() if encap["content"].parsed is not None else b""
        info = tsp.TSTInfo.load(tst_der)
        gen_time: datetime = info["gen_time"].native
        imprint = info["message_imprint"]
        hash_name = imprint["hash_algorithm"]["algorithm"].native
        expected = hashlib.new(hash_name, signature_value).digest()
        if expected != imprint["hashed_message"].native:
            return "the time-stamp is over another signature value (messageImprint differs)"
        signers = signed["signer_infos"]
        if len(signers) != 1:
            return "the time-stamp has not exactly one signer"
        tsa_signer = signers[0]
        carried = _carried_certificates(signed)
        tsa_cert = _find_certificate(tsa_signer, carried + trust.intermediates + trust.anchors)
        if tsa_cert is None:
            return "the time-stamp's signer certificate is neither in it nor among those given"
        md = tsa_signer["digest_algorithm"]["algorithm"].native
        digest = hashlib.new(md, encap["content"].contents).digest()
        intact, valid = validate_sig_integrity(tsa_signer, tsa_cert, "tst_info", digest)
    except PARSE_ERRORS as exc:
        return f"the time-stamp is unreadable ({exc})"
    except Exception as exc:
        return f"the time-stamp's signature cannot be checked ({type(exc).__name__}: {exc})"
    if not intact or not valid:
        return "the time-stamp's own signature does not verify"
    if gen_time > now + _TOLERANCE:
        return f"the time-stamp's genTime {_iso(gen_time)} lies in the future"
    eku = tsa_cert.extended_key_usage_value
    if eku is None or "time_stamping" not in eku.native:
        return f"the time-stamp's signer {_subject(tsa_cert)} has no EKU timeStamping"
    outcome = await _validate(tsa_cert, carried, trust, gen_time)
    if not outcome.ok:
        return f"the TSA's certificate is not valid at {_iso(gen_time)}: {outcome.error}"
    evidence = (
        Evidence(
            kind="time-stamp",
            description=f"RFC 3161 signature-time-stamp, serial {info['serial_number'].native:x}, "
            f"genTime {_iso(gen_time)}, policy {info['policy'].dotted}, by {_subject(tsa_cert)}",
            sha256=sha256_hex(token.dump()),
            at=gen_time,
        ),
        _cert_evidence(tsa_cert, "time-stamping authority"),
        *(_crl_evidence(c) for c in outcome.crls),
    )
    return _Stamp(gen_time, evidence)


def _not_checked(numbers: Iterable[int], why: str) -> list[StepResult]:
    return [StepResult(n, StepStatus.NOT_CHECKED, f"not checked: {why}") for n in numbers]


@dataclass(frozen=True)
class _Verdict:
    """How the checks of one signature ended: the steps so far and the indication."""

    steps: tuple[StepResult, ...]
    indication: Indication
    sub: SubIndication | None
    notes: tuple[str, ...] = ()


def _stop(
    steps: Sequence[StepResult], first: int, why: str, ind: Indication, sub: SubIndication
) -> _Verdict:
    """A verdict reached at step ``first - 1``: the later steps are listed as not checked."""
    return _Verdict(tuple(steps) + tuple(_not_checked(range(first, 8), why)), ind, sub)


def _identify(
    signed: _Signed, trust: TrustMaterial
) -> tuple[asn1_x509.Certificate | None, _Verdict | StepResult]:
    """Step 1: the signer's certificate, or the verdict that none was found."""
    signer = signed.signer
    try:
        cert = _find_certificate(signer, signed.certificates + trust.intermediates + trust.anchors)
        sid = signer["sid"]
        if sid.name == "issuer_and_serial_number":
            sid_text = (
                f"issuer {describe_name(sid.chosen['issuer'])}, "
                f"serial {sid.chosen['serial_number'].native:x}"
            )
        else:
            sid_text = f"subject key identifier {sid.chosen.native.hex()}"
    except PARSE_ERRORS as exc:
        step = StepResult(1, StepStatus.FAILED, f"the SignerInfo is unreadable ({exc})")
        return None, _stop(
            [step],
            2,
            "the SignerInfo is unreadable",
            Indication.TOTAL_FAILED,
            SubIndication.FORMAT_FAILURE,
        )
    if cert is None:
        step = StepResult(
            1,
            StepStatus.INDETERMINATE,
            f"the signature names {sid_text}; no such certificate is in the signature or among "
            "the certificates given",
        )
        return None, _stop(
            [step],
            2,
            "no signer certificate",
            Indication.INDETERMINATE,
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
        )
    binding = _signing_certificate_binding(signer, cert)
    if binding is not None:
        step = StepResult(
            1, StepStatus.INDETERMINATE, f"{sid_text}: {binding}", (_cert_evidence(cert, "signer"),)
        )
        return cert, _stop(
            [step],
            2,
            "the signer certificate is not the one the signature binds",
            Indication.INDETERMINATE,
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
        )
    return cert, StepResult(
        1,
        StepStatus.PASSED,
        f"the signature names {sid_text}: {_subject(cert)}",
        (_cert_evidence(cert, "signer"),),
    )


@dataclass(frozen=True)
class _Integrity:
    digest_name: str
    signature_value: bytes
    key_algorithm: str
    key_bits: int


def _integrity(
    signed: _Signed, cert: asn1_x509.Certificate, steps: list[StepResult]
) -> _Integrity | _Verdict:
    """Step 2: the signature over the document (pyHanko's ``validate_sig_integrity``)."""
    signer = signed.signer
    try:
        md = signer["digest_algorithm"]["algorithm"].native
        signature_value: bytes = signer["signature"].native
        signature_algorithm = signer["signature_algorithm"].signature_algo
        digest = signed.digest_of(md)
        intact, valid = validate_sig_integrity(signer, cert, signed.content_type, digest)
    except Exception as exc:  # asn1crypto's parse errors and pyHanko's refusals alike
        steps.append(StepResult(2, StepStatus.FAILED, f"the signature cannot be checked: {exc}"))
        return _stop(
            steps,
            3,
            "the signature cannot be checked",
            Indication.TOTAL_FAILED,
            SubIndication.FORMAT_FAILURE,
        )
    seen = (
        Evidence(
            kind="document",
            description=f"{md.upper()} digest of the signed content: {digest.hex()}",
        ),
    )
    if not intact:
        detail = (
            "the document's digest differs from the message-digest the signer signed: the "
            "document is not the one signed, or it was changed"
        )
        steps.append(StepResult(2, StepStatus.FAILED, detail, seen))
        return _stop(
            steps,
            3,
            "the signature is not over this document",
            Indication.TOTAL_FAILED,
            SubIndication.HASH_FAILURE,
        )
    if not valid:
        detail = "the signature value does not verify with the certificate's public key"
        steps.append(StepResult(2, StepStatus.FAILED, detail, seen))
        return _stop(
            steps,
            3,
            "the signature value does not verify",
            Indication.TOTAL_FAILED,
            SubIndication.SIG_CRYPTO_FAILURE,
        )
    key_algorithm, key_bits = _key_strength(cert)
    detail = (
        f"the message-digest matches the document and the {signature_algorithm} signature "
        f"({key_algorithm.upper()} {key_bits} bits, {md.upper()}) verifies with the signer's key"
    )
    steps.append(StepResult(2, StepStatus.PASSED, detail, seen))
    return _Integrity(md, signature_value, key_algorithm, key_bits)


async def _signing_time(
    signed: _Signed,
    signature_value: bytes,
    trust: TrustMaterial,
    now: datetime,
    evidence: Sequence[OperatorEvidence],
    notes: list[str],
) -> tuple[SigningTime, StepResult]:
    """Step 3: the earliest proof of existence; the claimed signingTime is only recorded."""
    signer = signed.signer
    claimed = None
    for value in _attribute(signer, "signing_time"):
        try:
            claimed = value.native
        except PARSE_ERRORS:
            notes.append("the signing-time attribute is unreadable")
    candidates: list[tuple[datetime, TimeProof, tuple[Evidence, ...], str]] = []
    ignored: list[Evidence] = []
    for token in _attribute(signer, "signature_time_stamp_token", signed=False):
        found = await _check_time_stamp(token, signature_value, trust, now)
        if isinstance(found, _Stamp):
            candidates.append(
                (
                    found.gen_time,
                    TimeProof.TIME_STAMP,
                    found.evidence,
                    "a verified signature-time-stamp",
                )
            )
        else:
            ignored.append(Evidence("time-stamp", f"not used: {found}"))
    value_sha256 = sha256_hex(signature_value)
    for record in evidence:
        if record.signature_sha256 == value_sha256:
            record_evidence = (Evidence("operator-record", record.description, at=record.at),)
            candidates.append(
                (record.at, TimeProof.OPERATOR_EVIDENCE, record_evidence, "the operator's record")
            )
    shown: tuple[Evidence, ...] = ()
    if claimed is not None:
        shown = (
            Evidence(
                "attribute", f"signingTime claimed by the signer: {_iso(claimed)}", at=claimed
            ),
        )
        if claimed > now + _TOLERANCE:
            notes.append(f"the claimed signing time {_iso(claimed)} lies in the future")
    if candidates:
        at, proof, used, source = min(candidates, key=lambda c: c[0])
        if claimed is not None and claimed > at + _TOLERANCE:
            notes.append(
                f"the claimed signing time {_iso(claimed)} is after the proof of existence "
                f"{_iso(at)}"
            )
        detail = f"signed no later than {_iso(at)}, proven by {source}"
        return SigningTime(at, proof, claimed), StepResult(
            3, StepStatus.PASSED, detail, used + shown + tuple(ignored)
        )
    detail = (
        "no proof of existence (no usable signature-time-stamp, no operator record): the "
        f"signature is judged as of the validation time {_iso(now)}"
    )
    if claimed is not None:
        detail += f"; the signer claims {_iso(claimed)}, which proves nothing"
    step = StepResult(3, StepStatus.INFORMATIONAL, detail, shown + tuple(ignored))
    return SigningTime(now, TimeProof.VALIDATION_TIME, claimed), step


def _chain_failure(
    error: ValidationError | PathBuildingError, outcome: _PathOutcome
) -> SubIndication:
    if isinstance(error, PathBuildingError) or not outcome.path:
        return SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    if isinstance(error, DisallowedAlgorithmError):
        return SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE
    if "signature" in str(error):
        return SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE
    return SubIndication.CHAIN_CONSTRAINTS_FAILURE


def _out_of_bounds(
    error: ExpiredError | NotYetValidError,
    time: SigningTime,
    has_poe: bool,
    steps: list[StepResult],
    chain_evidence: tuple[Evidence, ...],
) -> _Verdict:
    """Step 6 failed: a certificate of the path was not valid at the signing time."""
    expired = isinstance(error, ExpiredError)
    sub = SubIndication.EXPIRED if expired else SubIndication.NOT_YET_VALID
    status = StepStatus.FAILED if has_poe else StepStatus.INDETERMINATE
    steps.append(StepResult(6, status, f"at {_iso(time.at)}: {error}", chain_evidence))
    steps += _not_checked((7,), "a certificate of the path was not valid at the signing time")
    if has_poe:
        return _Verdict(tuple(steps), Indication.TOTAL_FAILED, sub)
    claimed = time.claimed
    bound = error.expired_dt if isinstance(error, ExpiredError) else error.valid_from
    if claimed is not None and (
        (expired and claimed >= bound) or (not expired and claimed < bound)
    ):
        note = "the signer's own claimed signing time lies outside the certificate's validity too"
        return _Verdict(tuple(steps), Indication.TOTAL_FAILED, sub, (note,))
    return _Verdict(tuple(steps), Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE)


def _revoked(
    error: RevokedError,
    time: SigningTime,
    has_poe: bool,
    steps: list[StepResult],
    evidence: tuple[Evidence, ...],
) -> _Verdict:
    """Step 7 found a revocation (or suspension) dated before the signing time."""
    reason = error.reason.native if error.reason is not None else "unspecified"
    when = error.revocation_dt
    who = "the signer's certificate" if error.is_ee_cert else "a CA certificate of the path"
    word = "suspended (certificateHold)" if reason == "certificate_hold" else f"revoked ({reason})"
    detail = f"{who} was {word} at {_iso(when)}, before the signing time {_iso(time.at)} (§8.3)"
    if has_poe:
        steps.append(StepResult(7, StepStatus.FAILED, detail, evidence))
        return _Verdict(tuple(steps), Indication.TOTAL_FAILED, SubIndication.REVOKED)
    if time.claimed is not None and time.claimed >= when:
        detail += f"; the signer's own claimed time {_iso(time.claimed)} is after it as well"
        steps.append(StepResult(7, StepStatus.FAILED, detail, evidence))
        return _Verdict(tuple(steps), Indication.TOTAL_FAILED, SubIndication.REVOKED)
    detail = (
        f"{who} was {word} at {_iso(when)}, and nothing proves the signature existed before "
        "that (no time-stamp, no operator record)"
    )
    steps.append(StepResult(7, StepStatus.INDETERMINATE, detail, evidence))
    sub = SubIndication.REVOKED_NO_POE if error.is_ee_cert else SubIndication.REVOKED_CA_NO_POE
    return _Verdict(tuple(steps), Indication.INDETERMINATE, sub)


def _path_steps(
    cert: asn1_x509.Certificate,
    outcome: _PathOutcome,
    time: SigningTime,
    now: datetime,
    revocation: tuple[str, tuple[Evidence, ...]],
    steps: list[StepResult],
) -> _Verdict:
    """Steps 4 to 7 from pyhanko-certvalidator's finding at the signing time."""
    has_poe = time.proof in (TimeProof.TIME_STAMP, TimeProof.OPERATOR_EVIDENCE)
    chain = tuple(_subject(c) for c in outcome.path)
    last = len(outcome.path) - 1
    chain_evidence = tuple(
        _cert_evidence(c, "signer" if i == 0 else ("trust anchor" if i == last else "CA"))
        for i, c in enumerate(outcome.path)
    )
    crl_evidence = tuple(_crl_evidence(c) for c in outcome.crls)
    error = outcome.error
    if error is not None and not isinstance(
        error, (ExpiredError, NotYetValidError, RevokedError, InsufficientRevinfoError)
    ):
        sub = _chain_failure(error, outcome)
        detail = (
            "no path from the signer's certificate to any trust anchor given"
            if sub is SubIndication.NO_CERTIFICATE_CHAIN_FOUND
            else f"the path to the trust anchor is not valid: {error}"
        )
        steps.append(StepResult(4, StepStatus.INDETERMINATE, detail, chain_evidence))
        steps.append(_validity_now(cert, now))
        return _stop(steps, 6, "no valid path to a trust anchor", Indication.INDETERMINATE, sub)
    detail = (
        f"a path of {len(outcome.path)} certificates to the trust anchor {chain[-1]}; every "
        "certificate's signature verifies and RFC 5280 path validation (basic constraints, key "
        "usage, name constraints, policies, critical extensions) holds"
    )
    steps.append(StepResult(4, StepStatus.PASSED, detail, chain_evidence))
    steps.append(_validity_now(cert, now))
    if isinstance(error, (ExpiredError, NotYetValidError)):
        return _out_of_bounds(error, time, has_poe, steps, chain_evidence)
    detail = f"every certificate of the path was within its validity at {_iso(time.at)}"
    steps.append(StepResult(6, StepStatus.PASSED, detail, chain_evidence))
    summary, listed = revocation
    if isinstance(error, RevokedError):
        return _revoked(error, time, has_poe, steps, crl_evidence + listed)
    if isinstance(error, InsufficientRevinfoError):
        stale = (
            " (the newest is past its nextUpdate)" if isinstance(error, StaleRevinfoError) else ""
        )
        detail = (
            f"no CRL given covers {_iso(time.at)}{stale}: {error}. Fetch the current CRLs (or the "
            "archive) and verify again"
        )
        steps.append(StepResult(7, StepStatus.INDETERMINATE, detail, crl_evidence))
        return _Verdict(tuple(steps), Indication.INDETERMINATE, SubIndication.TRY_LATER)
    detail = f"not revoked or suspended at {_iso(time.at)} by the CRLs covering that moment"
    if listed:
        detail += f"; {summary} (§8.3: a later revocation does not invalidate it)"
    steps.append(StepResult(7, StepStatus.PASSED, detail, crl_evidence + listed))
    return _Verdict(tuple(steps), Indication.TOTAL_PASSED, None)


async def _verify_signer(
    signed: _Signed,
    trust: TrustMaterial,
    now: datetime,
    evidence: Sequence[OperatorEvidence],
) -> SignatureReport:
    cert, found = _identify(signed, trust)
    time: SigningTime | None = None
    chain: tuple[str, ...] = ()
    revocation: str | None = None
    notes: list[str] = []
    if isinstance(found, _Verdict) or cert is None:
        verdict = (
            found if isinstance(found, _Verdict) else _Verdict((), Indication.INDETERMINATE, None)
        )
    else:
        steps = [found]
        integrity = _integrity(signed, cert, steps)
        if isinstance(integrity, _Verdict):
            verdict = integrity
        else:
            time, step = await _signing_time(
                signed, integrity.signature_value, trust, now, evidence, notes
            )
            steps.append(step)
            outcome = await _validate(cert, signed.certificates, trust, time.at)
            chain = tuple(_subject(c) for c in outcome.path)
            summary = _revocation_summary(cert, outcome.crls, time.at)
            revocation = summary[0]
            verdict = _path_steps(cert, outcome, time, now, summary, steps)
            verdict = _constraints(verdict, cert, integrity, time.at, notes)
    return SignatureReport(
        label=signed.label,
        indication=verdict.indication,
        sub_indication=verdict.sub,
        steps=tuple(sorted(verdict.steps, key=lambda s: s.number)),
        signer_subject=_subject(cert) if cert is not None else None,
        signer_serial=cert.serial_number if cert is not None else None,
        signer_issuer=describe_name(cert.issuer) if cert is not None else None,
        signing_time=time,
        chain=chain,
        revocation=revocation,
        notes=tuple(notes) + verdict.notes,
    )


def _constraints(
    verdict: _Verdict,
    cert: asn1_x509.Certificate,
    integrity: _Integrity,
    at: datetime,
    notes: list[str],
) -> _Verdict:
    """A passing signature also needs algorithms strong at its signing time and a signing key."""
    if verdict.indication is not Indication.TOTAL_PASSED:
        return verdict
    weak = []
    if not digest_acceptable_at(integrity.digest_name, at):
        weak.append(f"the digest {integrity.digest_name.upper()}")
    if not key_acceptable_at(integrity.key_algorithm, integrity.key_bits, at):
        weak.append(f"a {integrity.key_algorithm.upper()} key of {integrity.key_bits} bits")
    if weak:
        notes.append(f"{' and '.join(weak)} was not acceptable for signatures made at {_iso(at)}")
        return replace(
            verdict,
            indication=Indication.INDETERMINATE,
            sub=SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
        )
    usage = cert.key_usage_value
    if usage is not None and not (set(usage.native) & _SIGNER_USAGES):
        notes.append("the signer's certificate allows neither digitalSignature nor nonRepudiation")
        return replace(
            verdict, indication=Indication.INDETERMINATE, sub=SubIndication.SIG_CONSTRAINTS_FAILURE
        )
    return verdict


def _validity_now(cert: asn1_x509.Certificate, now: datetime) -> StepResult:
    validity = cert["tbs_certificate"]["validity"]
    not_before = validity["not_before"].native
    not_after = validity["not_after"].native
    if not_before <= now <= not_after:
        detail = (
            f"the signer's certificate is within its validity now ({_iso(not_before)} to "
            f"{_iso(not_after)})"
        )
    elif now > not_after:
        detail = (
            f"the signer's certificate expired {_iso(not_after)}; signatures made before that "
            "stand (§1.5)"
        )
    else:
        detail = f"the signer's certificate is valid only from {_iso(not_before)}"
    return StepResult(5, StepStatus.INFORMATIONAL, detail)


# --- documents -------------------------------------------------------------------------------


def _aggregate(
    signatures: Sequence[SignatureReport],
    problems: Sequence[str],
) -> tuple[Indication, SubIndication | None]:
    if not signatures:
        return Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
    failed = [s for s in signatures if s.indication is Indication.TOTAL_FAILED]
    if failed:
        return Indication.TOTAL_FAILED, failed[0].sub_indication
    undecided = [s for s in signatures if s.indication is Indication.INDETERMINATE]
    if undecided:
        return Indication.INDETERMINATE, undecided[0].sub_indication
    if problems:
        return Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND
    return Indication.TOTAL_PASSED, None


def _input(role: str, item: NamedBytes) -> InputFile:
    return InputFile(role=role, name=item.name, sha256=sha256_hex(item.data), size=len(item.data))


def _check_size(item: NamedBytes) -> None:
    if len(item.data) > MAX_INPUT_BYTES:
        raise UnreadableInput(f"{item.name}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    if not item.data:
        raise UnreadableInput(f"{item.name}: empty file")


_PEM_CMS = ("CMS", "PKCS7", "PKCS #7 SIGNED DATA")
_SMIME_SIGNATURE = ("application/pkcs7-signature", "application/x-pkcs7-signature")
_SMIME_ENVELOPE = ("application/pkcs7-mime", "application/x-pkcs7-mime")


def _smime(data: bytes) -> tuple[bytes, bytes | None] | None:
    """(CMS DER, the signed MIME part or None) of an S/MIME message, or None if it is not one.

    ``openssl cms -sign`` writes S/MIME by default: multipart/signed (the signed part's bytes,
    exactly as they stand between the boundaries, are the content; RFC 8551 §3.5) or
    application/pkcs7-mime (the content is inside the CMS).
    """
    head = data[:4096].lower()
    if not (head.startswith(b"mime-version:") or head.startswith(b"content-type:")):
        return None
    message = email.message_from_bytes(data)
    kind = message.get_content_type()
    if kind in _SMIME_ENVELOPE:
        payload = message.get_payload(decode=True)
        return (payload, None) if isinstance(payload, bytes) else None
    if kind != "multipart/signed" or not message.get_boundary():
        return None
    delimiter = b"--" + str(message.get_boundary()).encode()
    pieces = data.split(delimiter)
    if len(pieces) < 3:
        return None
    signed_part = pieces[1]
    signed_part = signed_part[2:] if signed_part.startswith(b"\r\n") else signed_part[1:]
    signed_part = signed_part[:-2] if signed_part.endswith(b"\r\n") else signed_part[:-1]
    for part in message.get_payload():
        if isinstance(part, email.message.Message) and part.get_content_type() in _SMIME_SIGNATURE:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload, signed_part
    return None


def _cms_bytes(item: NamedBytes) -> tuple[bytes, bytes | None]:
    """The DER of a signature given as DER, PEM or S/MIME, and the content S/MIME carries."""
    if pem.detect(item.data):
        try:
            kind, _headers, der = pem.unarmor(item.data)
        except PARSE_ERRORS as exc:
            raise UnreadableInput(f"{item.name}: unreadable PEM ({exc})") from exc
        if kind not in _PEM_CMS:
            raise UnreadableInput(f"{item.name}: a PEM {kind!r} block, not a CMS signature")
        return der, None
    found = _smime(item.data)
    return found if found is not None else (item.data, None)


def _load_signed_data(item: NamedBytes) -> cms.SignedData:
    _check_size(item)
    try:
        info = cms.ContentInfo.load(item.data, strict=True)
        if info["content_type"].native != "signed_data":
            raise UnreadableInput(
                f"{item.name}: a CMS {info['content_type'].native}, not a SignedData"
            )
        signed = info["content"]
        _ = len(signed["signer_infos"])
        _ = signed["encap_content_info"]["content_type"].native
    except UnreadableInput:
        raise
    except PARSE_ERRORS as exc:
        raise UnreadableInput(f"{item.name}: not a CMS signature ({exc})") from exc
    return signed


def _carried_certificates(signed: cms.SignedData) -> tuple[asn1_x509.Certificate, ...]:
    try:
        certs = signed["certificates"]
        if isinstance(certs, core.Void):
            return ()
        return tuple(c.chosen for c in certs if c.name == "certificate")
    except PARSE_ERRORS:
        return ()


def _hasher(content: bytes) -> Callable[[str], bytes]:
    def digest_of(name: str) -> bytes:
        try:
            return hashlib.new(
                name.replace("_", "-") if name.startswith("sha3") else name, content
            ).digest()
        except ValueError as exc:
            raise ValueError(f"unknown digest algorithm {name}") from exc

    return digest_of


async def _verify_cms(
    signature: NamedBytes,
    document: NamedBytes | None,
    trust: TrustMaterial,
    now: datetime,
    evidence: Sequence[OperatorEvidence],
    label_prefix: str = "",
) -> tuple[list[SignatureReport], list[str], str | None]:
    signed = _load_signed_data(signature)
    encap = signed["encap_content_info"]
    content_type = encap["content_type"].native
    embedded = encap["content"]
    problems: list[str] = []
    if not isinstance(embedded, core.Void):
        attached = embedded.contents if content_type != "data" else embedded.native
        if document is not None and document.data != attached:
            problems.append(
                f"{signature.name} carries its own content, and {document.name} differs from it: "
                f"the signature is checked over {document.name}"
            )
        content = document.data if document is not None else attached
    elif document is None:
        raise UnreadableInput(f"{signature.name}: a detached signature; give the document it signs")
    else:
        content = document.data
    try:
        infos = list(signed["signer_infos"])
    except PARSE_ERRORS as exc:
        raise UnreadableInput(f"{signature.name}: unreadable SignerInfos ({exc})") from exc
    if len(infos) > MAX_SIGNERS:
        raise UnreadableInput(
            f"{signature.name}: {len(infos)} signers; at most {MAX_SIGNERS} are checked"
        )
    if not infos:
        problems.append(f"{signature.name} holds no signature (no SignerInfo)")
    carried = _carried_certificates(signed)
    reports = []
    for index, info in enumerate(infos, 1):
        label = f"{label_prefix}{signature.name}" + (f" #{index}" if len(infos) > 1 else "")
        signed_item = _Signed(label, info, content_type, _hasher(content), carried)
        reports.append(await _judge(signed_item, trust, now, evidence))
    return reports, problems, sha256_hex(content)


async def _judge(
    signed: _Signed, trust: TrustMaterial, now: datetime, evidence: Sequence[OperatorEvidence]
) -> SignatureReport:
    """:func:`_verify_signer`, or FORMAT_FAILURE for a SignerInfo malformed deep inside.

    asn1crypto parses lazily: a corrupted length inside an attribute surfaces only when that
    attribute is read, wherever that is. Such a signature is not a signature: it fails.
    """
    try:
        return await _verify_signer(signed, trust, now, evidence)
    except PARSE_ERRORS as exc:
        return SignatureReport(
            label=signed.label,
            indication=Indication.TOTAL_FAILED,
            sub_indication=SubIndication.FORMAT_FAILURE,
            steps=(
                StepResult(1, StepStatus.FAILED, f"the SignerInfo is malformed: {exc}"),
                *_not_checked(range(2, 8), "the SignerInfo is malformed"),
            ),
            signer_subject=None,
            signer_serial=None,
            signer_issuer=None,
            signing_time=None,
            chain=(),
            revocation=None,
        )


def _used(trust: TrustMaterial, signatures: Sequence[SignatureReport]) -> tuple[InputFile, ...]:
    """The trust inputs the decision used: every certificate given, and the CRLs a step named.

    An archive holds a CRL for every status change of years; only those covering the moments
    checked decide anything, and those are what the report lists (the steps name them too).
    """
    named = {
        evidence.sha256
        for signature in signatures
        for step in signature.steps
        for evidence in step.evidence
        if evidence.kind == "crl"
    }
    return tuple(f for f in trust.files if f.role != "crl" or f.sha256 in named)


def _document_report(
    signatures: Sequence[SignatureReport],
    problems: Sequence[str],
    document_sha256: str | None,
    inputs: Sequence[InputFile],
    trust: TrustMaterial,
    now: datetime,
) -> DocumentReport:
    indication, sub = _aggregate(signatures, problems)
    return DocumentReport(
        indication=indication,
        sub_indication=sub,
        document_sha256=document_sha256,
        signatures=tuple(signatures),
        inputs=tuple(inputs) + _used(trust, signatures),
        validation_time=now,
        engine=ENGINE,
        problems=tuple(problems),
    )


def verify_signature(
    *,
    signature: NamedBytes,
    document: NamedBytes | None,
    trust: TrustMaterial,
    now: datetime,
    evidence: Sequence[OperatorEvidence] = (),
) -> DocumentReport:
    """Verify a CMS/CAdES signature (detached with ``document``, or attached) as §8 says.

    The signature may be DER, PEM (``-----BEGIN CMS-----``, ``PKCS7``) or S/MIME as ``openssl
    cms -sign`` writes it by default; a multipart/signed message carries its own document.
    """
    if document is not None:
        _check_size(document)
    _check_size(signature)
    der, carried = _cms_bytes(signature)
    if carried is not None and document is None:
        document = NamedBytes(f"{signature.name} (signed MIME part)", carried)
    given = signature
    signature = NamedBytes(signature.name, der)
    reports, problems, digest = _run(_verify_cms(signature, document, trust, now, evidence))
    signature = given
    inputs = [_input("signature", signature)]
    if document is not None:
        inputs.insert(0, _input("document", document))
    return _document_report(reports, problems, digest, inputs, trust, now)


# --- PDF (PAdES) -----------------------------------------------------------------------------


def verify_pdf(pdf: NamedBytes, trust: TrustMaterial, *, now: datetime) -> DocumentReport:
    """Verify every signature embedded in a PDF; pyHanko reads the PDF and the byte ranges."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    _check_size(pdf)
    try:
        reader = PdfFileReader(io.BytesIO(pdf.data), strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, *PARSE_ERRORS) as exc:
        raise UnreadableInput(f"{pdf.name}: not a readable PDF ({exc})") from exc
    if len(embedded) > MAX_SIGNERS:
        raise UnreadableInput(
            f"{pdf.name}: {len(embedded)} signatures; at most {MAX_SIGNERS} are checked"
        )
    problems: list[str] = []
    if not embedded:
        problems.append(f"{pdf.name} holds no signature field with a signature")

    async def run() -> list[SignatureReport]:
        reports = []
        for sig in embedded:
            label = f"{pdf.name}: field {sig.field_name}"
            try:
                sig.compute_integrity_info()
                coverage = sig.coverage
                modified = sig.diff_result
                info = sig.signer_info
                content_type = sig.signed_data["encap_content_info"]["content_type"].native
                carried = _carried_certificates(sig.signed_data)
                sub_filter = sig.sig_object.get("/SubFilter")
            except (PdfError, *PARSE_ERRORS) as exc:
                problems.append(f"{label}: unreadable signature ({exc})")
                continue
            if content_type != "data":
                problems.append(
                    f"{label}: a document time-stamp ({content_type}), not a signature; not judged"
                )
                continue
            report = await _judge(
                _Signed(label, info, content_type, sig.compute_digest, carried), trust, now, ()
            )
            extra = [f"PDF SubFilter {sub_filter}"]
            if coverage == SignatureCoverageLevel.ENTIRE_FILE:
                extra.append("the signature covers the whole file")
            elif coverage == SignatureCoverageLevel.ENTIRE_REVISION:
                extra.append(
                    "the signature covers its revision; later incremental updates: "
                    f"{getattr(modified, 'modification_level', 'not analysed')}"
                )
            else:
                extra.append(
                    f"the byte range does not cover its revision ({coverage}): the file was altered"
                )
                report = replace(
                    report,
                    indication=Indication.TOTAL_FAILED,
                    sub_indication=SubIndication.FORMAT_FAILURE,
                )
            reports.append(replace(report, notes=report.notes + tuple(extra)))
        return reports

    reports = _run(run())
    return _document_report(
        reports, problems, sha256_hex(pdf.data), [_input("pdf", pdf)], trust, now
    )


# --- a filed report's evidence package -------------------------------------------------------


def package_signatures(package: bytes) -> list[bytes]:
    """The ``signatures/*.p7s`` of a report package, to look up the operator's evidence of them."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(package))
        names = [
            info.filename
            for info in archive.infolist()
            if info.filename.startswith("signatures/")
            and info.filename.endswith(".p7s")
            and info.file_size <= MAX_INPUT_BYTES
        ]
        return [archive.read(name) for name in names[:_PACKAGE_MEMBERS]]
    except (zipfile.BadZipFile, *PARSE_ERRORS):
        return []


def verify_package(  # noqa: PLR0915 - reads the package, its evidence and its signatures
    package: NamedBytes,
    trust: TrustMaterial,
    *,
    now: datetime,
    evidence: Sequence[OperatorEvidence] = (),
) -> DocumentReport:
    """Verify the signatures in a filed report's package (``GET /api/v1/reports/<id>/package``).

    The package's own ``ca.pem`` is *not* trusted: it is only offered as intermediates; the trust
    anchors are the caller's. The dispatch confirmation, when it verifies to the same anchors and
    names this document and its signatures, is the operator's evidence that they existed when
    the report left.
    """
    _check_size(package)
    try:
        archive = zipfile.ZipFile(io.BytesIO(package.data))
        names = archive.namelist()
    except (zipfile.BadZipFile, *PARSE_ERRORS) as exc:
        raise UnreadableInput(f"{package.name}: not a ZIP package ({exc})") from exc
    if len(names) > _PACKAGE_MEMBERS:
        raise UnreadableInput(
            f"{package.name}: {len(names)} members; a report's package has a dozen"
        )

    def read(name: str) -> bytes:
        info = archive.getinfo(name)
        if info.file_size > MAX_INPUT_BYTES:
            raise UnreadableInput(
                f"{package.name}: {name} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB"
            )
        try:
            return archive.read(name)
        except (zipfile.BadZipFile, *PARSE_ERRORS) as exc:
            raise UnreadableInput(f"{package.name}: {name} is unreadable ({exc})") from exc

    documents = [n for n in names if n.startswith("document/") and not n.endswith("/")]
    signatures = sorted(n for n in names if n.startswith("signatures/") and n.endswith(".p7s"))
    if len(documents) != 1:
        raise UnreadableInput(
            f"{package.name}: not a report package (it needs exactly one document/ member)"
        )
    document = NamedBytes(f"{package.name}:{documents[0]}", read(documents[0]))
    inputs = [_input("package", package), _input("document", document)]
    extra_certs: list[asn1_x509.Certificate] = []
    if "ca.pem" in names:
        certs, files = read_certificates(
            NamedBytes(f"{package.name}:ca.pem", read("ca.pem")), "intermediate"
        )
        extra_certs += [
            c for c in certs if c.self_signed == "no"
        ]  # the package's root is never trusted
        inputs += [f for c, f in zip(certs, files, strict=True) if c.self_signed == "no"]
    trust = trust.with_certificates(extra_certs)
    problems: list[str] = []
    evidence = list(evidence)
    sig_items = [NamedBytes(f"{package.name}:{n}", read(n)) for n in signatures]
    if "dispatch-confirmation.p7m" in names:
        found = _dispatch_evidence(
            read("dispatch-confirmation.p7m"), document.data, sig_items, trust, now
        )
        if isinstance(found, str):
            problems_note = f"the dispatch confirmation is not used as evidence: {found}"
            evidence_note: tuple[str, ...] = (problems_note,)
        else:
            evidence += found
            evidence_note = ()
        inputs.append(
            _input(
                "dispatch-confirmation",
                NamedBytes(
                    f"{package.name}:dispatch-confirmation.p7m", read("dispatch-confirmation.p7m")
                ),
            )
        )
    else:
        evidence_note = ()

    async def run() -> tuple[list[SignatureReport], str | None]:
        reports: list[SignatureReport] = []
        digest = None
        for item in sig_items:
            found, found_problems, digest = await _verify_cms(item, document, trust, now, evidence)
            problems.extend(found_problems)
            reports += found
        return reports, digest

    if not sig_items:
        problems.append(f"{package.name} holds no signatures/*.p7s")
    reports, _digest = _run(run())
    reports = [replace(r, notes=r.notes + evidence_note) for r in reports]
    inputs += [_input("signature", item) for item in sig_items]
    return _document_report(reports, problems, sha256_hex(document.data), inputs, trust, now)


def _dispatch_evidence(  # noqa: PLR0911 - one return per reason the evidence is not usable
    confirmation: bytes,
    document: bytes,
    signatures: Sequence[NamedBytes],
    trust: TrustMaterial,
    now: datetime,
) -> list[OperatorEvidence] | str:
    """The operator's dispatch confirmation: proof that the signatures existed when it was sent."""
    item = NamedBytes("dispatch-confirmation.p7m", confirmation)
    try:
        signed = _load_signed_data(item)
        statement = json.loads(signed["encap_content_info"]["content"].native)
    except (UnreadableInput, ValueError, TypeError) as exc:
        return f"unreadable ({exc})"
    if not isinstance(statement, dict) or statement.get("type") != "dispatch-confirmation":
        return "not a dispatch confirmation"
    if statement.get("document_sha256") != sha256_hex(document):
        return "it names another document"
    report = _run(_verify_cms(item, None, trust, now, ()))[0]
    if len(report) != 1 or report[0].indication is not Indication.TOTAL_PASSED:
        return "its own signature does not verify to the trust anchors given"
    when = report[0].signing_time
    if when is None or when.proof is not TimeProof.TIME_STAMP:
        return "it carries no verified time-stamp"
    named = statement.get("signatures")
    if not isinstance(named, str) or not named:
        return "it does not name the signatures (made before confirmations listed them)"
    found: list[OperatorEvidence] = []
    listed = {pair.partition(":")[2] for pair in named.split(",")}
    for sig in signatures:
        if sha256_hex(sig.data) not in listed:
            continue
        try:
            infos = _load_signed_data(sig)["signer_infos"]
            for info in infos:
                found.append(
                    OperatorEvidence(
                        signature_sha256=sha256_hex(info["signature"].native),
                        at=when.at,
                        description=f"the operator's dispatch confirmation of report "
                        f"{statement.get('report_id')}, time-stamped {_iso(when.at)}, lists this "
                        "signature file by its SHA-256",
                    )
                )
        except (UnreadableInput, *PARSE_ERRORS):
            continue
    return found


# --- one certificate's path ------------------------------------------------------------------


def verify_chain(
    certificate: NamedBytes, trust: TrustMaterial, *, at: datetime, now: datetime
) -> ChainReport:
    """Is the path of ``certificate`` valid at ``at`` (RFC 5280, revocation from the CRLs given)?"""
    certs, files = read_certificates(certificate, "certificate")
    if len(certs) != 1:
        raise UnreadableInput(f"{certificate.name}: {len(certs)} certificates; give one")
    cert = certs[0]
    outcome: _PathOutcome = _run(_validate(cert, (), trust, at))
    revocation, revocation_evidence = _revocation_summary(cert, outcome.crls, at)
    error = outcome.error
    sub: SubIndication | None
    if error is None:
        detail = f"the path is valid at {_iso(at)}"
        sub = None
    elif isinstance(error, PathBuildingError) or not outcome.path:
        detail, sub = "no path to any trust anchor given", SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    elif isinstance(error, RevokedError):
        detail, sub = str(error), SubIndication.REVOKED
    elif isinstance(error, ExpiredError):
        detail, sub = str(error), SubIndication.EXPIRED
    elif isinstance(error, NotYetValidError):
        detail, sub = str(error), SubIndication.NOT_YET_VALID
    elif isinstance(error, InsufficientRevinfoError):
        detail, sub = f"{error}", SubIndication.TRY_LATER
    elif isinstance(error, PathValidationError) and "signature" in str(error):
        detail, sub = str(error), SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE
    else:
        detail, sub = str(error), SubIndication.CHAIN_CONSTRAINTS_FAILURE
    evidence = (
        tuple(_cert_evidence(c, "path") for c in outcome.path)
        + tuple(_crl_evidence(c) for c in outcome.crls)
        + revocation_evidence
    )
    named = {e.sha256 for e in evidence if e.kind == "crl"}
    return ChainReport(
        valid=error is None,
        at=at,
        subject=_subject(cert),
        serial=cert.serial_number,
        chain=tuple(_subject(c) for c in outcome.path),
        detail=detail,
        sub_indication=sub,
        revocation=revocation,
        inputs=tuple(files) + tuple(f for f in trust.files if f.role != "crl" or f.sha256 in named),
        engine=ENGINE,
        evidence=evidence,
    )

"""The certification practice statement summary served at ``/cps``.

Every subscriber certificate's policy carries a CPS URI qualifier pointing here
(``ca.profiles.build_certificate``). The text is generated from the policies in force, so what
relying parties read is what the CA does: role policy OIDs, validity, key rules, CRL schedule.
"""

from __future__ import annotations

from datetime import timedelta

from policies.cert_profiles import (
    CLOUD_ALLOWED_KEY_SPECS,
    POLICY_ARC,
    RUTOKEN_KEY_POLICY,
    CertRole,
    allowed_companies,
    policy_oid,
    signs_as,
)
from policies.crl import CRL_POLICY

__all__ = ["cps_text"]

_ROLE_NAMES = {
    CertRole.HEAD: "руководитель / head",
    CertRole.ACCOUNTANT: "бухгалтер / accountant",
    CertRole.HEAD_AS_ACCOUNTANT: "руководитель в роли бухгалтера / head acting as accountant",
    CertRole.COMPLEX_5: "комплексный, до 5 компаний / complex, up to 5 companies",
    CertRole.COMPLEX_10: "комплексный, 6-10 компаний / complex, 6 to 10 companies",
    CertRole.COMPLEX_UNLIMITED: "комплексный, без ограничения / complex, unlimited",
}


def _hours(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600} h" if seconds >= 3600 else f"{seconds // 60} min"


def cps_text(public_url: str) -> str:
    """The plain-text statement, UTF-8, for ``GET /cps``."""
    url = public_url.rstrip("/")
    rutoken = RUTOKEN_KEY_POLICY
    lines = [
        "Tamga CA — certification practice statement (summary)",
        "=====================================================",
        "",
        "Hierarchy: national root CA -> the operator's issuing CA -> subscriber certificates.",
        f"Issuer certificates: {url}/ca/root.crt, {url}/ca/issuing.crt",
        f"CRLs: {url}/crl/root.crl, {url}/crl/issuing.crl",
        "",
        "Certificate policies (one per role; the signing service enforces the role, §1.5.3):",
    ]
    for role in CertRole:
        limit = allowed_companies(role)
        companies = "unlimited" if limit is None else str(limit)
        lines.append(
            f"  {policy_oid(role)}  {role.value:<19} {_ROLE_NAMES[role]};"
            f" companies: {companies}; signs reports as: {', '.join(sorted(signs_as(role)))}"
        )
    lines += [
        f"  (arc {POLICY_ARC})",
        "",
        "Subject: CN, surname, given name, title (position), O (company), L (locality), C=KG,",
        "organizationIdentifier NTRKG-<14-digit INN>; the holder's e-mail in subjectAltName.",
        "Key usage: digitalSignature, nonRepudiation (critical); extended key usage:",
        "documentSigning (RFC 9336), emailProtection.",
        "Validity: one calendar year (29 February -> 28 February). Serial: 159 random bits.",
        "",
        "Keys:",
        "  cloud: generated in the operator's HSM, never extractable, usable only by the holder:"
        f" {', '.join(spec.name for spec in CLOUD_ALLOWED_KEY_SPECS)}",
        f"  RuToken: generated on the holder's token; RSA {rutoken.rsa_min_bits}-"
        f"{rutoken.rsa_max_bits} bits, or EC {', '.join(sorted(rutoken.ec_curves))};"
        " a CSR with proof of possession; one key, one holder.",
        "",
        "Revocation: unspecified, keyCompromise (with invalidity date), affiliationChanged,",
        "superseded, cessationOfOperation; suspension is certificateHold and can be lifted.",
        f"CRLs are reissued every {_hours(CRL_POLICY.reissue_every)}, within"
        f" {_hours(CRL_POLICY.after_revocation_within)} after a revocation or suspension,",
        f"and announce their successor {_hours(CRL_POLICY.next_update)} ahead (nextUpdate).",
        "Entries stay on the CRL until the certificate expires.",
        "",
        "Renewal: from 30 days before expiry, by a request signed with the current key (seed 003);",
        "the new certificate takes effect on the old one's expiry day.",
    ]
    return "\n".join(lines) + "\n"

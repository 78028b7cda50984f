"""Subscriber certificate profiles: roles, storage, policy OIDs, prices, keys and validity.

The role is *in the certificate* because §1.5.3 of the contract gives a signature legal force only
when it "was used as the certificate says": each role has its own certificate policy OID under
the operator's arc (table below and in docs/certificate-profiles.md), and the filing layer
refuses a signature in a report role the certificate does not carry (``signs_as``).

| role               | policy OID   | companies | signs as         | tariff (cloud)         |
|--------------------|--------------|-----------|------------------|------------------------|
| head               | <arc>.1.1    | 1         | head             | cert:head              |
| accountant         | <arc>.1.2    | 1         | accountant       | cert:accountant        |
| head_as_accountant | <arc>.1.3    | 1         | head, accountant | cert:head-accountant   |
| complex_5          | <arc>.1.4    | 5         | head, accountant | cert:complex-5         |
| complex_10         | <arc>.1.5    | 10        | head, accountant | cert:complex-10        |
| complex_unlimited  | <arc>.1.6    | unlimited | head, accountant | cert:complex-unlimited |

``<arc>`` is ``POLICY_ARC``. A RuToken-stored certificate costs ``cert:rutoken`` whatever its
role (DOMAIN.md).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from policies.keys import KeySpec

__all__ = [
    "CLOUD_ALLOWED_KEY_SPECS",
    "CLOUD_DEFAULT_KEY_SPEC",
    "EKU_DOCUMENT_SIGNING",
    "EKU_EMAIL_PROTECTION",
    "POLICY_ARC",
    "REPORT_ROLES",
    "RUTOKEN_KEY_POLICY",
    "CertRole",
    "KeyPolicy",
    "KeyRejected",
    "Storage",
    "allowed_companies",
    "cloud_key_spec",
    "policy_oid",
    "role_for_policy_oid",
    "signs_as",
    "tariff_code",
    "validity",
]

# PLACEHOLDER: 99999 is not an IANA Private Enterprise Number assigned to the operator. Before
# issuing a single production certificate the operator must replace it with its own PEN
# (https://www.iana.org/assignments/enterprise-numbers) — an OID, once in certificates, is forever.
# Layout under the arc: .1.<n> = role policies (table above); .2 and up are left free for later
# policies (e.g. storage, time-stamping).
POLICY_ARC = "1.3.6.1.4.1.99999.1"

EKU_DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"  # id-kp-documentSigning, RFC 9336
EKU_EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4"  # id-kp-emailProtection, RFC 5280 §4.2.1.12

REPORT_ROLES = frozenset({"head", "accountant"})  # the two signatures a report needs (DOMAIN.md)

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class CertRole(enum.Enum):
    """What a holder's certificate lets it do; values are the API/CLI spellings."""

    HEAD = "head"
    ACCOUNTANT = "accountant"
    HEAD_AS_ACCOUNTANT = "head_as_accountant"
    COMPLEX_5 = "complex_5"
    COMPLEX_10 = "complex_10"
    COMPLEX_UNLIMITED = "complex_unlimited"


class Storage(enum.Enum):
    """Where the holder's private key lives."""

    CLOUD = "cloud"  # generated and kept in the operator's ``tamga-cloud`` HSM token
    RUTOKEN = "rutoken"  # generated and kept on the holder's RuToken; we get a CSR


@dataclass(frozen=True)
class _RoleRule:
    number: int  # the last arc of the policy OID: never reuse a number for another meaning
    companies: int | None  # None: unlimited
    signs_as: frozenset[str]
    cloud_tariff: str


# Complex certificates are for tax representatives and outsourced accountants who file for the
# companies that gave them a power of attorney (§3.2): filing a report for a taxpayer means
# completing it alone, so they sign in both report roles — like head_as_accountant, but for
# several companies. The filing layer still requires a valid power of attorney for the company.
_BOTH = frozenset({"head", "accountant"})
_ROLES: dict[CertRole, _RoleRule] = {
    CertRole.HEAD: _RoleRule(1, 1, frozenset({"head"}), "cert:head"),
    CertRole.ACCOUNTANT: _RoleRule(2, 1, frozenset({"accountant"}), "cert:accountant"),
    CertRole.HEAD_AS_ACCOUNTANT: _RoleRule(3, 1, _BOTH, "cert:head-accountant"),
    CertRole.COMPLEX_5: _RoleRule(4, 5, _BOTH, "cert:complex-5"),
    CertRole.COMPLEX_10: _RoleRule(5, 10, _BOTH, "cert:complex-10"),
    CertRole.COMPLEX_UNLIMITED: _RoleRule(6, None, _BOTH, "cert:complex-unlimited"),
}
_RUTOKEN_TARIFF = "cert:rutoken"


def policy_oid(role: CertRole, *, arc: str = POLICY_ARC) -> str:
    """The certificate policy OID that says ``role``: ``<arc>.1.<n>``."""
    if not _OID.match(arc):
        raise ValueError(f"not a dotted OID: {arc!r}")
    return f"{arc}.1.{_ROLES[role].number}"


def role_for_policy_oid(oid: str, *, arc: str = POLICY_ARC) -> CertRole:
    """The role a certificate policy OID stands for; ValueError when it is none of ours."""
    for role in CertRole:
        if policy_oid(role, arc=arc) == oid:
            return role
    raise ValueError(f"{oid} is not a Tamga role policy under {arc}")


def allowed_companies(role: CertRole) -> int | None:
    """How many companies one certificate may serve; None means unlimited."""
    return _ROLES[role].companies


def signs_as(role: CertRole) -> frozenset[str]:
    """The report roles ("head", "accountant") a certificate of ``role`` may sign in."""
    return _ROLES[role].signs_as


def tariff_code(role: CertRole, storage: Storage) -> str:
    """The ``policies.tariffs`` code of the price: RuToken has one price whatever the role."""
    if storage is Storage.RUTOKEN:
        return _RUTOKEN_TARIFF
    return _ROLES[role].cloud_tariff


# ---- keys ----------------------------------------------------------------------------------

CLOUD_DEFAULT_KEY_SPEC = KeySpec.parse("ec-p256")
CLOUD_ALLOWED_KEY_SPECS: tuple[KeySpec, ...] = (CLOUD_DEFAULT_KEY_SPEC, KeySpec.parse("rsa-2048"))


def cloud_key_spec(name: str | None = None) -> KeySpec:
    """The key a cloud certificate gets: the default (P-256) or an allowed one by name."""
    if name is None:
        return CLOUD_DEFAULT_KEY_SPEC
    spec = KeySpec.parse(name)
    if spec not in CLOUD_ALLOWED_KEY_SPECS:
        allowed = [s.name for s in CLOUD_ALLOWED_KEY_SPECS]
        raise ValueError(f"cloud keys may be one of {allowed}, not {spec.name}")
    return spec


class KeyRejected(ValueError):
    """A subscriber's public key does not meet the key policy."""


_CURVE_NAMES = {"p-256": "P-256", "secp256r1": "P-256", "prime256v1": "P-256"}
_CURVE_NAMES |= {"p-384": "P-384", "secp384r1": "P-384"}


@dataclass(frozen=True)
class KeyPolicy:
    """Which public keys a CA certifies.

    RSA: modulus between ``rsa_min_bits`` and ``rsa_max_bits``; public exponent odd and
    2^16 < e < 2^256 (FIPS 186-5 §A.1.1 / SP 800-56B range; 65537, what tokens make, is the
    smallest allowed — 3 is refused). EC: named curves in ``ec_curves`` only (no explicit
    parameters, no other curves).
    """

    rsa_min_bits: int
    rsa_max_bits: int
    ec_curves: frozenset[str]

    def __post_init__(self) -> None:
        if not 2048 <= self.rsa_min_bits <= self.rsa_max_bits:
            raise ValueError("RSA bounds must satisfy 2048 <= min <= max")
        if not self.ec_curves <= {"P-256", "P-384"}:
            raise ValueError("only P-256 and P-384 are known curves")

    def check_rsa(self, bits: int, exponent: int) -> None:
        """Raise KeyRejected unless an RSA key of this size and exponent is acceptable."""
        if not self.rsa_min_bits <= bits <= self.rsa_max_bits:
            raise KeyRejected(
                f"RSA keys must have {self.rsa_min_bits} to {self.rsa_max_bits} bits, not {bits}"
            )
        if exponent % 2 == 0 or not 2**16 < exponent < 2**256:
            raise KeyRejected(f"RSA public exponent {exponent} is not odd within (2^16, 2^256)")

    def check_ec(self, curve: str) -> None:
        """Raise KeyRejected unless the named curve (NIST or SEC name) is allowed."""
        name = _CURVE_NAMES.get(curve.lower())
        if name not in self.ec_curves:
            raise KeyRejected(
                f"EC curve {curve} is not allowed; use one of {sorted(self.ec_curves)}"
            )


# RuToken CSRs (issue #4): RSA >= 2048 (4096 is the largest RuToken makes; larger keys only cost
# verification time at every agency), P-256 or P-384.
RUTOKEN_KEY_POLICY = KeyPolicy(
    rsa_min_bits=2048, rsa_max_bits=4096, ec_curves=frozenset({"P-256", "P-384"})
)


# ---- validity ------------------------------------------------------------------------------


def validity(not_before: datetime) -> datetime:
    """notAfter for a certificate starting at ``not_before``: one calendar year later.

    Computed on the UTC date, keeping the UTC time of day: certificates record UTC, and a
    renewal's notBefore equals the old notAfter, so chained renewals stay on one time of day.
    29 February becomes 28 February of the next year (there is no 29th). Seconds precision,
    as in the certificate.
    """
    if not_before.tzinfo is None:
        raise ValueError("not_before must be timezone-aware")
    start = not_before.astimezone(UTC).replace(microsecond=0)
    try:
        return start.replace(year=start.year + 1)
    except ValueError:  # 29 February
        return start.replace(year=start.year + 1, day=28)

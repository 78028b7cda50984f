"""Certificate profile rules (policies/cert_profiles.py): pure data, no database, no HSM."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from policies.cert_profiles import (
    CLOUD_ALLOWED_KEY_SPECS,
    CLOUD_DEFAULT_KEY_SPEC,
    EKU_DOCUMENT_SIGNING,
    EKU_EMAIL_PROTECTION,
    POLICY_ARC,
    REPORT_ROLES,
    RUTOKEN_KEY_POLICY,
    CertRole,
    KeyPolicy,
    KeyRejected,
    Storage,
    allowed_companies,
    cloud_key_spec,
    policy_oid,
    role_for_policy_oid,
    signs_as,
    tariff_code,
    validity,
)
from policies.tariffs import TARIFFS


def test_role_spellings_are_the_api_ones() -> None:
    assert [r.value for r in CertRole] == [
        "head",
        "accountant",
        "head_as_accountant",
        "complex_5",
        "complex_10",
        "complex_unlimited",
    ]
    assert [s.value for s in Storage] == ["cloud", "rutoken"]


def test_policy_oids_are_distinct_and_under_the_arc() -> None:
    oids = [policy_oid(role) for role in CertRole]
    assert len(set(oids)) == len(oids)
    assert oids == [f"{POLICY_ARC}.1.{n}" for n in range(1, 7)]
    for role, oid in zip(CertRole, oids, strict=True):
        assert role_for_policy_oid(oid) is role
    assert policy_oid(CertRole.HEAD, arc="1.3.6.1.4.1.424242") == "1.3.6.1.4.1.424242.1.1"
    with pytest.raises(ValueError, match="not a Tamga role policy"):
        role_for_policy_oid(POLICY_ARC + ".1.7")
    with pytest.raises(ValueError, match="not a dotted OID"):
        policy_oid(CertRole.HEAD, arc="1.3.6.1.4.1.")


def test_eku_oids() -> None:
    assert EKU_DOCUMENT_SIGNING == "1.3.6.1.5.5.7.3.36"
    assert EKU_EMAIL_PROTECTION == "1.3.6.1.5.5.7.3.4"


def test_company_limits() -> None:
    assert [allowed_companies(role) for role in CertRole] == [1, 1, 1, 5, 10, None]


def test_report_roles() -> None:
    assert signs_as(CertRole.HEAD) == {"head"}
    assert signs_as(CertRole.ACCOUNTANT) == {"accountant"}
    for role in CertRole:
        assert signs_as(role) <= REPORT_ROLES and signs_as(role)
    for role in (CertRole.HEAD_AS_ACCOUNTANT, CertRole.COMPLEX_5, CertRole.COMPLEX_UNLIMITED):
        assert signs_as(role) == REPORT_ROLES


def test_tariffs_exist_and_match_domain_prices() -> None:
    prices = {  # DOMAIN.md "Certificates" table, in som
        CertRole.HEAD: 1510,
        CertRole.ACCOUNTANT: 1420,
        CertRole.HEAD_AS_ACCOUNTANT: 1420,
        CertRole.COMPLEX_5: 1800,
        CertRole.COMPLEX_10: 2000,
        CertRole.COMPLEX_UNLIMITED: 2350,
    }
    on = date(2026, 11, 23)
    for role, som in prices.items():
        assert tariff_code(role, Storage.CLOUD) in TARIFFS.codes()
        assert TARIFFS.price(tariff_code(role, Storage.CLOUD), on).price == som * 100
        assert tariff_code(role, Storage.RUTOKEN) == "cert:rutoken"
    assert TARIFFS.price("cert:rutoken", on).price == 1200 * 100


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (
            datetime(2028, 2, 29, 10, 15, 7, tzinfo=UTC),
            datetime(2029, 2, 28, 10, 15, 7, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
            datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC),
        ),
        (datetime(2027, 2, 28, 0, 0, tzinfo=UTC), datetime(2028, 2, 28, 0, 0, tzinfo=UTC)),
        (
            datetime(2026, 11, 23, 9, 30, 0, 999, tzinfo=UTC),
            datetime(2027, 11, 23, 9, 30, tzinfo=UTC),
        ),
    ],
)
def test_validity_is_one_calendar_year(start: datetime, end: datetime) -> None:
    assert validity(start) == end


def test_validity_is_computed_on_the_utc_date() -> None:
    bishkek = timezone(timedelta(hours=6))
    # 29 February 2028 02:00 in Bishkek is still 28 February in UTC: no leap-day rule applies.
    start = datetime(2028, 2, 29, 2, 0, tzinfo=bishkek)
    assert validity(start) == datetime(2029, 2, 28, 20, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        validity(datetime(2028, 2, 29))


def test_cloud_key_specs() -> None:
    assert CLOUD_DEFAULT_KEY_SPEC.name == "ec-p256"
    assert [s.name for s in CLOUD_ALLOWED_KEY_SPECS] == ["ec-p256", "rsa-2048"]
    assert cloud_key_spec() == CLOUD_DEFAULT_KEY_SPEC
    assert cloud_key_spec("RSA-2048").name == "rsa-2048"
    with pytest.raises(ValueError, match="cloud keys may be one of"):
        cloud_key_spec("ec-p384")


def test_rutoken_key_policy() -> None:
    for bits in (2048, 3072, 4096):
        RUTOKEN_KEY_POLICY.check_rsa(bits, 65537)
    RUTOKEN_KEY_POLICY.check_rsa(2048, 2**255 + 1)
    for bits, exponent in [
        (1024, 65537),
        (8192, 65537),
        (2048, 3),
        (2048, 65536),
        (2048, 2**256 + 1),
    ]:
        with pytest.raises(KeyRejected):
            RUTOKEN_KEY_POLICY.check_rsa(bits, exponent)
    for curve in ("P-256", "secp256r1", "prime256v1", "P-384", "secp384r1"):
        RUTOKEN_KEY_POLICY.check_ec(curve)
    for curve in ("secp521r1", "secp256k1", "brainpoolP256r1"):
        with pytest.raises(KeyRejected, match="not allowed"):
            RUTOKEN_KEY_POLICY.check_ec(curve)
    with pytest.raises(ValueError):
        KeyPolicy(rsa_min_bits=1024, rsa_max_bits=4096, ec_curves=frozenset({"P-256"}))
    with pytest.raises(ValueError):
        KeyPolicy(rsa_min_bits=2048, rsa_max_bits=4096, ec_curves=frozenset({"P-521"}))

"""crl.der writes what pyca's CRL builder writes, byte for byte, for the same input."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crl import der

NOW = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)
ISSUER = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Тамга"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tamga Issuing CA"),
    ]
)
_REASONS = [None, *x509.ReasonFlags]


def _pyca_entry(serial: int, at: datetime, reason: x509.ReasonFlags | None,
                invalid: datetime | None) -> x509.RevokedCertificate:  # fmt: skip
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at)
    if reason is not None and reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(reason), critical=False)
    if invalid is not None:
        builder = builder.add_extension(x509.InvalidityDate(invalid), critical=False)
    return builder.build()


def _cases(
    count: int, seed: int
) -> list[tuple[int, datetime, x509.ReasonFlags | None, datetime | None]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    serials = [1, 127, 128, 255, 256, 32767, 32768, (1 << 158) | 5, (1 << 159) - 1]
    cases = []
    for index in range(count):
        serial = (
            serials[index]
            if index < len(serials)
            else rng.getrandbits(rng.choice([8, 64, 159])) | 1
        )
        at = NOW - timedelta(seconds=rng.randrange(10**8), microseconds=rng.randrange(10**6))
        if index % 7 == 3:
            at = datetime(2050 + index % 3, 1, 1, 0, 0, index % 60, tzinfo=UTC)  # GeneralizedTime
        if index % 11 == 5:
            at = datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)  # the last UTCTime second
        reason = _REASONS[index % len(_REASONS)]
        invalid = at - timedelta(days=rng.randrange(30)) if index % 3 == 0 else None
        cases.append((serial, at, reason, invalid))
    return cases


@pytest.mark.parametrize("count", [0, 1, 2, 40, 300])
def test_tbs_is_byte_for_byte_what_pyca_writes(count: int) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    cases = _cases(count, seed=count)
    this_update = NOW.replace(microsecond=0)
    next_update = this_update + timedelta(hours=48)
    number, base = 4242 + count, 4200
    extensions = [
        (x509.CRLNumber(number), False),
        (x509.AuthorityKeyIdentifier(b"\x01" * 20, None, None), False),
        (x509.DeltaCRLIndicator(base), True),
        (
            x509.FreshestCRL(
                [
                    x509.DistributionPoint(
                        [
                            x509.UniformResourceIdentifier(
                                "http://ca.example.kg/crl/issuing-delta.crl"
                            )
                        ],
                        None,
                        None,
                        None,
                    )
                ]
            ),
            False,
        ),
    ]
    builder = (
        x509.CertificateRevocationListBuilder(
            revoked_certificates=[_pyca_entry(*case) for case in cases]
        )
        .issuer_name(ISSUER)
        .last_update(this_update)
        .next_update(next_update)
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    expected = builder.sign(key, hashes.SHA384())

    algorithm = der.algorithm_identifier("ecdsa-sha384")
    ours_extensions = [
        der.extension(
            der.object_identifier(value.oid.dotted_string), value.public_bytes(), critical=critical
        )
        for value, critical in extensions
    ]
    entries = [
        der.revoked_entry(
            serial, at, None if reason is None else der.REASON_CODES[_name(reason)], invalid
        )
        for serial, at, reason, invalid in cases
    ]
    tbs = der.tbs_cert_list(
        algorithm=algorithm,
        issuer=ISSUER.public_bytes(),
        this_update=this_update,
        next_update=next_update,
        entries=entries,
        extensions=ours_extensions,
    )
    assert tbs == expected.tbs_certlist_bytes
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA384()))
    whole = der.certificate_list(tbs, algorithm, signature)
    parsed = x509.load_der_x509_crl(whole)
    assert parsed.is_signature_valid(key.public_key())
    assert parsed.tbs_certlist_bytes == expected.tbs_certlist_bytes
    # and the whole frame around the TBS matches pyca's, apart from the (random) signature
    assert whole[: len(whole) - len(signature)][-len(tbs) - len(algorithm) - 3 :][: len(tbs)] == tbs
    assert expected.public_bytes(serialization.Encoding.DER).find(algorithm, len(tbs)) > 0


def _name(reason: x509.ReasonFlags) -> str:
    return {flag: name for name, flag in _FLAGS.items()}[reason]


_FLAGS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "removeFromCRL": x509.ReasonFlags.remove_from_crl,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


def test_long_lengths_and_sign_bit() -> None:
    assert der._length(0x7F) == b"\x7f"
    assert der._length(0x80) == b"\x81\x80"
    assert der._length(0x1234567) == b"\x84\x01\x23\x45\x67"
    assert der._integer(0x80) == b"\x02\x02\x00\x80"
    assert der._integer(0x7F) == b"\x02\x01\x7f"
    assert der.object_identifier("2.5.29.20") == bytes.fromhex("0603551d14")
    assert der.object_identifier("1.2.840.10045.4.3.3") == bytes.fromhex("06082a8648ce3d040303")
    with pytest.raises(ValueError):
        der.time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "dotted",
    [
        "2.5.29.20",
        "2.5.29.21",
        "1.2.840.10045.4.3.3",
        "1.2.840.113549.1.1.11",
        "1.3.6.1.4.1.2097152.1",
    ],
)
def test_object_identifiers_are_what_asn1crypto_writes(dotted: str) -> None:
    """Arcs of one, two, three and four base-128 digits (113549 and 2097152 need more than two)."""
    from asn1crypto import core

    assert der.object_identifier(dotted) == core.ObjectIdentifier(dotted).dump()


def _pyca_crl(moment: datetime) -> bytes:
    """A CRL by pyca listing one entry revoked at ``moment``."""
    builder = x509.CertificateRevocationListBuilder(
        revoked_certificates=[_pyca_entry(1, moment, None, None)]
    )
    built = (
        builder.issuer_name(ISSUER)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=1))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23 09:30:15",
        "2026-11-23T09:30:15",
        "2026-11-23 09:30:15.123456",
        "2026-11-23 09:30:15+00:00",
    ],
)
def test_database_time_texts_in_every_form_are_read(text: str) -> None:
    """A database's UTC text, with a space or a T, with or without a fraction or an offset of
    zero: all the same second as the datetime."""
    assert der.time(text) == der.time(datetime(2026, 11, 23, 9, 30, 15, tzinfo=UTC))
    assert der.time(text) == b"\x17\x0d261123093015Z"


def test_a_time_with_another_offset_is_written_in_utc() -> None:
    bishkek = timezone(timedelta(hours=6))
    local = datetime(2026, 11, 23, 15, 30, 15, tzinfo=bishkek)
    assert der.time(local) == b"\x17\x0d261123093015Z"
    assert der.time(local) in _pyca_crl(local)  # pyca wrote the same UTC time


@pytest.mark.parametrize(
    "text", ["2026-11-23", "2026/11/23 09:30:15", "2026-11-23_09:30:15", "2026-11-23 09-30-15", ""]
)
def test_a_text_that_is_not_a_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^not a time: "):
        der.time(text)


def test_a_naive_datetime_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"^a CRL time must be timezone-aware$"):
        der.time(datetime(2026, 1, 1))


def test_an_unknown_signature_scheme_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"^no CRL encoding for the signature scheme 'md5-rsa'$"):
        der.algorithm_identifier("md5-rsa")

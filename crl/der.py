"""A small DER encoder for exactly the structures of a CRL (RFC 5280 §5.1), for large lists.

pyca's ``CertificateRevocationListBuilder`` takes about 19 s and several GB for a million
entries (one Python object per entry, then one Rust object, then the DER). A CRL is mostly a
concatenation of small, independent revokedCertificates entries, so this module encodes each
entry straight to its DER bytes and the TBSCertList around them; the caller hashes the TBS,
has the HSM sign the digest and wraps the result (:func:`certificate_list`).

Only what Tamga writes is encoded: v2 CRLs, entries with a positive INTEGER serial, a Time
(UTCTime before 2050, GeneralizedTime from 2050, RFC 5280 §5.1.2.4/§4.1.2.5), and the
reasonCode (§5.3.1; ``None`` writes none: unspecified is written as no extension) and
invalidityDate (§5.3.2, always GeneralizedTime) entry extensions, in that order — what pyca
writes for the same input, byte for byte (tests/unit/crl/test_der.py proves it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

__all__ = [
    "REASON_CODES",
    "algorithm_identifier",
    "certificate_list",
    "entry",
    "extension",
    "invalidity_extension",
    "object_identifier",
    "reason_extension",
    "revoked_entry",
    "tbs_cert_list",
    "time",
    "time_of",
]

# CRLReason ::= ENUMERATED (RFC 5280 §5.3.1), by pyca's ReasonFlags value / our names.
REASON_CODES: dict[str, int] = {
    "unspecified": 0,
    "keyCompromise": 1,
    "cACompromise": 2,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
    "certificateHold": 6,
    "removeFromCRL": 8,
    "privilegeWithdrawn": 9,
    "aACompromise": 10,
}

_SEQUENCE = 0x30
_OID_REASON = bytes.fromhex("0603551d15")  # id-ce-cRLReasons 2.5.29.21
_OID_INVALIDITY = bytes.fromhex("0603551d18")  # id-ce-invalidityDate 2.5.29.24
# The reasonCode extension for each code: SEQUENCE { OID, OCTET STRING { ENUMERATED code } }.
_REASON_EXTENSIONS = {
    code: bytes([_SEQUENCE, 10]) + _OID_REASON + bytes([0x04, 3, 0x0A, 1, code])
    for code in REASON_CODES.values()
}
# sigAlgorithm by signature scheme (RFC 5758 §3.2 for ECDSA: no parameters; RFC 4055 for RSA
# PKCS #1 v1.5: NULL parameters, as pyca writes them).
_ALGORITHMS = {
    "ecdsa-sha256": "300a06082a8648ce3d040302",
    "ecdsa-sha384": "300a06082a8648ce3d040303",
    "ecdsa-sha512": "300a06082a8648ce3d040304",
    "rsa-pkcs1-sha256": "300d06092a864886f70d01010b0500",
    "rsa-pkcs1-sha384": "300d06092a864886f70d01010c0500",
    "rsa-pkcs1-sha512": "300d06092a864886f70d01010d0500",
}
_UTCTIME_ENDS = "2050"  # the first year written as GeneralizedTime (compared as 4 digits)
_OCTET = [bytes((value,)) for value in range(256)]
_SHORT = 0x80  # a length below this is one octet


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    octets = (size.bit_length() + 7) // 8
    return bytes((0x80 | octets,)) + size.to_bytes(octets, "big")


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _integer(value: int) -> bytes:
    """A non-negative INTEGER: big-endian, with a leading zero octet when the top bit is set."""
    content = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return _tlv(0x02, content)


def _text(moment: datetime | str) -> str:
    """``YYYY-MM-DD HH:MM:SS...`` in UTC: a datetime's ISO form (converted to UTC first), or a
    database's UTC text as it is (SQLite: SQLAlchemy stores ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if isinstance(moment, str):
        text = moment
    else:
        offset = moment.utcoffset()
        if offset is None:
            raise ValueError("a CRL time must be timezone-aware")
        if offset:
            moment = moment.astimezone(UTC)
        text = moment.isoformat(" ")
    if len(text) < 19 or text[4] != "-" or text[10] not in " T" or text[16] != ":":
        raise ValueError(f"not a time: {text!r}")
    return text


def _digits(text: str) -> str:
    return text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19] + "Z"


def _generalized(moment: datetime | str) -> bytes:
    text = _text(moment)
    return b"\x18\x0f" + (text[:4] + _digits(text)).encode()


def time(moment: datetime | str) -> bytes:
    """Time (RFC 5280 §5.1.2.4): UTCTime through 2049, GeneralizedTime from 2050; whole
    seconds (a fraction is dropped, as pyca does). A datetime must be timezone-aware; a text
    is a database's UTC time ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (SQLite), cut into the Time's
    digits without parsing it into a datetime first (a million rows)."""
    text = _text(moment)
    if text[:4] >= _UTCTIME_ENDS:
        return b"\x18\x0f" + (text[:4] + _digits(text)).encode()
    return b"\x17\x0d" + (text[2:4] + _digits(text)).encode()


time_of = time  # the name the row readers use: a datetime or a database's text


def reason_extension(code: int | None) -> bytes:
    """The reasonCode entry extension of a CRLReason code; none (b"") for None or unspecified."""
    return _REASON_EXTENSIONS[code] if code else b""


def invalidity_extension(moment: datetime | str) -> bytes:
    """The invalidityDate entry extension (GeneralizedTime, RFC 5280 §5.3.2)."""
    return _tlv(_SEQUENCE, _OID_INVALIDITY + _tlv(0x04, _generalized(moment)))


def entry(serial: int, time_tlv: bytes, extensions: bytes) -> bytes:
    """One revokedCertificates entry from its encoded parts: the fast path of
    :func:`revoked_entry` (``time_tlv`` from :func:`time_of`, ``extensions`` the concatenated
    entry extensions, b"" for none)."""
    size = serial.bit_length() // 8 + 1
    body = b"\x02" + _OCTET[size] + serial.to_bytes(size, "big") + time_tlv
    if extensions:
        body += b"\x30" + _OCTET[len(extensions)] + extensions
    if len(body) >= _SHORT:  # pragma: no cover - 21 + 17 + 38 octets at most: never
        return _tlv(_SEQUENCE, body)
    return b"\x30" + _OCTET[len(body)] + body


def revoked_entry(
    serial: int, revoked_at: datetime, reason: int | None, invalidity_date: datetime | None
) -> bytes:
    """One revokedCertificates entry. ``reason`` is the CRLReason code, None (or 0,
    unspecified) for no reasonCode extension."""
    extensions = reason_extension(reason)
    if invalidity_date is not None:
        extensions += invalidity_extension(invalidity_date)
    return entry(serial, time(revoked_at), extensions)


def object_identifier(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER (``2.5.29.20``) in DER."""
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray((arcs[0] * 40 + arcs[1],))
    for arc in arcs[2:]:
        chunk, rest = [arc & 0x7F], arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def extension(oid_der: bytes, value: bytes, *, critical: bool = False) -> bytes:
    """Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }."""
    flag = b"\x01\x01\xff" if critical else b""
    return _tlv(_SEQUENCE, oid_der + flag + _tlv(0x04, value))


def algorithm_identifier(scheme: str) -> bytes:
    """The AlgorithmIdentifier of a signature scheme (``ecdsa-sha384``...)."""
    try:
        return bytes.fromhex(_ALGORITHMS[scheme])
    except KeyError:
        raise ValueError(f"no CRL encoding for the signature scheme {scheme!r}") from None


def tbs_cert_list(
    *,
    algorithm: bytes,
    issuer: bytes,
    this_update: datetime,
    next_update: datetime,
    entries: Iterable[bytes],
    extensions: Sequence[bytes],
) -> bytes:
    """TBSCertList (v2): ``issuer`` is the issuer Name's DER, ``entries`` the encoded
    revokedCertificates entries in order (none: the field is left out, RFC 5280 §5.1.2.6),
    ``extensions`` the encoded crlExtensions."""
    revoked = b"".join(entries)
    parts = [b"\x02\x01\x01", algorithm, issuer, time(this_update), time(next_update)]
    if revoked:
        parts.append(bytes((_SEQUENCE,)) + _length(len(revoked)))
        parts.append(revoked)
    if extensions:
        parts.append(_tlv(0xA0, _tlv(_SEQUENCE, b"".join(extensions))))
    size = sum(len(part) for part in parts)
    return b"".join([bytes((_SEQUENCE,)), _length(size), *parts])


def certificate_list(tbs: bytes, algorithm: bytes, signature: bytes) -> bytes:
    """CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }."""
    bits = _tlv(0x03, b"\x00" + signature)
    size = len(tbs) + len(algorithm) + len(bits)
    return b"".join([bytes((_SEQUENCE,)), _length(size), tbs, algorithm, bits])

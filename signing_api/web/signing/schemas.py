"""The typed contract of ``/csc/v1`` (CSC API v1.0.4) and ``/api/v1/signatures``.

CSC bodies accept the specification's optional parameters that Tamga does not use (``lang``,
``description``, ``signAlgoParams``, ...) and ignore any other, as a CSC client expects; what
Tamga reads is typed and checked here, and every refusal is a CSC error
``{"error", "error_description"}`` (``csc.py``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from policies.signing import SIGNING_POLICY
from policies.tsa import MAX_NONCE_BITS
from signing_api.web.contract import Body, Text, View

__all__ = [
    "SAD",
    "AuthorizeRequest",
    "CSCError",
    "CSCInfo",
    "CSCInfoRequest",
    "CredentialIDs",
    "CredentialInfo",
    "CredentialInfoRequest",
    "CredentialListRequest",
    "ExtendRequest",
    "SignDocumentRequest",
    "SignHashRequest",
    "SignatureEvidence",
    "Signatures",
    "SignedDocument",
    "Timestamp",
    "TimestampRequest",
]

# A base64 SHA-256/384/512 digest (32, 48 or 64 bytes).
Base64Hash = Annotated[
    str,
    Text(
        pattern=r"^(?:[A-Za-z0-9+/]{43}=|[A-Za-z0-9+/]{64}|[A-Za-z0-9+/]{86}==)$",
        says="a base64 SHA-256, SHA-384 or SHA-512 digest",
    ),
]
Hashes = Annotated[
    list[Base64Hash], Field(min_length=1, max_length=SIGNING_POLICY.max_hashes_per_call)
]
Serial = Annotated[str, Text(pattern="^[0-9A-Fa-f]{1,40}$", says="a credentialID (hex serial)")]
HashOid = Literal["2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3"]


class CSCBody(Body):
    """A CSC request: parameters Tamga does not read are ignored, as the specification allows."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    clientData: str | None = None


class CSCInfoRequest(CSCBody):
    lang: str | None = None


class CredentialListRequest(CSCBody):
    userID: Annotated[str, Text(pattern="^[0-9]{1,18}$", says="the holder id")]
    maxResults: int = Field(100, ge=1, le=1000)
    pageToken: str | None = None


class CredentialInfoRequest(CSCBody):
    credentialID: Serial
    certificates: Literal["none", "single", "chain"] = "single"
    certInfo: bool = False
    authInfo: bool = False
    lang: str | None = None


class AuthorizeRequest(CSCBody):
    credentialID: Serial
    numSignatures: int = Field(ge=1, le=SIGNING_POLICY.max_hashes_per_call)
    hash: Hashes
    PIN: str | None = None
    OTP: str | None = None
    description: str | None = None
    clientData: str = Field(
        description='JSON: {"inn", "role": "head"|"accountant", "userIP", "abroad"}'
    )


class ExtendRequest(CSCBody):
    credentialID: str | None = None
    SAD: str | None = None
    hash: list[str] | None = None


class SignHashRequest(CSCBody):
    credentialID: Serial
    SAD: Annotated[str, Text(pattern="^[A-Za-z0-9_-]{1,100}$", says="the SAD")]
    hash: Hashes
    hashAlgo: HashOid
    signAlgo: str  # checked against the key (csc.scheme_for)
    signAlgoParams: str | None = None


class TimestampRequest(CSCBody):
    hash: Base64Hash
    hashAlgo: HashOid
    size: int | None = None
    nonce: (
        Annotated[
            str,
            Text(
                pattern=f"^[0-9A-Fa-f]{{1,{MAX_NONCE_BITS // 4}}}$",
                says=f"hexadecimal, at most {MAX_NONCE_BITS} bits",
            ),
        ]
        | None
    ) = None


class CSCError(View):
    error: str
    error_description: str


class CSCInfo(View):
    specs: str
    name: str
    logo: str
    region: str
    lang: str
    description: str
    authType: list[str]
    methods: list[str]


class CredentialIDs(View):
    credentialIDs: list[str]


class CredentialInfo(View):
    model_config = ConfigDict(extra="allow")  # the CSC key/cert/PIN/OTP objects, as specified

    key: dict[str, object]
    cert: dict[str, object]
    authMode: Literal["explicit"]
    SCAL: Literal["2"]
    multisign: int
    lang: str


class SAD(View):
    SAD: str
    expiresIn: int


class Signatures(View):
    signatures: list[str]


class Timestamp(View):
    timestamp: str


# --- /api/v1/signatures -------------------------------------------------------------------------


class SignDocumentRequest(Body):
    credentialID: Serial
    SAD: str
    document: str | None = Field(
        None, description="The document, base64, at most 20 MiB (or document_sha256)"
    )
    document_sha256: (
        Annotated[str, Text(pattern="^[0-9a-f]{64}$", says="64 lowercase hex digits")] | None
    ) = Field(None, description="The document's SHA-256, hex (or document)")


class SignatureEvidence(View):
    id: int
    kind: Literal["hash", "cms"]
    serial: str
    inn: str
    role: str
    client_id: int
    end_user_ip: str | None
    sad_id: int
    hash_algorithm: str
    document_hash: str
    signed_at: str
    tst_serial: str | None
    signature: str | None


SignedDocument = SignatureEvidence

"""The cloud-signing domain: holders' activations (PIN, TOTP), SADs, signing, evidence. No Flask.

- ``activation``: a one-time code to the holder's e-mail (``send_code``); with it the holder
  chooses the PIN and receives the TOTP seed (``activate``); PIN + OTP authorise hashes → a SAD.
- ``sad``: consume a SAD once, for exactly what it was authorised for.
- ``signing``: the rules at the moment of use (``ca.usage.may_sign``), the HSM, CAdES-B-T.
- ``evidence``: one row per signature and one journal entry per call.
- ``errors``: :class:`SigningRefused` with a :class:`Refusal` reason; the wire forms (CSC and
  problem+json) are chosen at the edge, in ``signing_api/web/problems.py``.
"""

from signing_api.cloud.activation import (
    Activated,
    Authorized,
    CodeSent,
    activate,
    activation_of,
    authorize,
    check_pin,
    send_code,
)
from signing_api.cloud.errors import Refusal, SigningRefused
from signing_api.cloud.evidence import record_signatures
from signing_api.cloud.models import (
    ActivationCode,
    CloudCredential,
    CloudSignature,
    SignatureActivation,
)
from signing_api.cloud.sad import consume
from signing_api.cloud.signing import (
    HASH_SIZES,
    check_signing_allowed,
    sign_document,
    sign_hashes,
    use_sad,
)

__all__ = [
    "HASH_SIZES",
    "Activated",
    "ActivationCode",
    "Authorized",
    "CloudCredential",
    "CloudSignature",
    "CodeSent",
    "Refusal",
    "SignatureActivation",
    "SigningRefused",
    "activate",
    "activation_of",
    "authorize",
    "check_pin",
    "check_signing_allowed",
    "consume",
    "record_signatures",
    "send_code",
    "sign_document",
    "sign_hashes",
    "use_sad",
]

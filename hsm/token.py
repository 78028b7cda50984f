"""One PKCS#11 token, used safely from threads and forked processes.

Every call into the PKCS#11 library goes through :data:`_LOCK`: python-pkcs11 over SoftHSM2
crashes when two threads call into the library at once. The library is initialised lazily, in
the process that first uses it, and again in a forked child (gunicorn workers): a PKCS#11 library
state must never be shared across ``fork()``. Each process logs in once per token and keeps
that session.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from hsm.errors import (
    HSMError,
    KeyExists,
    KeyNotFound,
    ModuleNotFound,
    TokenNotFound,
    UnsupportedAlgorithm,
    WrongPIN,
)
from hsm.softhsm import is_softhsm
from policies.keys import KeyAlgorithm, KeySpec, SignatureScheme

if TYPE_CHECKING:
    from hsm.signer import TokenSigner

__all__ = ["HSMToken", "KeyInfo", "PublicKey"]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
T = TypeVar("T")

# One lock for the whole process and every token: the library, not the token, is what is not
# thread-safe. Re-entrant so that a helper holding it may call another helper.
_LOCK = threading.RLock()

_CURVE_OIDS = {"P-256": "1.2.840.10045.3.1.7", "P-384": "1.3.132.0.34"}

# DER DigestInfo prefixes (RFC 8017 §9.2 note 1) for RSASSA-PKCS1-v1_5 over CKM_RSA_PKCS.
_DIGEST_INFO_PREFIX = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PSS_PARAMS = {
    "sha256": (Mechanism.SHA256, pkcs11.MGF.SHA256, 32),
    "sha384": (Mechanism.SHA384, pkcs11.MGF.SHA384, 48),
    "sha512": (Mechanism.SHA512, pkcs11.MGF.SHA512, 64),
}
_DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}

# Attributes of every private key Tamga generates: on the token, only usable after login,
# never readable, never exportable, and good for signing only.
_PRIVATE_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.SIGN_RECOVER: False,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
    Attribute.MODIFIABLE: False,
}
_PUBLIC_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
    Attribute.DERIVE: False,
}


@dataclass(frozen=True)
class KeyInfo:
    """A key pair on a token: its label, its CKA_ID and its public half."""

    label: str
    key_id: bytes
    public_key: PublicKey


def _wrap_errors(
    token_label: str, key_label: str | None = None
) -> contextlib.AbstractContextManager[None]:
    @contextlib.contextmanager
    def wrapper() -> Iterator[None]:
        try:
            yield
        except HSMError:
            raise
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange) as ex:
            raise WrongPIN(f"token {token_label!r} refused the PIN") from ex
        except p11e.PinLocked as ex:
            raise WrongPIN(f"token {token_label!r} is locked after too many wrong PINs") from ex
        except (p11e.NoSuchToken, p11e.TokenNotPresent, p11e.TokenNotRecognised) as ex:
            raise TokenNotFound(f"token {token_label!r} is not present") from ex
        except p11e.UserPinNotInitialized as ex:
            raise TokenNotFound(f"token {token_label!r} has no user PIN set") from ex
        except p11e.NoSuchKey as ex:
            raise KeyNotFound(f"no key {key_label!r} on token {token_label!r}") from ex
        except (p11e.MechanismInvalid, p11e.KeyTypeInconsistent) as ex:
            raise UnsupportedAlgorithm(f"token {token_label!r}: {type(ex).__name__}") from ex
        except p11e.PKCS11Error as ex:
            what = f"key {key_label!r} on " if key_label else ""
            raise HSMError(
                f"PKCS#11 error on {what}token {token_label!r}: {type(ex).__name__}"
            ) from ex

    return wrapper()


# (module, token label) -> SHA-256 of the PIN this process logged in with. PKCS#11 login state
# is per application, so a second HSMToken object must not ride on another's login unchecked.
_LOGINS: dict[tuple[str, str], tuple[int, bytes]] = {}


@contextlib.contextmanager
def _softhsm_login_lock(module_path: str) -> Iterator[None]:
    """Serialise opening sessions across the processes of one SoftHSM2 installation.

    SoftHSM2 rewrites its token file on every C_Login; a process that reads the file at that
    moment (gunicorn workers starting together) sees no token, no user PIN or a general error,
    and keeps that view until it re-initialises. Each process opens its session once, so an
    exclusive file lock beside ``SOFTHSM2_CONF`` costs nothing afterwards. Other modules need
    no lock.
    """
    conf = os.environ.get("SOFTHSM2_CONF")
    if not is_softhsm(module_path) or not conf:
        yield
        return
    with open(conf + ".lock", "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


class _Library:
    """The loaded PKCS#11 module for this process (re-initialised after fork)."""

    _by_path: ClassVar[dict[str, tuple[int, Any]]] = {}

    @classmethod
    def get(cls, module_path: str) -> Any:
        pid = os.getpid()
        entry = cls._by_path.get(module_path)
        if entry is not None and entry[0] == pid:
            return entry[1]
        try:
            lib = pkcs11.lib(module_path)
            if entry is not None:
                # Inherited across fork(): the parent's library state is not ours to use.
                lib.reinitialize()
        except p11e.PKCS11Error as ex:
            raise ModuleNotFound(
                f"PKCS#11 module {module_path!r} failed to initialise: {ex!r}"
            ) from ex
        except (OSError, RuntimeError) as ex:
            raise ModuleNotFound(f"cannot load PKCS#11 module {module_path!r}: {ex}") from ex
        cls._by_path[module_path] = (pid, lib)
        return lib


class HSMToken:
    """A token by label, with its user PIN; logs in on first use in each process.

    The PIN is held only in memory and never appears in ``repr``, logs or error messages.
    """

    def __init__(self, module_path: str, label: str, pin: str) -> None:
        self.module_path = module_path
        self.label = label
        self._pin = pin
        self._session: Any = None
        self._session_pid = 0
        # Private-key objects by label, for this process's session: finding a key by label costs
        # a C_FindObjects that SoftHSM2 answers by re-reading its object files (bench/hsm_sign.py).
        self._keys: dict[str, tuple[Any, KeyType]] = {}

    def __repr__(self) -> str:
        return f"HSMToken(label={self.label!r}, module={self.module_path!r})"

    # -- sessions -------------------------------------------------------------------------------

    def _run(self, fn: Callable[[Any], T], key_label: str | None = None) -> T:
        """Call ``fn(session)`` under the process-wide lock, with PKCS#11 errors wrapped."""
        with _LOCK, _wrap_errors(self.label, key_label):
            return fn(self._logged_in_session())

    def _logged_in_session(self) -> Any:
        if self._session is not None and self._session_pid == os.getpid():
            return self._session
        with _softhsm_login_lock(self.module_path):
            return self._open_session()

    def _open_session(self) -> Any:
        lib = _Library.get(self.module_path)
        try:
            token = lib.get_token(token_label=self.label)
        except p11e.MultipleTokensReturned as ex:
            raise TokenNotFound(f"more than one token is labelled {self.label!r}") from ex
        pin_hash = hashlib.sha256(self._pin.encode()).digest()
        key = (self.module_path, self.label)
        logged_in = _LOGINS.get(key)
        if logged_in is not None and logged_in[0] == os.getpid():
            if not secrets.compare_digest(logged_in[1], pin_hash):
                raise WrongPIN(f"token {self.label!r} refused the PIN")
            session = token.open(rw=True)
        else:
            session = token.open(rw=True, user_pin=self._pin)
            _LOGINS[key] = (os.getpid(), pin_hash)
        self._session, self._session_pid = session, os.getpid()
        self._keys = {}
        return session

    def close(self) -> None:
        """Log out and close this process's session (the next call opens a new one)."""
        with _LOCK:
            if self._session is not None and self._session_pid == os.getpid():
                with contextlib.suppress(p11e.PKCS11Error):
                    self._session.close()
            self._session = None
            self._keys = {}

    def ping(self) -> dict[str, str]:
        """Prove the token answers and we are logged in: return what it says of itself."""

        def info(session: Any) -> dict[str, str]:
            session.generate_random(64)  # needs a live session; cheap on every HSM
            token = session.token
            return {
                "label": token.label,
                "manufacturer": token.manufacturer_id,
                "model": token.model,
                "serial": token.serial.decode("ascii", "replace").strip(),
            }

        return self._run(info)

    # -- keys -----------------------------------------------------------------------------------

    def _private(self, session: Any, label: str) -> tuple[Any, KeyType]:
        """The private-key object labelled ``label`` and its key type, cached per session."""
        cached = self._keys.get(label)
        if cached is None:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            cached = self._keys[label] = (key, key[Attribute.KEY_TYPE])
        return cached

    def has_key(self, label: str) -> bool:
        def find(session: Any) -> bool:
            objs = session.get_objects(
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}
            )
            return any(True for _ in objs)

        return self._run(find, label)

    def has_secret(self, label: str) -> bool:
        """Whether a secret key (a TOTP seed) labelled ``label`` is on the token."""

        def find(session: Any) -> bool:
            objs = session.get_objects(
                {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
            )
            return any(True for _ in objs)

        return self._run(find, label)

    def key_labels(self) -> list[str]:
        """Labels of every private key on the token, sorted."""

        def labels(session: Any) -> list[str]:
            objs = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            return sorted(str(o[Attribute.LABEL]) for o in objs)

        return self._run(labels)

    def generate_key(self, label: str, spec: KeySpec) -> KeyInfo:
        """Generate a sign-only, sensitive, never-extractable key pair labelled ``label``."""
        if not label or len(label) > 64:
            raise HSMError("a key label must be 1 to 64 characters")
        key_id = secrets.token_bytes(16)

        def generate(session: Any) -> KeyInfo:
            if any(True for _ in session.get_objects({Attribute.LABEL: label})):
                raise KeyExists(f"a key labelled {label!r} already exists on token {self.label!r}")
            kwargs: dict[str, Any] = {
                "id": key_id,
                "label": label,
                "store": True,
                "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
                "private_template": dict(_PRIVATE_TEMPLATE),
                "public_template": dict(_PUBLIC_TEMPLATE),
            }
            if spec.algorithm is KeyAlgorithm.RSA:
                public, _ = session.generate_keypair(KeyType.RSA, spec.rsa_bits, **kwargs)
            else:
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {
                        Attribute.EC_PARAMS: encode_named_curve_parameters(
                            _CURVE_OIDS[str(spec.curve)]
                        )
                    },
                    local=True,
                )
                public, _ = params.generate_keypair(**kwargs)
            return KeyInfo(label=label, key_id=key_id, public_key=_public_from_object(public))

        return self._run(generate, label)

    def public_key(self, label: str) -> PublicKey:
        def read(session: Any) -> PublicKey:
            return _public_from_object(
                session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
            )

        return self._run(read, label)

    def destroy_key(self, label: str) -> None:
        """Destroy both halves of the key pair labelled ``label``."""

        def destroy(session: Any) -> None:
            objs = list(session.get_objects({Attribute.LABEL: label}))
            if not any(o[Attribute.CLASS] == ObjectClass.PRIVATE_KEY for o in objs):
                raise KeyNotFound(f"no key {label!r} on token {self.label!r}")
            for obj in objs:
                obj.destroy()
            self._keys.pop(label, None)

        self._run(destroy, label)

    # -- signing --------------------------------------------------------------------------------

    def sign(self, label: str, data: bytes, scheme: SignatureScheme) -> bytes:
        """Sign ``data``: hash it here, then sign the digest on the token."""
        digest = hashlib.new(scheme.hash_name, data).digest()
        return self.sign_digest(label, digest, scheme)

    def sign_digest(self, label: str, digest: bytes, scheme: SignatureScheme) -> bytes:
        """Sign a precomputed digest. ECDSA signatures come back DER-encoded (RFC 3279)."""
        if len(digest) != _DIGEST_SIZES[scheme.hash_name]:
            raise HSMError(
                f"a {scheme.hash_name} digest is {_DIGEST_SIZES[scheme.hash_name]} bytes"
            )

        def sign(session: Any) -> bytes:
            try:
                return sign_with(*self._private(session, label))
            except (p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid):
                self._keys.pop(label, None)  # destroyed by another process: look it up again
                return sign_with(*self._private(session, label))

        def sign_with(key: Any, key_type: KeyType) -> bytes:
            wanted = KeyType.EC if scheme.key_algorithm is KeyAlgorithm.EC else KeyType.RSA
            if key_type != wanted:
                raise UnsupportedAlgorithm(f"key {label!r} cannot sign with {scheme.value}")
            if scheme.key_algorithm is KeyAlgorithm.EC:
                # SoftHSM 2.6.1 has no CKM_ECDSA_SHA*: the digest is signed with plain CKM_ECDSA.
                raw = key.sign(digest, mechanism=Mechanism.ECDSA)
                half = len(raw) // 2
                r, s = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                return encode_dss_signature(r, s)
            if scheme.is_pss:
                return bytes(
                    key.sign(
                        digest,
                        mechanism=Mechanism.RSA_PKCS_PSS,
                        mechanism_param=_PSS_PARAMS[scheme.hash_name],
                    )
                )
            prefix = _DIGEST_INFO_PREFIX[scheme.hash_name]
            return bytes(key.sign(prefix + digest, mechanism=Mechanism.RSA_PKCS))

        return self._run(sign, label)

    # -- HMAC secrets (TOTP seeds): imported once, used on the token, never read back ----------

    def import_hmac_secret(self, label: str, secret: bytes) -> None:
        """Store ``secret`` as a sensitive, non-extractable HMAC key labelled ``label``.

        For RFC 6238 one-time codes: the token computes HMAC-SHA1 over the counter, so the seed
        never has to leave it again (the enrolment hands it to the holder once).
        """
        if not label or len(label) > 64:
            raise HSMError("a key label must be 1 to 64 characters")
        if not 16 <= len(secret) <= 64:
            raise HSMError("an HMAC secret is 16 to 64 bytes")

        def create(session: Any) -> None:
            if any(True for _ in session.get_objects({Attribute.LABEL: label})):
                raise KeyExists(f"a key labelled {label!r} already exists on token {self.label!r}")
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                    Attribute.LABEL: label,
                    Attribute.VALUE: secret,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.VERIFY: True,
                    Attribute.ENCRYPT: False,
                    Attribute.DECRYPT: False,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                    Attribute.MODIFIABLE: False,
                }
            )

        self._run(create, label)

    def hmac_sha1(self, label: str, data: bytes) -> bytes:
        """HMAC-SHA1 of ``data`` with the secret ``label`` (CKM_SHA_1_HMAC, on the token)."""

        def compute(session: Any) -> bytes:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
            return bytes(key.sign(data, mechanism=Mechanism.SHA_1_HMAC))

        return self._run(compute, label)

    def destroy_secret(self, label: str) -> None:
        """Destroy the secret key labelled ``label`` (KeyNotFound when there is none)."""

        def destroy(session: Any) -> None:
            objs = list(
                session.get_objects(
                    {Attribute.LABEL: label, Attribute.CLASS: ObjectClass.SECRET_KEY}
                )
            )
            if not objs:
                raise KeyNotFound(f"no secret {label!r} on token {self.label!r}")
            for obj in objs:
                obj.destroy()

        self._run(destroy, label)

    def signer(self, label: str) -> TokenSigner:
        """Key ``label`` alone, for a component that must sign with it and nothing else."""
        from hsm.signer import TokenSigner  # local: signer imports this module

        return TokenSigner(self, label)

    def private_key(self, label: str) -> Any:
        """A pyca/cryptography private key whose ``sign()`` signs on this token."""
        from hsm.adapter import hsm_private_key  # local: adapter imports this module

        return hsm_private_key(self, label, self.public_key(label))


def _public_from_object(obj: Any) -> PublicKey:
    if obj[Attribute.KEY_TYPE] == KeyType.RSA:
        n = int.from_bytes(obj[Attribute.MODULUS], "big")
        e = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if obj[Attribute.KEY_TYPE] == KeyType.EC:
        loaded = serialization.load_der_public_key(encode_ec_public_key(obj))
        if isinstance(loaded, ec.EllipticCurvePublicKey):
            return loaded
    raise UnsupportedAlgorithm(f"unsupported key type {obj[Attribute.KEY_TYPE]!r}")

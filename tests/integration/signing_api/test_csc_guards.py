"""The cloud-signing guarantees of docs/signing.md, each proved through the real interfaces.

Every test here fails when the guard it names is removed from the production code (the
mutation each was checked against is in its docstring). Real database (SQLite and PostgreSQL),
real SoftHSM; the TOTP codes are computed from the ``otpauth://`` URI the holder received.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.hashes import SHA256 as Sha256
from sqlalchemy import Engine, MetaData, event, func, select

import billing
from ca.models import Certificate
from db import AuditEntry
from db.outbox import OutboxMail
from policies.tariffs import Revenue
from signing_api.cloud import CloudCredential, SignatureActivation
from tests.ca_fixtures import CaApi, register
from tests.hsm_fixtures import PKCS11_MODULE, TEST_PINS
from tests.integration.ca.test_issuance import _fields, _paid_first, _problem
from tests.integration.ca.test_renewal import _signed
from tests.integration.signing_api.test_csc import (
    ECDSA_SHA256,
    INN,
    PIN,
    SHA256,
    Holder,
    _authorize,
    _client_data,
    _csc,
    _error,
    _hash,
    _setup,
    _sign,
    _signatures,
    totp,
)

pytestmark = [pytest.mark.hsm, pytest.mark.db]

CHECK_TOKEN_KEYS = Path(__file__).resolve().parents[2] / "check_token_keys.py"


# ---- helpers ------------------------------------------------------------------------------------


def _count(api: CaApi, model: Any, *where: Any) -> int:
    with api.runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _audits(api: CaApi, action: str) -> int:
    """Journal entries of ``action``; a trailing ``.`` counts the whole family."""
    test = (
        AuditEntry.action.startswith(action)
        if action.endswith(".")
        else AuditEntry.action == action
    )
    return _count(api, AuditEntry, test)


def _enrolments(api: CaApi) -> int:
    return _count(api, CloudCredential) + _audits(api, "csc.credential.enrolled")


def _unactivated(api: CaApi) -> tuple[int, str]:
    """A paid holder with a cloud certificate, its activation code mailed: (holder id, serial)."""
    holder = register(api)
    _paid_first(api, holder)
    api.pay(INN, 100_000_00)
    done = api.post(
        "/api/v1/certificates",
        {"holder_id": holder, "role": "head", "storage": "cloud"},
        who="portal",
    )
    assert done.status_code == 201, done.json
    assert "otpauth_uri" not in done.json
    assert done.json["activation"]["purpose"] == "activate", done.json
    return holder, str(done.json["serial"])


def _pin_presence(api: CaApi, serial: str) -> str:
    shown = _csc(api, "credentials/info", {"credentialID": serial})
    assert shown.status_code == 200, shown.json
    return str(shown.json["PIN"]["presence"])


def _activate(
    api: CaApi,
    serial: str,
    pin: object,
    code: str | None = None,
    who: str = "portal",
    holder: int | None = None,
) -> Any:
    """``POST …/activation`` with ``code`` (default: the one in the holder's mailbox)."""
    body = {"activation_code": api.activation_code(serial) if code is None else code, "pin": pin}
    return api.post(f"/api/v1/certificates/{serial}/activation", body, who=who, holder=holder)


def _verify(cert: x509.Certificate, signature_b64: str, digest: bytes) -> None:
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(base64.b64decode(signature_b64), digest, ec.ECDSA(utils.Prehashed(Sha256())))


BAD_PINS: list[tuple[object, str]] = [
    ("12345", "5 characters: too short"),
    ("a" + "b" * 64, "65 characters: too long"),
    ("777777", "one repeated character"),
    ("zzzzzzzzzzzzzzzz", "one repeated character, long"),
    ("", "empty"),
]


def _wrong(code: str) -> str:
    """A well-formed code that is not ``code`` (its last character changed)."""
    return code[:-1] + ("0" if code[-1] != "0" else "1")


# ---- 1. nobody sets a PIN at issuance; the PIN policy at activation -----------------------------


def test_issuance_takes_no_pin_from_anyone(ca_api: CaApi) -> None:
    """Issue #12 finding 2: ``POST /api/v1/certificates`` accepted ``pin`` from an officer.

    The attack: the officer (or a portal) issues a cloud certificate with a PIN it chose and
    receives the TOTP seed. Refused whatever the PIN: nothing issued, charged or enrolled.
    """
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    ca_api.pay(INN, 100_000_00)
    certificates = _count(ca_api, Certificate)
    with ca_api.runtime.transaction() as session:
        balance = billing.balance(session, INN).posted
    for who in ("officer", "portal"):
        for pin in ("518273", "ab" * 32, *(p for p, _ in BAD_PINS)):
            body = {"holder_id": holder, "role": "head", "storage": "cloud", "pin": pin}
            refused = _problem(ca_api.post("/api/v1/certificates", body, who=who), 422,
                               "validation-failed")  # fmt: skip
            assert _fields(refused) == {"pin"}, (who, pin, refused)
            assert "otpauth" not in json.dumps(refused)
    assert _count(ca_api, Certificate) == certificates  # nothing issued
    assert _enrolments(ca_api) == 0  # nothing enrolled
    with ca_api.runtime.transaction() as session:
        assert billing.balance(session, INN).posted == balance  # nothing charged


def test_pin_policy_at_activation_enrols_nothing(ca_api: CaApi) -> None:
    """check_pin through ``POST .../activation``: a bad PIN costs no attempt of the code.

    Mutations caught: the length test removed; the repeated-character test removed.
    """
    holder, serial = _unactivated(ca_api)
    for pin, why in [*BAD_PINS, (123456, "a number, not a string"), (None, "missing")]:
        refused = _problem(_activate(ca_api, serial, pin), 422, "validation-failed")
        assert _fields(refused) == {"pin"}, (why, refused)
        assert "otpauth" not in json.dumps(refused), why
    assert _enrolments(ca_api) == 0
    assert _pin_presence(ca_api, serial) == "false"
    done = _activate(ca_api, serial, "a1b2c3")  # six characters: the lower bound
    assert done.status_code == 201, done.json
    assert _pin_presence(ca_api, serial) == "true"
    # The upper bound, on a second certificate of the same holder.
    other = ca_api.post(
        "/api/v1/certificates", {"holder_id": holder, "role": "head", "storage": "cloud"},
        who="portal",
    )  # fmt: skip
    assert other.status_code == 201, other.json
    assert _activate(ca_api, other.json["serial"], "ab" * 32).status_code == 201


# ---- 2. only the holder activates: the code it alone received -----------------------------------


def test_a_header_or_an_officer_cannot_activate(ca_api: CaApi) -> None:
    """Issue #12 finding 2: "holder-only" activation was the ``X-Tamga-Holder`` header.

    The attacks: an officer, and a portal naming the holder in the header, each without the
    code the holder received (none, a guessed one). Each refused with nothing enrolled; the
    wrong guesses count, and after five the code is void even for the holder, who asks for a
    new one.
    """
    holder, serial = _unactivated(ca_api)
    code = ca_api.activation_code(serial)
    path = f"/api/v1/certificates/{serial}/activation"
    for who, acting in (("officer", None), ("portal", holder)):
        refused = ca_api.post(path, {"pin": "518273"}, who=who, holder=acting)
        assert _fields(_problem(refused, 422, "validation-failed")) == {"activation_code"}
    for attempt in range(5):
        refused = _activate(ca_api, serial, "518273", _wrong(code), who="officer", holder=holder)
        detail = _problem(refused, 422, "validation-failed")["detail"]
        assert ("void" in detail) == (attempt == 4), detail
        assert "otpauth" not in refused.get_data(as_text=True)
    assert _enrolments(ca_api) == 0
    assert _pin_presence(ca_api, serial) == "false"
    assert _audits(ca_api, "csc.activation.refused") == 5  # the codeless two: refused at the edge
    # The right code is now void too.
    late = _problem(_activate(ca_api, serial, "518273", code), 422, "validation-failed")
    assert "no activation code is open" in late["detail"], late
    # A new code goes to the holder's mailbox; the holder, through the portal, activates.
    sent = ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="portal")
    assert sent.status_code == 202 and sent.json["sent_to"] == "h***@test.kg", sent.json
    assert ca_api.activation_code(serial) != code
    assert _activate(ca_api, serial, "518273").status_code == 201
    assert _enrolments(ca_api) == 2  # one credential row, one journal entry


def test_the_code_is_never_shown_to_officers_portals_or_the_database(ca_api: CaApi) -> None:
    """The code exists in clear only in the mail; the outbox erases a delivered body."""
    holder, serial = _unactivated(ca_api)
    code = ca_api.activation_code(serial)
    grouped, bare = code, code.replace("-", "")
    for who in ("portal", "officer"):
        for shown in (
            ca_api.get(f"/api/v1/certificates/{serial}", who=who),
            ca_api.get("/api/v1/certificates", who=who),
            ca_api.get(f"/api/v1/holders/{holder}", who=who),
            ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who=who),
        ):
            assert shown.status_code in (200, 202), shown.json
            text = shown.get_data(as_text=True)
            assert grouped not in text and bare not in text
    # Each of those two sends voided the previous code; the last one is in the mailbox.
    code = ca_api.activation_code(serial)
    needles = (code, code.replace("-", ""))
    tables, found = _rows_containing(ca_api.runtime.engine, needles)
    assert tables > 20 and found == [], found
    with ca_api.runtime.transaction() as session:
        bodies = session.scalars(select(OutboxMail.body)).all()
    assert len(bodies) == 3 and bodies == [None, None, None]  # delivered, bodies erased
    assert _activate(ca_api, serial, "518273").status_code == 201


def test_an_expired_code_is_refused(ca_api: CaApi) -> None:
    """ActivationPolicy.lifetime: 72 hours."""
    _holder, serial = _unactivated(ca_api)
    ca_api.clock.now += timedelta(hours=72)
    refused = _problem(_activate(ca_api, serial, "518273"), 422, "validation-failed")
    assert "expired" in refused["detail"]
    assert _enrolments(ca_api) == 0
    ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="portal")
    ca_api.clock.now += timedelta(hours=71, minutes=59)
    assert _activate(ca_api, serial, "518273").status_code == 201


def test_a_contact_change_voids_codes_and_delays_activation(ca_api: CaApi) -> None:
    """The e-mail is where codes go: changing it is an officer action with documents, the old
    address is told, the codes sent to it are void, and activation waits 24 hours."""
    holder, serial = _unactivated(ca_api)
    old_code = ca_api.activation_code(serial)
    path = f"/api/v1/holders/{holder}"
    no_papers = ca_api.client.patch(
        path, json={"email": "new.head@test.kg"}, headers=ca_api.headers("officer")
    )
    assert _fields(_problem(no_papers, 422, "validation-failed")) == {"document"}
    as_portal = ca_api.client.patch(
        path, json={"email": "new.head@test.kg", "document": "ID card"},
        headers=ca_api.headers("portal"),
    )  # fmt: skip
    assert as_portal.status_code == 403
    changed = ca_api.client.patch(
        path, json={"email": "new.head@test.kg", "document": "заявление №17, паспорт ID1234567"},
        headers=ca_api.headers("officer"),
    )  # fmt: skip
    assert changed.status_code == 200, changed.json
    notice = ca_api.mails("head@test.kg")[-1]
    assert "contact details" in notice and old_code not in notice
    refused = _problem(_activate(ca_api, serial, "518273", old_code), 422, "validation-failed")
    assert "e-mail has changed" in refused["detail"]
    sent = ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="portal")
    assert sent.json["sent_to"] == "n***@test.kg"
    assert ca_api.mails("new.head@test.kg")
    early = _problem(_activate(ca_api, serial, "518273"), 422, "validation-failed")
    assert "activation opens at 2026-11-24T06:00:00Z" in early["detail"], early
    assert _enrolments(ca_api) == 0
    ca_api.clock.now += timedelta(hours=24)
    assert _activate(ca_api, serial, "518273").status_code == 201


# ---- 3. the otpauth URI is shown once; a reset replaces PIN and seed ----------------------------


def test_otpauth_uri_is_shown_once(ca_api: CaApi) -> None:
    """A used code is closed: the same code again is refused, and nothing shows the URI again.

    GET never shows the URI: it is not stored anywhere to be shown.
    """
    holder, serial = _unactivated(ca_api)
    code = ca_api.activation_code(serial)
    first = _activate(ca_api, serial, "918273", code)
    assert first.status_code == 201
    uri = first.json["otpauth_uri"]
    secret = dict(p.split("=", 1) for p in uri.split("?", 1)[1].split("&"))["secret"]
    for pin in ("918273", "564738"):
        again = _activate(ca_api, serial, pin, code)
        refused = _problem(again, 422, "validation-failed")
        assert "no activation code is open" in refused["detail"], refused
        text = again.get_data(as_text=True)
        assert "otpauth" not in text and secret not in text
    assert _count(ca_api, CloudCredential) == 1
    assert _audits(ca_api, "csc.credential.enrolled") == 1
    for who in ("portal", "officer"):
        for shown in (
            ca_api.get(f"/api/v1/certificates/{serial}", who=who),
            ca_api.get("/api/v1/certificates", who=who),
            _csc(ca_api, "credentials/info", {"credentialID": serial, "certInfo": True}),
        ):
            assert shown.status_code == 200
            text = shown.get_data(as_text=True)
            assert "otpauth" not in text and secret not in text
    # The first URI is still the one that works: the seed was not replaced.
    h = _holder_view(ca_api, holder, serial, uri)
    hashes = [_hash(b"once")]
    granted = _authorize(ca_api, h, hashes, PIN="918273")
    assert granted.status_code == 200, granted.json


def test_a_reset_code_destroys_the_old_pin_and_seed(ca_api: CaApi) -> None:
    """Forgotten PIN or lost authenticator: a reset code to the registered e-mail; using it
    destroys the old seed in the token and the old PIN hash, and makes new ones."""
    holder, serial = _unactivated(ca_api)
    old = _holder_view(
        ca_api, holder, serial, _activate(ca_api, serial, "918273").json["otpauth_uri"]
    )
    with ca_api.runtime.transaction() as session:
        old_label = session.scalars(select(CloudCredential.totp_label)).one()
    assert ca_api.runtime.cloud_token.has_secret(old_label)
    sent = ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="officer")
    assert sent.status_code == 202 and sent.json["purpose"] == "reset", sent.json
    assert "(прежние будут уничтожены)" in ca_api.mails("head@test.kg")[-1]
    # Until the code is used, the old PIN and seed still sign.
    hashes = [_hash(b"before reset")]
    assert _authorize(ca_api, old, hashes, PIN="918273").status_code == 200
    ca_api.clock.now += timedelta(minutes=1)
    new_uri = _activate(ca_api, serial, "564738").json["otpauth_uri"]
    assert new_uri != old.uri
    assert not ca_api.runtime.cloud_token.has_secret(old_label)
    assert _count(ca_api, CloudCredential) == 1
    assert _audits(ca_api, "csc.credential.reset") == 1
    ca_api.clock.now += timedelta(minutes=1)
    _error(_authorize(ca_api, old, hashes, PIN="918273"), "invalid_pin")
    new = _holder_view(ca_api, holder, serial, new_uri)
    ca_api.clock.now += timedelta(minutes=1)
    assert _authorize(ca_api, new, hashes, PIN="564738").status_code == 200


def _holder_view(api: CaApi, holder: int, serial: str, uri: str) -> Holder:
    """A test_csc Holder for an existing certificate (no new issuance)."""
    view = Holder.__new__(Holder)
    view.api, view.id, view.serial, view.uri, view.step = api, holder, serial, uri, 0
    pem = api.get(f"/api/v1/certificates/{serial}").json["certificate_pem"]
    view.cert = x509.load_pem_x509_certificate(pem.encode())
    return view


# ---- 4. never a code older than the last accepted -----------------------------------------------


def test_totp_code_older_than_the_last_accepted_is_refused(ca_api: CaApi) -> None:
    """credentials.py:315 ``candidate <= cred.last_totp_step`` → skip.

    Mutation caught: the skip removed (the previous step's code, still inside the ±1 step
    skew, is then accepted after the current one, and the same code twice).
    """
    h = _setup(ca_api)
    hashes = [_hash(b"totp")]
    ca_api.clock.now = ca_api.clock.now.replace(second=10)  # well inside step N

    def attempt(offset: int) -> Any:  # the clock stays where it is (Holder.otp moves it)
        body = {
            "credentialID": h.serial,
            "numSignatures": 1,
            "hash": hashes,
            "PIN": PIN,
            "OTP": totp(h.uri, ca_api.clock.now, offset),
            "clientData": _client_data(),
        }
        return _csc(ca_api, "credentials/authorize", body)

    assert attempt(0).status_code == 200  # step N
    _error(attempt(-1), "invalid_otp")  # step N-1: inside the skew, but older
    _error(attempt(0), "invalid_otp")  # step N again
    assert attempt(+1).status_code == 200  # step N+1: inside the skew and newer
    _error(attempt(0), "invalid_otp")  # step N after N+1
    ca_api.clock.now += timedelta(seconds=30)  # now step N+1: N is the skew's previous step
    _error(attempt(-1), "invalid_otp")
    _error(attempt(0), "invalid_otp")
    assert _count(ca_api, SignatureActivation) == 2
    assert _audits(ca_api, "csc.authorize.granted") == 2
    assert _audits(ca_api, "csc.authorize.refused") == 5
    assert _signatures(ca_api) == 0


# ---- 5. the seed in the HSM ---------------------------------------------------------------------


def _token_objects(kind: str) -> list[dict[str, Any]]:
    """What python-pkcs11 (not Tamga's hsm package) sees on tamga-cloud, in another process."""
    import os

    result = subprocess.run(
        [
            sys.executable,
            str(CHECK_TOKEN_KEYS),
            PKCS11_MODULE,
            "tamga-cloud",
            TEST_PINS["tamga-cloud"],
            kind,
        ],
        env={"SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def test_totp_seed_is_sensitive_and_never_extractable_in_the_hsm(ca_api: CaApi) -> None:
    """hsm/token.py:409 import_hmac_secret: CKA_SENSITIVE true, CKA_EXTRACTABLE false.

    Mutations caught: ``SENSITIVE: False``; ``EXTRACTABLE: True``.
    """
    h = _setup(ca_api)
    with ca_api.runtime.transaction() as session:
        label = session.scalars(select(CloudCredential.totp_label)).one()
    assert label.startswith(f"totp-{h.serial}-"), label
    secrets = {s["label"]: s for s in _token_objects("secret")}
    assert label in secrets, sorted(secrets)
    seed = secrets[label]
    assert seed["sensitive"] and not seed["extractable"], seed
    # CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are false, truthfully: the seed was made
    # outside the token (it is shown to the holder once), and PKCS#11 sets them only for keys
    # generated on it. Not asserted either way.
    assert not seed["value_readable"], seed
    assert seed["token"] and seed["private"] and not seed["modifiable"], seed
    assert seed["sign"], seed
    for usage in ("encrypt", "decrypt", "wrap", "unwrap", "derive"):
        assert not seed[usage], (usage, seed)
    # The holder's signing key beside it is just as locked in.
    with ca_api.runtime.transaction() as session:
        key_label = session.scalars(
            select(Certificate.key_label).where(Certificate.serial == h.serial)
        ).one()
    keys = {k["label"]: k for k in _token_objects("private")}
    key = keys[key_label]
    assert key["sensitive"] and not key["extractable"] and not key["value_readable"], key


# ---- 6. no signing while the service is stopped -------------------------------------------------


@pytest.mark.parametrize("stop", ["zero balance", "terminated", "terminated in billing only"])
def test_signing_refused_while_the_service_is_stopped(ca_api: CaApi, stop: str) -> None:
    """credentials.py:286 ``served.state != "active"`` → refused (checked again at signHash).

    Mutation caught: that check removed ("terminated in billing only": an account terminated
    before a termination revoked the certificates). A termination through the API revokes the
    certificate too (issue #12), which refuses the signature before the service state.
    """
    h = _setup(ca_api)
    hashes = [_hash(b"stopped")]
    sad = _authorize(ca_api, h, hashes).json["SAD"]
    refusal = "stopped"
    if stop == "terminated":
        ended = ca_api.post(f"/api/v1/accounts/{INN}/termination", {"reason": "расторжение"})
        assert ended.status_code == 201, ended.json
        refusal = "revoked"
    elif stop == "terminated in billing only":
        with ca_api.runtime.transaction() as session:
            billing.terminate(
                session, inn=INN, reason="расторжение", now=ca_api.clock.now, actor="test"
            )
    else:
        with ca_api.runtime.transaction() as session:
            left = billing.balance(session, INN).available
            billing.charge(
                session,
                inn=INN,
                amount=left,
                key="test-drain",
                revenue_kind=Revenue.REPORTS,
                description="all of it",
                now=ca_api.clock.now,
                actor="test",
            )
    assert refusal in _error(_sign(ca_api, h, sad, hashes), "invalid_request")
    assert refusal in _error(_authorize(ca_api, h, hashes), "invalid_request")
    assert _signatures(ca_api) == 0
    assert _audits(ca_api, "csc.signature.") == 0
    assert _count(ca_api, SignatureActivation, SignatureActivation.used_at.is_not(None)) == 0
    if stop == "zero balance":  # a top-up restores the service; the refusal used nothing up
        ca_api.pay(INN, 100_00)
        signed = _sign(ca_api, h, sad, hashes)
        assert signed.status_code == 200, signed.json
        assert _signatures(ca_api) == 1


# ---- 7. numSignatures equals the number of hashes -----------------------------------------------


def test_num_signatures_must_equal_the_number_of_hashes(ca_api: CaApi) -> None:
    """csc.py:353 ``count != len(hashes)`` → refused (SCAL 2).

    Mutation caught: the comparison removed (``not isinstance(count, int)`` left).
    """
    h = _setup(ca_api)
    one, two = [_hash(b"1")], [_hash(b"1"), _hash(b"2")]
    for hashes, count in ((one, 2), (two, 1), (one, 0), (two, 3), (one, True), (one, "1")):
        refused = _authorize(ca_api, h, hashes, numSignatures=count)
        assert "numSignatures" in _error(refused, "invalid_request"), (len(hashes), count)
    assert _count(ca_api, SignatureActivation) == 0
    assert _audits(ca_api, "csc.authorize.") == 0
    assert _signatures(ca_api) == 0
    granted = _authorize(ca_api, h, two, numSignatures=2)  # the same request, counted right
    assert granted.status_code == 200, granted.json


# ---- 8. of concurrent uses of one SAD exactly one wins ------------------------------------------


def test_concurrent_uses_of_one_sad_exactly_one_wins(ca_api: CaApi) -> None:
    """credentials.py:452 the conditional ``UPDATE ... WHERE used_at IS NULL`` and its rowcount.

    Eight threads, each with its own Flask test client (and so its own session and
    connection), send the same signHash at once. On PostgreSQL a barrier in the engine's
    ``before_cursor_execute`` holds every request at its UPDATE until all eight have read the
    SAD as unused, so the early ``row.used_at is not None`` check cannot help and only the
    conditional UPDATE decides. SQLite serialises whole transactions (``BEGIN IMMEDIATE``):
    there the early check is what refuses the seven.

    Mutations caught: on PostgreSQL, ``used_at.is_(None)`` and the rowcount check removed
    (eight signatures); on both backends, those and the early ``used_at`` check removed.
    """
    threads = 8
    h = _setup(ca_api)
    hashes = [_hash(b"raced")]
    sad = _authorize(ca_api, h, hashes).json["SAD"]
    app = ca_api.client.application
    engine: Engine = ca_api.runtime.engine
    held = threading.Barrier(threads)

    def hold_at_the_update(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE SIGNATURE_ACTIVATIONS"):
            with contextlib.suppress(threading.BrokenBarrierError):
                held.wait(timeout=20)

    if engine.dialect.name == "postgresql":
        event.listen(engine, "before_cursor_execute", hold_at_the_update)
    start = threading.Barrier(threads)
    answers: list[tuple[int, Any]] = [(0, None)] * threads
    body = {
        "credentialID": h.serial,
        "SAD": sad,
        "hash": hashes,
        "hashAlgo": SHA256,
        "signAlgo": ECDSA_SHA256,
    }

    def use(n: int) -> None:
        client = app.test_client()
        start.wait(timeout=20)
        done = client.post(
            "/csc/v1/signatures/signHash", json=body, headers=ca_api.headers("portal")
        )
        answers[n] = (done.status_code, done.json)

    workers = [threading.Thread(target=use, args=(n,)) for n in range(threads)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
    finally:
        if event.contains(engine, "before_cursor_execute", hold_at_the_update):
            event.remove(engine, "before_cursor_execute", hold_at_the_update)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [400] * (threads - 1), answers
    for status, answer in answers:
        if status == 400:
            assert answer["error"] == "invalid_request", answer
            assert "used already" in answer["error_description"], answer
    assert _signatures(ca_api) == 1
    assert _audits(ca_api, "csc.signature.") == 1
    winner = next(answer for status, answer in answers if status == 200)
    _verify(h.cert, winner["signatures"][0], hashlib.sha256(b"raced").digest())


# ---- 9. extendTransaction is refused ------------------------------------------------------------


def test_extend_transaction_is_refused_and_changes_nothing(ca_api: CaApi) -> None:
    """csc.py credentials_extend: every SAD is single-use.

    Mutation caught: the route answering ``{"SAD": <the same>, "expiresIn": 300}``.
    """
    h = _setup(ca_api)
    hashes = [_hash(b"extend")]
    sad = _authorize(ca_api, h, hashes).json["SAD"]
    with ca_api.runtime.transaction() as session:
        before = [
            (a.id, a.expires_at, a.used_at, a.hashes)
            for a in session.scalars(select(SignatureActivation))
        ]
    journal = _count(ca_api, AuditEntry, AuditEntry.action != "login.failed")
    body = {"credentialID": h.serial, "SAD": sad, "PIN": PIN, "OTP": h.otp()}
    refused = _csc(ca_api, "credentials/extendTransaction", body)
    assert "single-use" in _error(refused, "invalid_request")
    assert "SAD" not in refused.json
    _error(_csc(ca_api, "credentials/extendTransaction", body, who=None), "invalid_token", 401)
    with ca_api.runtime.transaction() as session:
        after = [
            (a.id, a.expires_at, a.used_at, a.hashes)
            for a in session.scalars(select(SignatureActivation))
        ]
    assert after == before  # the 401 is journalled as login.failed, nothing else is
    assert _count(ca_api, AuditEntry, AuditEntry.action != "login.failed") == journal
    ca_api.clock.now += timedelta(minutes=5)  # still at its first expiry: not extended
    assert "expired" in _error(_sign(ca_api, h, sad, hashes), "invalid_request")
    assert _signatures(ca_api) == 0


# ---- 10. a renewal keeps the PIN and the seed ---------------------------------------------------


def test_renewed_certificate_signs_with_the_same_pin_and_seed(ca_api: CaApi) -> None:
    """credentials.py:186 activation_of walks ``renewal_of`` and copies PIN hash and seed label.

    Mutation caught: the walk removed (``return None`` when the certificate has no own row).
    """
    h = _setup(ca_api)
    ca_api.clock.now = datetime(2027, 11, 1, 6, 0, tzinfo=UTC)  # 22 days before expiry
    body = _signed(ca_api, h.serial, h.id)
    done = ca_api.post("/api/v1/renewals", body, who="portal", holder=h.id)
    assert done.status_code == 201 and done.json["status"] == "issued", done.json
    new_serial = done.json["new_serial"]
    assert _count(ca_api, CloudCredential) == 1  # nothing enrolled for it yet
    ca_api.clock.now = datetime(2027, 11, 23, 7, 0, tzinfo=UTC)  # the old one has expired
    assert "expired" in _error(_authorize(ca_api, h, [_hash(b"old")]), "invalid_request")
    renewed = _holder_view(ca_api, h.id, new_serial, h.uri)  # the same otpauth URI
    assert renewed.cert.public_key() != h.cert.public_key()
    assert _pin_presence(ca_api, new_serial) == "true"
    hashes = [_hash(b"after renewal")]
    _error(_authorize(ca_api, renewed, hashes, PIN="000111"), "invalid_pin")
    granted = _authorize(ca_api, renewed, hashes)  # PIN, and a code from the first URI
    assert granted.status_code == 200, granted.json
    signed = _sign(ca_api, renewed, granted.json["SAD"], hashes)
    assert signed.status_code == 200, signed.json
    _verify(renewed.cert, signed.json["signatures"][0], hashlib.sha256(b"after renewal").digest())
    # Nobody sets a second PIN or seed for the renewed certificate without a code.
    again = _problem(_activate(ca_api, new_serial, "564738", "0" * 16), 422, "validation-failed")
    assert "no activation code is open" in again["detail"]


# ---- 11. PINs never reach the logs or the database ----------------------------------------------

RIGHT_PIN = "Tq9-pIN-77zx"
WRONG_PIN = "Wq3-bAD-55yk"
OTHER_PIN = "Mv4-eNR-31qa"


def _rows_containing(engine: Engine, needles: tuple[str, ...]) -> tuple[int, list[str]]:
    """(tables scanned, "table.column" holding any needle) over every table in the database."""
    meta = MetaData()
    meta.reflect(bind=engine)
    found = []
    with engine.connect() as connection:
        for table in meta.sorted_tables:
            for row in connection.execute(select(table)):
                for column, value in row._mapping.items():
                    if value is None:
                        continue
                    if isinstance(value, bytes | bytearray | memoryview):
                        raw = bytes(value)
                    elif isinstance(value, dict | list):
                        raw = json.dumps(value, ensure_ascii=False).encode()
                    else:
                        raw = str(value).encode()
                    found += [f"{table.name}.{column}" for n in needles if n.encode() in raw]
    return len(meta.sorted_tables), found


def test_pins_never_reach_the_logs_or_the_database(
    ca_api: CaApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Every log record at DEBUG (root, sqlalchemy with its SQL, parameters and rows) and every
    column of every table (the audit journal's details included) is searched for the PINs.

    Mutations caught: ``log.info("pin %s", body.get("PIN"))`` in csc.credentials_authorize;
    the PIN put into the audit details of ``csc.authorize.refused`` under an innocent key.
    """
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    caplog.set_level(logging.DEBUG, logger="werkzeug")
    holder, serial = _unactivated(ca_api)
    # A refused activation (a wrong code), then the holder's own.
    code = ca_api.activation_code(serial)
    assert _activate(ca_api, serial, OTHER_PIN, _wrong(code)).status_code == 422
    done = _activate(ca_api, serial, RIGHT_PIN)
    assert done.status_code == 201
    h = _holder_view(ca_api, holder, serial, done.json["otpauth_uri"])
    # A PIN offered at issuance (refused).
    issued = ca_api.post(
        "/api/v1/certificates",
        {"holder_id": holder, "role": "head", "storage": "cloud", "pin": OTHER_PIN},
        who="portal",
    )
    assert issued.status_code == 422, issued.json
    hashes = [_hash(b"logs")]
    _error(_authorize(ca_api, h, hashes, PIN=WRONG_PIN), "invalid_pin")
    granted = _authorize(ca_api, h, hashes, PIN=RIGHT_PIN)
    assert granted.status_code == 200, granted.json
    assert _sign(ca_api, h, granted.json["SAD"], hashes).status_code == 200
    _error(_authorize(ca_api, h, hashes, PIN=WRONG_PIN, OTP="000000"), "invalid_pin")

    needles = (RIGHT_PIN, WRONG_PIN, OTHER_PIN)
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)  # SQL was logged
    for record in caplog.records:
        line = " ".join(
            [record.getMessage(), repr(record.args), record.exc_text or "", str(record.__dict__)]
        )
        for needle in needles:
            assert needle not in line, (record.name, record.getMessage()[:300])
    assert not any(n in caplog.text for n in needles)
    tables, found = _rows_containing(ca_api.runtime.engine, needles)
    assert tables > 20 and found == [], found
    assert _audits(ca_api, "csc.authorize.refused") == 2  # the journal was searched with them


def test_a_code_used_before_a_renewal_is_refused_after_it(ca_api: CaApi) -> None:
    """Each code once, across a renewal: the renewed credential shares the seed.

    The renewed certificate's activation is copied from its predecessor's on first use
    (``activation_of``), here by ``credentials/info`` weeks before the old one expires; a code
    the holder then uses with the old certificate in its last seconds must not open a second
    SAD with the new one in its first seconds.
    """
    h = _setup(ca_api)
    ca_api.clock.now = datetime(2027, 11, 1, 6, 0, tzinfo=UTC)
    body = _signed(ca_api, h.serial, h.id)
    done = ca_api.post("/api/v1/renewals", body, who="portal", holder=h.id)
    assert done.status_code == 201 and done.json["status"] == "issued", done.json
    renewed = _holder_view(ca_api, h.id, done.json["new_serial"], h.uri)
    assert _pin_presence(ca_api, renewed.serial) == "true"  # the copy is made here
    hashes = [_hash(b"boundary")]

    def attempt(who: Holder, code: str) -> Any:
        body = {
            "credentialID": who.serial,
            "numSignatures": 1,
            "hash": hashes,
            "PIN": PIN,
            "OTP": code,
            "clientData": _client_data(),
        }
        return _csc(ca_api, "credentials/authorize", body)

    expiry = datetime(2027, 11, 23, 6, 0, tzinfo=UTC)
    ca_api.clock.now = expiry - timedelta(seconds=10)
    code = totp(h.uri, ca_api.clock.now)
    assert attempt(h, code).status_code == 200  # the old certificate, in its last seconds
    ca_api.clock.now = expiry + timedelta(seconds=5)
    assert "expired" in _error(attempt(h, code), "invalid_request")
    _error(attempt(renewed, code), "invalid_otp")  # the same code, the new certificate
    assert attempt(renewed, totp(h.uri, ca_api.clock.now)).status_code == 200  # a fresh code


def test_a_code_sent_before_a_contact_change_stays_void_when_the_address_comes_back(
    ca_api: CaApi,
) -> None:
    """Found by mutation testing (helper run of the activation area): e-mail A → B → A left a
    code sent to A usable once the delay had passed. A code sent before the last change of
    contact is void, whatever the address is now."""
    holder, serial = _unactivated(ca_api)
    old_code = ca_api.activation_code(serial)
    for email in ("new.head@test.kg", "head@test.kg"):
        changed = ca_api.client.patch(
            f"/api/v1/holders/{holder}", json={"email": email, "document": "заявление №18"},
            headers=ca_api.headers("officer"),
        )  # fmt: skip
        assert changed.status_code == 200, changed.json
    ca_api.clock.now += timedelta(hours=25)
    refused = _problem(_activate(ca_api, serial, "518273", old_code), 422, "validation-failed")
    assert "changed since the code was sent" in refused["detail"], refused
    assert _enrolments(ca_api) == 0
    ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="portal")
    assert _activate(ca_api, serial, "518273").status_code == 201

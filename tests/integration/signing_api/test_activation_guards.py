"""Activation and authorisation guards of docs/signing.md that mutation testing found untested.

Each test names the mutants of ``signing_api/cloud/activation.py`` it kills (``scripts/mutation.py
activation``; checked one by one with ``MUTANT_UNDER_TEST``). Real database (SQLite and
PostgreSQL), real SoftHSM, through the Flask test client; the TOTP codes are computed from the
``otpauth://`` URI the holder received.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from ca.renewal import Issuers, renew_due
from db import AuditEntry
from signing_api.cloud import SignatureActivation
from signing_api.cloud.models import ActivationCode
from tests.ca_fixtures import CA_URL, CaApi
from tests.integration.ca.test_issuance import _csr, _fields, _problem
from tests.integration.signing_api.test_csc import (
    PIN,
    _client_data,
    _csc,
    _error,
    _hash,
    _setup,
    _signatures,
    totp,
)
from tests.integration.signing_api.test_csc_guards import (
    _activate,
    _audits,
    _count,
    _enrolments,
    _unactivated,
    _wrong,
)

pytestmark = [pytest.mark.hsm, pytest.mark.db]


def _authorize_with(api: CaApi, serial: str, otp: object, pin: object = PIN) -> Any:
    body = {
        "credentialID": serial,
        "numSignatures": 1,
        "hash": [_hash(b"malformed otp")],
        "PIN": pin,
        "OTP": otp,
        "clientData": _client_data(),
    }
    return _csc(api, "credentials/authorize", body)


def test_a_malformed_otp_with_the_right_pin_opens_nothing(ca_api: CaApi) -> None:
    """The right PIN and an OTP that is not six ASCII digits: ``invalid_otp``, no SAD.

    Mutants killed: ``_totp_ok`` 6 (a malformed OTP answered ``True``: any six letters, five
    digits or none opened a SAD with the PIN alone) and 2 (non-ASCII digits reached the
    constant-time comparison, which raises on them: a 500).
    """
    h = _setup(ca_api)
    for otp in ("abcdef", "12345", "1234567", "١٢٣٤٥٦"):  # the last: Arabic-Indic digits
        _error(_authorize_with(ca_api, h.serial, otp), "invalid_otp")
    assert _count(ca_api, SignatureActivation) == 0
    assert _audits(ca_api, "csc.authorize.granted") == 0
    assert _audits(ca_api, "csc.authorize.refused") == 4
    # Four wrong attempts: not locked; the right code opens a SAD.
    granted = _authorize_with(ca_api, h.serial, totp(h.uri, ca_api.clock.now))
    assert granted.status_code == 200, granted.json
    assert _signatures(ca_api) == 0


def test_five_wrong_attempts_lock_for_fifteen_minutes_and_the_count_restarts(
    ca_api: CaApi,
) -> None:
    """ "Five wrong PIN or OTP attempts lock the credential for 15 minutes" (docs/signing.md).

    Four wrong attempts do not lock; a right one, and the end of a lock, start the count again;
    the lock ends at exactly 15 minutes. Mutants killed: ``authorize`` 28 (``locked_until >=
    now``: still locked at the 15th minute), 91 (a lock left the count at 1: four wrong attempts
    after it locked again), 146 (a success left the count at 1).
    """
    h = _setup(ca_api)
    clock = ca_api.clock

    def wrong() -> None:
        _error(_authorize_with(ca_api, h.serial, "000000", pin="999999"), "invalid_pin")

    def right() -> Any:
        return _authorize_with(ca_api, h.serial, totp(h.uri, clock.now))

    for _round in range(2):
        for _ in range(4):
            wrong()
        clock.now += timedelta(seconds=30)
        assert right().status_code == 200
    for _ in range(5):
        wrong()
    locked_at = clock.now
    clock.now = locked_at + timedelta(minutes=15, seconds=-1)
    assert "locked" in _error(right(), "invalid_request")
    clock.now = locked_at + timedelta(minutes=15)  # open again: four wrong ones do not lock
    for _ in range(4):
        wrong()
    assert right().status_code == 200
    assert _audits(ca_api, "csc.authorize.granted") == 3
    assert _audits(ca_api, "csc.authorize.refused") == 4 + 4 + 5 + 1 + 4


def _refusal(api: CaApi, serial: str, code: str | None = None) -> tuple[str, set[str]]:
    """An activation refused: its detail and the fields it names."""
    refused = _problem(_activate(api, serial, "518273", code), 422, "validation-failed")
    return str(refused["detail"]), _fields(refused)


def test_every_activation_refusal_is_journalled_with_its_reason_and_names_its_field(
    ca_api: CaApi,
) -> None:
    """ "Every refusal is journalled (``csc.activation.refused`` with its reason)".

    Mutants killed: ``_check_code`` 6, 7, 12, 13, 19, 20, 31, 32, 52, 53 (the reasons) and 8, 9,
    14, 15, 21, 22, 54, 55 (the field a refusal names: the code; during the delay, the request).
    """
    holder, serial = _unactivated(ca_api)
    code = ca_api.activation_code(serial)
    detail, fields = _refusal(ca_api, serial, _wrong(code))
    assert "4 attempts left" in detail and fields == {"activation_code"}
    ca_api.clock.now += timedelta(hours=72)
    detail, fields = _refusal(ca_api, serial)
    assert "expired" in detail and fields == {"activation_code"}
    assert ca_api.post(f"/api/v1/certificates/{serial}/activation-code").status_code == 202
    changed = ca_api.client.patch(
        f"/api/v1/holders/{holder}",
        json={"email": "new.head@test.kg", "document": "заявление №18"},
        headers=ca_api.headers("officer"),
    )
    assert changed.status_code == 200, changed.json
    detail, fields = _refusal(ca_api, serial)
    assert "e-mail has changed" in detail and fields == {"activation_code"}
    assert ca_api.post(f"/api/v1/certificates/{serial}/activation-code").status_code == 202
    detail, fields = _refusal(ca_api, serial)
    assert "activation opens at" in detail and fields == {"request"}  # no one field
    ca_api.clock.now += timedelta(hours=24)
    used = ca_api.activation_code(serial)
    assert _activate(ca_api, serial, "518273", used).status_code == 201
    detail, fields = _refusal(ca_api, serial, used)
    assert "no activation code is open" in detail and fields == {"activation_code"}
    with ca_api.runtime.transaction() as session:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "csc.activation.refused")
            .order_by(AuditEntry.id)
        ).all()
        journal = [(r.object, r.outcome, r.details_dict()) for r in rows]
    reasons = ["wrong_code", "expired", "contact_changed", "contact_change_delay", "no_code"]
    assert journal == [(f"certificate:{serial}", "refused", {"reason": r}) for r in reasons]


def test_a_code_refused_for_a_changed_email_stays_void_when_the_email_changes_back(
    ca_api: CaApi,
) -> None:
    """Codes sent to an e-mail that is no longer the holder's are void: one refused for that
    reason is closed, and does not come back when an officer restores the old address.

    Mutant killed: ``_check_code`` 17 (the refused code left open: after the e-mail changed back
    and the delay passed, it activated).
    """
    holder, serial = _unactivated(ca_api)
    code = ca_api.activation_code(serial)

    def change(email: str) -> None:
        done = ca_api.client.patch(
            f"/api/v1/holders/{holder}",
            json={"email": email, "document": "заявление №19"},
            headers=ca_api.headers("officer"),
        )
        assert done.status_code == 200, done.json

    change("new.head@test.kg")
    detail, _ = _refusal(ca_api, serial, code)
    assert "e-mail has changed" in detail
    change("head@test.kg")
    ca_api.clock.now += timedelta(hours=24)
    detail, _ = _refusal(ca_api, serial, code)
    assert "no activation code is open" in detail
    assert _enrolments(ca_api) == 0


def test_a_text_that_is_no_activation_code_is_named_and_costs_no_attempt(ca_api: CaApi) -> None:
    """docs/signing.md: the code is 16 characters of Crockford base32, dashes, spaces and case
    forgiven. A text the body admits (16–64 letters, digits, dashes, spaces) that is no code —
    a letter outside the alphabet, 17 characters — is 422 naming ``activation_code`` and saying
    what a code is, and costs no attempt: after more than five of them the mailed code, in
    lower case with dashes, still activates.

    Mutants killed: ``activate`` 12 (no refusal kind: a 500), 13 (no message), 14 (no field:
    the refusal named the whole request).
    """
    _holder, serial = _unactivated(ca_api)
    code = ca_api.activation_code(serial).replace("-", "")  # mailed in groups of four
    assert len(code) == 16
    for typed in ("U" + code[1:], code + "0", "UUUU-UUUU-UUUU-UUUU", "I" * 15 + "U") * 2:
        detail, fields = _refusal(ca_api, serial, typed)
        assert fields == {"activation_code"}, (typed, detail)
        assert "16 letters and digits" in detail, detail
    assert _enrolments(ca_api) == 0
    forgiven = " ".join(code[i : i + 4] for i in range(0, 16, 4)).lower()
    done = _activate(ca_api, serial, "518273", forgiven)
    assert done.status_code == 201, done.json
    assert done.json["otpauth_uri"].startswith("otpauth://totp/")


def test_a_refused_activation_is_journalled_with_its_caller_and_the_services_time(
    ca_api: CaApi,
) -> None:
    """docs/signing.md: every activation refusal is journalled; the journal row names the
    client that relayed it and carries the service's time of the attempt (the clock every other
    row of the request uses), not the host's.

    Mutants killed: ``activate`` 52 (``now=None``: the host's clock), 53 (``actor=None``).
    """
    _holder, serial = _unactivated(ca_api)
    ca_api.clock.now += timedelta(minutes=7)
    code = ca_api.activation_code(serial)
    _refusal(ca_api, serial, _wrong(code))
    with ca_api.runtime.transaction() as session:
        row = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "csc.activation.refused")
        ).one()
        assert (row.actor, row.occurred_at) == (
            f"client:{ca_api.client_ids['portal']}",
            ca_api.clock.now,
        )


def test_an_activate_code_cannot_replace_the_pin_of_a_credential_activated_meanwhile(
    ca_api: CaApi,
) -> None:
    """docs/signing.md: a renewal keeps the PIN and seed, and only a *reset* code replaces them.
    A cloud certificate renewed by the daily job before its holder activated it: the holder asks
    a code for each; activating the old one gives the renewal its credential too, so the
    renewal's ``activate`` code must now be refused ("activated already", journalled with its
    reason, caller and time) and the holder's PIN and authenticator keep working.

    Mutants killed: ``activate`` 70 (``purpose == "reset"``: the stale code enrolled a new PIN
    and seed, destroying the activated ones), 73–89 (the refusal's journal row and words).
    """
    _holder, old = _unactivated(ca_api)
    ca_api.clock.now = datetime(2027, 10, 25, 6, 0, tzinfo=UTC)  # the cancellation deadline
    rt = ca_api.runtime
    done = renew_due(rt.transaction, Issuers(rt.ca_token, rt.cloud_token, CA_URL),
                     now=ca_api.clock.now, actor="job")  # fmt: skip
    [new] = [o.new_serial for o in done if o.serial == old]
    assert new is not None
    for serial in (new, old):  # the first code mailed at issuance has expired long ago
        sent = ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="portal")
        assert sent.status_code == 202 and sent.json["purpose"] == "activate", sent.json
    activated = _activate(ca_api, old, PIN)
    assert activated.status_code == 201, activated.json
    uri = activated.json["otpauth_uri"]

    ca_api.clock.now += timedelta(minutes=1)
    refused = _activate(ca_api, new, "135792")
    detail, fields = str(refused.json.get("detail")), _fields(refused.json)
    assert refused.status_code == 422 and "activated already" in detail, refused.json
    assert fields == {"request"}, refused.json
    with ca_api.runtime.transaction() as session:
        row = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "csc.activation.refused")
            .order_by(AuditEntry.id.desc())
        ).first()
        assert row is not None
        assert (row.object, row.actor, row.occurred_at, row.details_dict()) == (
            f"certificate:{new}",
            f"client:{ca_api.client_ids['portal']}",
            ca_api.clock.now,
            {"reason": "activated"},
        )
    # The PIN and the authenticator the holder chose still open the old certificate.
    granted = _authorize_with(ca_api, old, totp(uri, ca_api.clock.now))
    assert granted.status_code == 200, granted.json


def test_the_totp_window_is_one_step_each_way(ca_api: CaApi) -> None:
    """RFC 6238 codes of 30 s with ``skew_steps = 1`` (policies/signing.py: the previous and
    the next code are accepted for clock drift): a code two steps behind or ahead opens
    nothing, on a credential that has accepted no code yet too; one step ahead does.

    Mutant killed: ``_totp_ok`` 27 (the window one step wider ahead: a code a minute ahead
    was accepted).
    """
    h = _setup(ca_api)
    ca_api.clock.now = ca_api.clock.now.replace(second=10)  # well inside step N
    for offset in (-2, +2, -3, +3):
        otp = totp(h.uri, ca_api.clock.now, offset)
        _error(_authorize_with(ca_api, h.serial, otp), "invalid_otp")
    assert _count(ca_api, SignatureActivation) == 0
    granted = _authorize_with(ca_api, h.serial, totp(h.uri, ca_api.clock.now, +1))
    assert granted.status_code == 200, granted.json


def test_a_code_is_sent_only_for_a_live_cloud_certificate(ca_api: CaApi) -> None:
    """docs/signing.md: activation codes are for cloud certificates (a RuToken key has no PIN
    or seed in Tamga) that are valid or suspended; a revoked one gets none. Each refusal is
    422 saying why, and nothing is sent, stored or journalled.

    Mutants killed: ``send_code`` 2–16 (the storage and status checks, their refusal kind and
    words).
    """
    holder, serial = _unactivated(ca_api)
    made = ca_api.post(
        "/api/v1/certificates",
        {"holder_id": holder, "role": "head", "storage": "rutoken",
         "csr_pem": _csr(ec.generate_private_key(ec.SECP256R1()))},
    )  # fmt: skip
    assert made.status_code == 201, made.json
    rutoken = made.json["serial"]
    assert "activation" not in made.json

    def refused(serial: str, words: str) -> None:
        mails, codes = len(ca_api.mails()), _count(ca_api, ActivationCode)
        sent = _audits(ca_api, "csc.activation_code.sent")
        answer = _problem(
            ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="portal"),
            422,
            "validation-failed",
        )
        assert words in answer["detail"], answer
        assert len(ca_api.mails()) == mails and _count(ca_api, ActivationCode) == codes
        assert _audits(ca_api, "csc.activation_code.sent") == sent

    refused(rutoken, "only cloud certificates are activated")
    for action in ("suspend", "resume"):
        done = ca_api.post(f"/api/v1/certificates/{serial}/{action}", {})
        assert done.status_code == 200, done.json
        again = ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="portal")
        assert again.status_code == 202, again.json  # suspended or active: a code
    done = ca_api.post(f"/api/v1/certificates/{serial}/revoke", {"reason": "superseded"})
    assert done.status_code == 200, done.json
    refused(serial, "revoked: nothing to activate")


def test_a_new_code_voids_the_open_one_for_good(ca_api: CaApi) -> None:
    """docs/signing.md: a new code "voids the open one". The first code stays void after the
    second one is used up (five wrong attempts): it is no second chance of five attempts.

    Mutant killed: ``send_code`` 33 (the open code left open: once the new one was void, the old
    one activated).
    """
    _holder, serial = _unactivated(ca_api)
    first = ca_api.activation_code(serial)
    sent = ca_api.post(f"/api/v1/certificates/{serial}/activation-code", who="portal")
    assert sent.status_code == 202, sent.json
    second = ca_api.activation_code(serial)
    assert second != first
    detail, _ = _refusal(ca_api, serial, first)  # the first one is no longer the code
    assert "4 attempts left" in detail, detail
    for _ in range(4):
        detail, _ = _refusal(ca_api, serial, _wrong(second))
    assert "now void" in detail, detail
    detail, fields = _refusal(ca_api, serial, first)
    assert "no activation code is open" in detail and fields == {"activation_code"}
    assert _enrolments(ca_api) == 0

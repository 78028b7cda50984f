"""Delta CRLs (RFC 5280 §5.2.4) on real SoftHSM2 and real databases, checked by openssl and
pkilint: suspend, resume, revoke through the API; after each step ``openssl verify -crl_check
-use_deltas`` with the base CRL the change found and the delta CRL signed in the change's
transaction gives the right answer, both pass ``openssl crl -verify`` and ``lint_crl``; the
delta is served at ``/crl/issuing-delta.crl`` with the base's caching headers and written
beside it; base and delta numbers share one sequence even under concurrent revocations and
fetches on PostgreSQL (the lock order of crl.builder)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from ca.issuance import get_certificate
from ca.models import Certificate
from ca.revocation import Actor, crl_entries, resume, revoke, suspend
from crl import CRLIssue, IssuedCRL, current_crl, refresh_crl, refresh_delta, status_changed
from db import AuditEntry, verify_chain
from hsm import HSMError
from policies.crl import CRL_POLICY
from tests.ca_fixtures import CA_NOW, CA_URL, CaApi, register
from tests.crl_seed import seed_certificates
from tests.integration.ca.test_issuance import _paid_first
from tests.integration.ca.test_revocation import URL, _issue
from tests.pki_tools import _VENV_BIN

pytestmark = [pytest.mark.hsm, pytest.mark.db]


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


class _Files:
    """The chain and leaf certificates as files; CRLs written and checked by outside tools."""

    def __init__(self, api: CaApi, tmp: Path, serials: dict[str, str]) -> None:
        self.api, self.tmp = api, tmp
        self.leaves: dict[str, Path] = {}
        for name, serial in serials.items():
            shown = api.get(f"{URL}/{serial}").json
            issuing, root = x509.load_pem_x509_certificates(shown["chain_pem"].encode())
            self.leaves[name] = tmp / f"{name}.pem"
            self.leaves[name].write_text(shown["certificate_pem"])
        (tmp / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
        (tmp / "issuing.pem").write_bytes(issuing.public_bytes(Encoding.PEM))
        (tmp / "chain.pem").write_bytes(
            issuing.public_bytes(Encoding.PEM) + root.public_bytes(Encoding.PEM)
        )
        self.count = 0

    def crl(self, issued: IssuedCRL) -> Path:
        """Write ``issued`` (PEM); ``openssl crl -verify`` and pkilint must accept it."""
        self.count += 1
        der = self.tmp / f"{issued.kind}-{issued.number}.crl"
        der.write_bytes(issued.der)
        verified = _openssl("crl", "-inform", "DER", "-in", str(der), "-CAfile",
                            str(self.tmp / "chain.pem"), "-noout", "-verify")  # fmt: skip
        assert "verify OK" in verified.stdout + verified.stderr, verified.stderr
        lint = shutil.which("lint_crl") or str(_VENV_BIN / "lint_crl")
        linted = subprocess.run([lint, "lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR", str(der)],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout
        pem = der.with_suffix(".pem")
        pem.write_bytes(issued.load().public_bytes(Encoding.PEM))
        return pem

    def verify(self, leaf: str, *crls: Path, deltas: bool = True) -> str:
        """``openssl verify -crl_check [-use_deltas]``: "OK" or openssl's error text."""
        at = str(int((self.api.clock.now + timedelta(minutes=1)).timestamp()))
        args = ["verify", "-attime", at, "-crl_check"]
        if deltas:
            args.append("-use_deltas")
        for crl in crls:
            args += ["-CRLfile", str(crl)]
        args += ["-CAfile", str(self.tmp / "root.pem"), "-untrusted",
                 str(self.tmp / "issuing.pem"), str(self.leaves[leaf])]  # fmt: skip
        done = _openssl(*args)
        return "OK" if done.returncode == 0 else done.stdout + done.stderr


def _crls(api: CaApi) -> list[IssuedCRL]:
    with api.runtime.transaction() as session:
        rows = session.scalars(
            select(CRLIssue).where(CRLIssue.issuer == "issuing").order_by(CRLIssue.id)
        ).all()
        return [IssuedCRL.from_row(row) for row in rows]


def _delta_of(api: CaApi, base: IssuedCRL) -> IssuedCRL:
    """The newest delta relative to ``base``: the one the status change signed in its
    transaction (the full CRL reissued after the commit gets deltas of its own)."""
    return [c for c in _crls(api) if c.is_delta and c.base_number == base.number][-1]


def _reason(crl: IssuedCRL, serial: str) -> x509.ReasonFlags | None:
    entry = crl.load().get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry is not None, f"{serial} is not on CRL {crl.number}"
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def _current_base(api: CaApi) -> IssuedCRL:
    with api.runtime.transaction() as session:
        base = current_crl(session, "issuing", api.clock.now)
    assert base is not None
    return base


def test_suspend_resume_revoke_with_base_and_delta(ca_api: CaApi, tmp_path: Path) -> None:
    head = register(ca_api)
    accountant = register(ca_api, full_name="Счетова Анна", position="Главный бухгалтер",
                          email="acc@test.kg", passport_series="ID7654321")  # fmt: skip
    _paid_first(ca_api, head)
    a = _issue(ca_api, head)
    ca_api.pay("01234567890123", 100_000_00)
    b = _issue(ca_api, accountant, role="accountant")
    files = _Files(ca_api, tmp_path, {"a": a, "b": b})
    # Subscriber certificates say where the deltas are (freshestCRL, RFC 5280 §4.2.1.15).
    leaf = x509.load_pem_x509_certificate(files.leaves["a"].read_bytes())
    freshest = leaf.extensions.get_extension_for_class(x509.FreshestCRL)
    assert not freshest.critical
    assert freshest.value[0].full_name == [
        x509.UniformResourceIdentifier(f"{CA_URL}/crl/issuing-delta.crl")
    ]

    # The base agencies hold before the changes; its delta (fetched) is empty.
    assert ca_api.client.get("/crl/issuing-delta.crl").status_code == 200
    base = _current_base(ca_api)
    # ... the base itself does not (CRLPolicy.freshest_in_base: the dispute engine's validator
    # would demand a delta beside every base); OpenSSL finds the delta through the certificate.
    assert x509.FreshestCRL.oid not in [e.oid for e in base.load().extensions]
    base_file = files.crl(base)
    assert files.verify("b", base_file) == "OK"

    # 1. suspend b: the delta signed in the change's transaction says certificateHold.
    ca_api.clock.now = CA_NOW + timedelta(hours=1)
    assert ca_api.post(f"{URL}/{b}/suspend", {}).status_code == 200
    delta = _delta_of(ca_api, base)
    indicator = delta.load().extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical and indicator.value.crl_number == base.number < delta.number
    assert _reason(delta, b) is x509.ReasonFlags.certificate_hold
    delta_file = files.crl(delta)
    assert "certificate revoked" in files.verify("b", base_file, delta_file)
    assert files.verify("a", base_file, delta_file) == "OK"
    assert files.verify("b", base_file) == "OK"  # the base alone is stale: the delta matters

    # 2. resume b: the base now lists the hold; the delta lifts it with removeFromCRL.
    base = _current_base(ca_api)
    assert _reason(base, b) is x509.ReasonFlags.certificate_hold
    base_file = files.crl(base)
    assert "certificate revoked" in files.verify("b", base_file)
    ca_api.clock.now = CA_NOW + timedelta(hours=2)
    assert ca_api.post(f"{URL}/{b}/resume", {}).status_code == 200
    delta = _delta_of(ca_api, base)
    assert _reason(delta, b) is x509.ReasonFlags.remove_from_crl
    delta_file = files.crl(delta)
    assert files.verify("b", base_file, delta_file) == "OK"

    # 3. suspend a, then revoke it (keyCompromise): the base lists the hold, the delta the
    # new reason.
    ca_api.clock.now = CA_NOW + timedelta(hours=3)
    assert ca_api.post(f"{URL}/{a}/suspend", {}).status_code == 200
    base = _current_base(ca_api)
    assert _reason(base, a) is x509.ReasonFlags.certificate_hold
    base_file = files.crl(base)
    ca_api.clock.now = CA_NOW + timedelta(hours=4)
    revoked = ca_api.post(f"{URL}/{a}/revoke", {"reason": "keyCompromise"})
    assert revoked.status_code == 200, revoked.json
    delta = _delta_of(ca_api, base)
    assert _reason(delta, a) is x509.ReasonFlags.key_compromise
    delta_file = files.crl(delta)
    assert "certificate revoked" in files.verify("a", base_file, delta_file)
    assert files.verify("b", base_file, delta_file) == "OK"

    # The newest base and delta, as fetched over HTTP, say the same.
    fetched_base = ca_api.client.get("/crl/issuing.crl")
    fetched_delta = ca_api.client.get("/crl/issuing-delta.crl")
    assert fetched_delta.status_code == 200
    assert fetched_delta.mimetype == "application/pkix-crl"
    for response in (fetched_base, fetched_delta):
        assert response.headers["ETag"] and response.headers["Last-Modified"]
        assert response.headers["Expires"] and "max-age=" in response.headers["Cache-Control"]
    again = ca_api.client.get(
        "/crl/issuing-delta.crl", headers={"If-None-Match": fetched_delta.headers["ETag"]}
    )
    assert again.status_code == 304
    newest = x509.load_der_x509_crl(fetched_delta.data)
    base_number = x509.load_der_x509_crl(fetched_base.data).extensions.get_extension_for_class(
        x509.CRLNumber
    )
    assert (
        newest.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number
        == base_number.value.crl_number
    )
    # ... and are written for static serving beside each other.
    folder = ca_api.runtime.config.crl_publish_dir
    assert (folder / "issuing-delta.crl").read_bytes() == fetched_delta.data
    assert (folder / "issuing.crl").read_bytes() == fetched_base.data
    with ca_api.runtime.transaction() as session:
        assert verify_chain(session) > 0


def test_delta_without_full_reissue_and_hourly(ca_api: CaApi, tmp_path: Path) -> None:
    """A CA past ``full_after_change_up_to``: the status change publishes only its delta; the
    base stays (daily) and a fetch of the delta reissues it hourly, relative to that base."""
    head = register(ca_api)
    _paid_first(ca_api, head)
    a = _issue(ca_api, head)
    files = _Files(ca_api, tmp_path, {"a": a})
    runtime, now = ca_api.runtime, CA_NOW + timedelta(minutes=10)
    policy = CRL_POLICY.__class__(full_after_change_up_to=0, freshest_in_base=True)
    with runtime.transaction() as session:  # one revoked already: the base has an entry
        seed_certificates(session, inn="01234567890123", holder_id=head, count=1, now=now)
        base, _ = refresh_crl(session, issuer="issuing", token=runtime.ca_token, now=now,
                              actor="test", force=True, public_url=CA_URL,
                              policy=policy)  # fmt: skip
    with runtime.transaction() as session:  # what signing_api.cli.revocation does
        row = suspend(session, get_certificate(session, a), now=now, who=Actor("t", officer=True))
        published = status_changed(session, token=runtime.ca_token, now=now, actor="test",
                                   serials=[int(row.serial, 16)], policy=policy)  # fmt: skip
    assert published.full is None and published.serials == (int(a, 16),)
    # freshest_in_base: the base names the delta's URL as well (RFC 5280 §5.2.6)
    freshest = base.load().extensions.get_extension_for_class(x509.FreshestCRL)
    assert freshest.value[0].full_name == [
        x509.UniformResourceIdentifier(f"{CA_URL}/crl/issuing-delta.crl")
    ]
    assert published.delta.base_number == base.number
    with runtime.transaction() as session:
        # not due: the base is big (policy), fresh, and the delta carries the change
        token, later = runtime.ca_token, now + timedelta(minutes=30)
        same, new = refresh_crl(session, issuer="issuing", token=token, now=later, actor="test",
                                policy=policy)  # fmt: skip
        assert (same.number, new) == (base.number, False)
        later = now + timedelta(minutes=59)
        kept, new = refresh_delta(session, token=token, now=later, actor="test", policy=policy)
        assert (kept.number, new) == (published.delta.number, False)
        later = now + timedelta(minutes=61)
        hourly, new = refresh_delta(session, token=token, now=later, actor="test", policy=policy)
        assert new and hourly.number > published.delta.number
        assert hourly.base_number == base.number
        assert hourly.next_update - hourly.this_update == policy.delta_next_update
    ca_api.clock.now = now + timedelta(minutes=61)
    assert "certificate revoked" in files.verify("a", files.crl(base), files.crl(hourly))


def test_crl_issues_stay_append_only_after_0012(ca_api: CaApi) -> None:
    """Migration 0012 added its columns in place: the triggers of 0005 still refuse UPDATE and
    DELETE; and a delta must name a base (a full CRL none)."""
    assert ca_api.client.get("/crl/issuing-delta.crl").status_code == 200
    with ca_api.runtime.engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind, base_number FROM crl_issues ORDER BY id")).all()
        assert [k for k, _ in kinds] == ["full", "delta"] and kinds[1][1] is not None
        for statement in (
            "UPDATE crl_issues SET kind = 'full', base_number = NULL WHERE kind = 'delta'",
            "DELETE FROM crl_issues WHERE kind = 'delta'",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(statement))
            conn.rollback()
        copy = (
            "INSERT INTO crl_issues (issuer, number, this_update, next_update, der, sha256,"
            " entries, created_at, kind, base_number) SELECT issuer, 99, this_update,"
            " next_update, der, sha256, entries, created_at, 'delta', {base} FROM crl_issues"
            " WHERE kind = 'full'"
        )
        for base in ("NULL", "100"):  # a delta without its base, or with a later one
            with pytest.raises(DBAPIError):
                conn.execute(text(copy.format(base=base)))
            conn.rollback()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_revocations_and_fetches_concurrently_on_postgresql(ca_api: CaApi) -> None:
    """Revocations (each signing its delta in its transaction, holding the audit head) and CRL
    fetches (reissuing full and delta CRLs) in threads: no deadlock, no serialization failure,
    numbers strictly increasing in commit order, every delta's base a full CRL before it."""
    runtime = ca_api.runtime
    holder = register(ca_api)
    now = CA_NOW + timedelta(minutes=5)
    with runtime.transaction() as session:
        seed_certificates(session, inn="01234567890123", holder_id=holder, count=24, now=now,
                          status="active")  # fmt: skip
        serials = list(session.scalars(select(Certificate.serial)))
        refresh_crl(session, issuer="issuing", token=runtime.ca_token, now=now, actor="test")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def change(mine: list[str]) -> None:
        try:
            start.wait()
            for index, serial in enumerate(mine):
                with runtime.transaction() as session:
                    row = get_certificate(session, serial)
                    who = Actor("t", officer=True)
                    if index % 3 == 1:
                        row = suspend(session, row, now=now, who=who)
                    elif index % 3 == 2:
                        row = suspend(session, row, now=now, who=who)
                        row = resume(session, row, now=now, who=who)
                    else:
                        row = revoke(session, row, reason="keyCompromise", now=now, who=who)
                    status_changed(session, token=runtime.ca_token, now=now, actor="t",
                                   serials=[int(serial, 16)])  # fmt: skip
        except BaseException as ex:  # pragma: no cover - reported below
            errors.append(ex)

    def fetch(delta: bool) -> None:
        try:
            start.wait()
            for _ in range(6):
                with runtime.transaction() as session:
                    refresh = refresh_delta if delta else refresh_crl
                    refresh(session, issuer="issuing", token=runtime.ca_token, now=now,
                            actor="http:crl", force=True)  # fmt: skip
        except BaseException as ex:  # pragma: no cover - reported below
            errors.append(ex)

    threads = [threading.Thread(target=change, args=(serials[i::4],)) for i in range(4)]
    threads += [threading.Thread(target=fetch, args=(i % 2 == 1,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    with runtime.transaction() as session:
        rows = session.execute(
            select(CRLIssue.number, CRLIssue.kind, CRLIssue.base_number)
            .where(CRLIssue.issuer == "issuing")
            .order_by(CRLIssue.id)
        ).all()
        assert verify_chain(session) > len(rows)
    numbers = [number for number, _, _ in rows]
    assert numbers == list(range(1, len(rows) + 1))  # strictly increasing in commit order
    full = {number for number, kind, _ in rows if kind == "full"}
    deltas: list[Any] = [(number, base) for number, kind, base in rows if kind == "delta"]
    assert len(deltas) >= 24 + 12
    assert all(base in full and base < number for number, base in deltas)


def test_registry_crl_is_what_pyca_writes_for_the_same_rows(ca_api: CaApi) -> None:
    """``refresh_crl`` reads the rows raw (times as the database's UTC text) and encodes them
    itself: its TBSCertList is pyca's for the same registry entries, byte for byte."""
    runtime = ca_api.runtime
    holder = register(ca_api)
    now = CA_NOW + timedelta(minutes=7, microseconds=654_321)
    with runtime.transaction() as session:
        seed_certificates(session, inn="01234567890123", holder_id=holder, count=60, now=now)
        ours, _ = refresh_crl(session, issuer="issuing", token=runtime.ca_token, now=now,
                              actor="test", public_url=CA_URL)  # fmt: skip
        entries = crl_entries(session, now)
    crl = ours.load()
    assert ours.entries == len(entries) == 60
    builder = x509.CertificateRevocationListBuilder(
        revoked_certificates=[
            _pyca_entry(e.serial, e.revoked_at, e.reason, e.invalidity_date)
            for e in sorted(entries, key=lambda e: e.serial)
        ]
    )
    builder = builder.issuer_name(crl.issuer).last_update(crl.last_update_utc)
    builder = builder.next_update(crl.next_update_utc)  # type: ignore[arg-type]
    for extension in crl.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    expected = builder.sign(ec.generate_private_key(ec.SECP384R1()), hashes.SHA384())
    assert crl.tbs_certlist_bytes == expected.tbs_certlist_bytes


def _pyca_entry(serial: int, at: datetime, reason: x509.ReasonFlags,
                invalid: datetime | None) -> x509.RevokedCertificate:  # fmt: skip
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at)
    if reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(reason), critical=False)
    if invalid is not None:
        builder = builder.add_extension(x509.InvalidityDate(invalid), critical=False)
    return builder.build()


class _NoSignatures:
    """The CA token, except that it cannot sign (a dead HSM); everything else is the token's."""

    def __init__(self, token: Any) -> None:
        self.token = token

    def __getattr__(self, name: str) -> Any:
        return getattr(self.token, name)

    def sign_digest(self, *_args: Any) -> bytes:
        raise HSMError("the token went away")


def test_a_status_change_without_its_delta_crl_is_refused(ca_api: CaApi) -> None:
    """The hook runs in the change's transaction: an HSM that cannot sign the delta makes the
    change a 503 and nothing of it is written."""
    head = register(ca_api)
    _paid_first(ca_api, head)
    serial = _issue(ca_api, head)
    assert ca_api.client.get("/crl/issuing-delta.crl").status_code == 200
    before = len(_crls(ca_api))
    real = ca_api.runtime.ca_token
    ca_api.runtime.__dict__["ca_token"] = _NoSignatures(real)
    try:
        refused = ca_api.post(f"{URL}/{serial}/suspend", {})
    finally:
        ca_api.runtime.__dict__["ca_token"] = real
    assert refused.status_code == 503 and refused.json["status"] == 503, refused.json
    assert ca_api.get(f"{URL}/{serial}").json["status"] == "active"
    assert len(_crls(ca_api)) == before
    with ca_api.runtime.transaction() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.object == f"certificate:{serial}")
        ).all()
    assert "ca.certificate.suspended" not in actions
    assert ca_api.post(f"{URL}/{serial}/suspend", {}).status_code == 200  # the HSM is back


def test_the_worker_publishes_full_crls_daily_and_the_delta_hourly(ca_api: CaApi) -> None:
    """No HTTP fetch needed: each ``tamga worker`` pass signs what the schedule makes due and
    writes it to the publish directory (static files for nginx or a CDN)."""
    from signing_api.worker import Worker

    runtime = ca_api.runtime
    directory = runtime.config.crl_publish_dir

    def worker_pass(at: datetime) -> list[str]:
        ca_api.clock.now = at
        tally = Worker(runtime, mail=False).run_once()
        assert not tally.errors, tally.errors
        return [name.split(" #")[0] for name in tally.crls]

    def published(name: str, *, delta: bool = False) -> IssuedCRL:
        with runtime.transaction() as session:
            current = current_crl(session, name, ca_api.clock.now, delta=delta)
        assert current is not None
        file = directory / f"{name}{'-delta' if delta else ''}.crl"
        assert file.read_bytes() == current.der  # the file is the database's newest
        return current

    start = CA_NOW + timedelta(minutes=1)
    assert worker_pass(start) == ["root", "issuing", "issuing-delta"]
    first = published("issuing", delta=True)
    assert first.base_number == published("issuing").number
    assert worker_pass(start + timedelta(minutes=59)) == []  # nothing due within the hour
    assert worker_pass(start + timedelta(minutes=61)) == ["issuing-delta"]
    assert published("issuing", delta=True).number > first.number
    day = start + CRL_POLICY.reissue_every + timedelta(minutes=1)
    assert worker_pass(day) == ["root", "issuing", "issuing-delta"]
    delta = published("issuing", delta=True)
    assert delta.base_number == published("issuing").number
    assert published("root").this_update == day.replace(microsecond=0)

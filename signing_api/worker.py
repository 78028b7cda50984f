"""``tamga worker``: releases reports a top-up paid for, delivers queued reports, sends mail,
keeps the CRLs, OCSP answers and the OCSP responder certificate fresh.

Any number of workers may run, on any machines sharing the database: each loop releases
waiting reports (``filing.release_waiting``, under each subscriber's account lock), takes due
reports with ``filing.claim_due`` (row locks that skip locked rows on PostgreSQL, plus a lease),
signs the dispatch confirmation as a report first leaves, sends it to the agency's gateway
outside any transaction, and records the signed receipt or the failure (retried with backoff).
A worker killed mid-delivery leaves a lease that expires; another worker then resends, and the
agency, idempotent by report id, still sees one report.

Each pass also renews the OCSP responder certificate when less than a third of it is left
(``ca.ocsp_responder``; only once ``tamga init`` made one) and re-signs, in batches of their own
transactions, the stored OCSP answers whose nextUpdate is within the refresh margin
(``crl.refresh_responses``: ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so workers on several nodes share the queue). In steady state no OCSP request
reaches the HSM.

Each pass also publishes what the CRL schedule (:mod:`policies.crl`) makes due: a full CRL per
CA a day, the issuing CA's delta CRL every hour (``crl.refresh_crl``, ``crl.refresh_delta``),
signed and written to the publish directory, so static files served by nginx or a CDN stay
fresh without any HTTP fetch reaching the service (the HTTP routes issue on demand as well).
A root whose key we do not hold (an external national root) is skipped.

The worker is also the audit journal's sequencer (issue #16): a thread of its own numbers,
chains and tree-integrates committed entries in batches (``db.sequencer``, under the journal
head's row lock, so workers on several nodes take turns), polling every 0.2 s while idle; each
pass signs a checkpoint of the tree when one is due (``ca.audit_log``, :mod:`policies.audit`).

Each pass also tends the cloud key pool (:mod:`ca.key_pool`, :mod:`policies.key_pool`): it
destroys pooled keys past their maximum age, then generates a few key pairs in ``tamga-cloud``
toward the pool's targets (a bounded number and time per pass), so that issuance takes a
ready key instead of waiting for the token to make one.

PKCS#11 is opened in the worker process itself (the dispatch key and the TSA key live in
``tamga-ca``), never inherited across a fork.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import filing
from ca import active_certificate
from ca.audit_log import ensure_audit_signer, sign_checkpoint
from ca.dispatch import confirm_dispatch
from ca.errors import HierarchyNotReady
from ca.key_pool import PoolPass, tend_key_pool
from ca.ocsp_responder import ensure_ocsp_responder
from ca.tsa import TSAUnavailable
from crl import (
    ForeignIssuer,
    IssuedCRL,
    OCSPUnavailable,
    refresh_crl,
    refresh_delta,
    refresh_responses,
    write_crl_files,
)
from db.sequencer import run_pending
from filing.delivery import Confirmer
from hsm import HSMError
from policies.audit import AUDIT_LOG_POLICY
from policies.crl import CRL_ISSUERS, DELTA_ISSUERS, delta_name
from policies.filing import FILING_POLICY, FilingPolicy
from policies.key_pool import KEY_POOL, KeyPoolPolicy
from policies.ocsp import OCSP
from signing_api.runtime import Runtime

__all__ = ["Tally", "Worker", "worker_name"]

log = logging.getLogger("tamga.worker")


def worker_name() -> str:
    return f"worker:{socket.gethostname()}:{os.getpid()}"[:64]


@dataclass
class Tally:
    released: int = 0
    delivered: int = 0
    failed: int = 0
    mailed: int = 0
    ocsp_signed: int = 0  # stored OCSP answers re-signed this pass
    ocsp_renewed: bool = False  # a new OCSP responder certificate this pass
    crls: list[str] = field(default_factory=list)  # CRLs signed and written this pass
    checkpoint: int | None = None  # tree size of the audit checkpoint signed this pass
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(
            self.released or self.delivered or self.failed or self.mailed or self.ocsp_signed
        )


class _AgencyError(Exception):
    pass


def _receipt_of(body: bytes, content_type: str) -> bytes:
    """The receipt in an agency's 200 answer: raw DER CMS, or JSON ``{"receipt": base64}``."""
    if content_type.split(";", maxsplit=1)[0].strip() == "application/json":
        try:
            value = json.loads(body)["receipt"]
            return base64.b64decode(value, validate=True)
        except (ValueError, KeyError, TypeError) as ex:
            raise _AgencyError(f"the agency's JSON answer holds no receipt: {ex}") from None
    return body


class Worker:
    """One worker process's loop; ``run_once`` is one pass (tests and ``--once`` call it)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        owner: str | None = None,
        batch: int = 10,
        mail: bool = True,
        policy: FilingPolicy = FILING_POLICY,
    ) -> None:
        self.rt = runtime
        self.owner = owner or worker_name()
        self.batch = batch
        self.mail = mail
        self.policy = policy

    @property
    def actor(self) -> str:
        return self.owner

    def run(self, stop: threading.Event, *, idle: float = 1.0) -> None:
        log.info("worker %s started", self.owner)
        sequencer = threading.Thread(
            target=self.run_sequencer, args=(stop,), name="audit-sequencer", daemon=True
        )
        sequencer.start()
        while not stop.is_set():
            try:
                tally = self.run_once()
            except Exception:  # a pass that failed (database restarting...): log and go on
                log.exception("worker pass failed")
                tally = Tally()
            if not tally.busy:
                stop.wait(idle)
        sequencer.join(timeout=30)
        log.info("worker %s stopped", self.owner)

    def run_sequencer(self, stop: threading.Event) -> None:
        """The audit sequencer's loop (its own thread): batches while entries wait, a short
        sleep when none do. Workers on several nodes take turns under the head row lock."""
        while not stop.is_set():
            try:
                done = self.sequence_audit()
            except Exception:  # the database restarting...: the entries wait, none is lost
                log.exception("audit sequencing failed")
                done = 0
            if done == 0:
                stop.wait(self.sequencer_poll)

    @property
    def sequencer_poll(self) -> float:
        """Seconds the sequencer thread sleeps when nothing waits: the policy's poll, or only a
        slow sweep where every commit sequences inline (SQLite: each poll would take the
        database's write lock) and the worker merely picks up what a failed pass left."""
        if self.rt.config.inline_audit:
            return AUDIT_LOG_POLICY.sweep_seconds
        return AUDIT_LOG_POLICY.poll_seconds

    def sequence_audit(self) -> int:
        """Number, chain and tree-integrate every committed audit entry waiting."""
        return run_pending(self.rt.session_factory, limit=AUDIT_LOG_POLICY.batch)

    def checkpoint_audit(self, tally: Tally) -> None:
        """Sign a checkpoint of the audit journal's tree when one is due (policies.audit),
        making the checkpoint key and certificate first on a home older than them."""
        try:
            with self.rt.transaction() as session:
                now, token, url = self.rt.now(), self.rt.ca_token, self.rt.config.public_url
                ensure_audit_signer(session, token, public_url=url, now=now, actor=self.actor)
            with self.rt.transaction() as session:
                signed = sign_checkpoint(session, token, public_url=url, now=now)
        except HierarchyNotReady:
            return  # no issuing CA yet
        except HSMError as ex:
            log.warning("the audit checkpoint could not be signed: %s", ex)
            tally.errors.append(f"audit checkpoint: {ex}")
            return
        if signed is not None:
            tally.checkpoint = signed.tree_size

    def run_once(self) -> Tally:
        tally = Tally()
        with self.rt.transaction() as session:
            tally.released = len(
                filing.release_waiting(session, now=self.rt.now(), actor=self.actor)
            )
        with self.rt.transaction() as session:
            due = filing.claim_due(
                session, now=self.rt.now(), owner=self.owner, limit=self.batch, policy=self.policy
            )
        for report_id in due:
            if self.deliver(report_id):
                tally.delivered += 1
            else:
                tally.failed += 1
        if self.mail:
            tally.mailed = self._send_mail()
        self.refresh_crls(tally)
        self.refresh_ocsp(tally)
        self.tend_key_pool(tally)
        self.sequence_audit()
        self.checkpoint_audit(tally)
        return tally

    def refresh_crls(self, tally: Tally) -> None:
        """Sign and write the full CRLs and the delta CRL that the schedule makes due."""
        directory = self.rt.config.crl_publish_dir
        for issuer in CRL_ISSUERS:
            fresh: list[IssuedCRL] = []
            try:
                with self.rt.transaction() as session:
                    now, token, url = self.rt.now(), self.rt.ca_token, self.rt.config.public_url
                    full, new = refresh_crl(
                        session, issuer=issuer, token=token, now=now, actor=self.actor,
                        public_url=url,
                    )  # fmt: skip
                    fresh += [full] if new else []
                    if issuer in DELTA_ISSUERS:
                        delta, new = refresh_delta(
                            session, issuer=issuer, token=token, now=now, actor=self.actor,
                            public_url=url,
                        )  # fmt: skip
                        fresh += [delta] if new else []
            except (ForeignIssuer, HierarchyNotReady):
                continue  # not our key (an external root), or no CA yet
            except HSMError as ex:
                log.warning("the %s CRL could not be signed: %s", issuer, ex)
                tally.errors.append(f"crl {issuer}: {ex}")
                continue
            for issued in fresh:
                try:  # the database copy is authoritative; the file is for static serving
                    write_crl_files(issued.der, issuer, directory, delta=issued.is_delta)
                except OSError as ex:
                    log.error("cannot write the %s CRL file: %s", issuer, ex)
                    tally.errors.append(f"crl {issuer}: {ex}")
                name = delta_name(issuer) if issued.is_delta else issuer
                tally.crls.append(f"{name} #{issued.number}")

    # OCSP batches one pass re-signs at most, so that deliveries and mail are not starved.
    OCSP_BATCHES_PER_PASS = 20

    def refresh_ocsp(self, tally: Tally) -> None:
        """Renew the responder certificate when due, then re-sign due stored answers."""
        try:
            with self.rt.transaction() as session:
                try:
                    before = active_certificate(session, OCSP.name).serial_number
                except HierarchyNotReady:
                    return  # no responder yet: `tamga init` makes it (or awaits issuer-import)
                cert = ensure_ocsp_responder(
                    session,
                    self.rt.ca_token,
                    public_url=self.rt.config.public_url,
                    now=self.rt.now(),
                    actor=self.actor,
                )
                tally.ocsp_renewed = cert.serial_number != before
            for _ in range(self.OCSP_BATCHES_PER_PASS):
                with self.rt.transaction() as session:
                    signed = refresh_responses(
                        session, token=self.rt.ca_token, now=self.rt.now(), actor=self.actor
                    )
                tally.ocsp_signed += signed
                if signed == 0:
                    break
        except (HSMError, OCSPUnavailable, HierarchyNotReady) as ex:
            log.warning("OCSP refresh failed: %s", ex)
            tally.errors.append(f"ocsp: {ex}")

    # The cloud key pool's targets, maximum age and work per pass (tests set a smaller one).
    key_pool: KeyPoolPolicy = KEY_POOL

    def tend_key_pool(self, tally: Tally) -> PoolPass | None:
        """Destroy expired pooled cloud keys, then generate a few toward the pool's targets."""
        try:
            done = tend_key_pool(
                self.rt.transaction, self.rt.cloud_token, now=self.rt.now(), actor=self.actor,
                policy=self.key_pool,
            )  # fmt: skip
        except HSMError as ex:
            log.warning("cloud key pool not tended: %s", ex)
            tally.errors.append(f"key pool: {ex}")
            return None
        tally.errors.extend(done.errors)
        return done

    def _send_mail(self) -> int:
        from signing_api.mail import deliver

        try:
            done = deliver(
                self.rt.transaction,
                smtp_url=self.rt.config.smtp_url,
                sender=self.rt.config.mail_from,
                now=self.rt.now(),
                limit=50,
            )
        except OSError as ex:  # no SMTP server: the mail waits in the outbox
            log.warning("mail not sent: %s", ex)
            return 0
        return done.sent

    def _confirmer(self, session: object, now: datetime) -> Confirmer:
        def confirm(statement: Mapping[str, str]) -> bytes:
            return confirm_dispatch(
                session,  # type: ignore[arg-type]
                self.rt.dispatch_signer,
                statement=statement,
                tsa=self.rt.tsa_signer,
                tsa_clock=self.rt.now,
                now=now,
                actor=self.actor,
            )

        return confirm

    def deliver(self, report_id: str) -> bool:
        """One delivery attempt of a report this worker holds; True if the receipt is recorded."""
        try:
            with self.rt.transaction() as session:
                moment = self.rt.now()
                outgoing = filing.prepare_dispatch(
                    session,
                    report_id,
                    owner=self.owner,
                    confirm=self._confirmer(session, moment),
                    now=moment,
                    actor=self.actor,
                )
        except (HSMError, TSAUnavailable) as ex:
            return self._failed(report_id, f"dispatch confirmation not signed: {ex}")
        except filing.FilingConflict as ex:  # taken over or stopped meanwhile
            log.info("report %s: %s", report_id, ex)
            return False
        try:
            receipt = self._send(outgoing)
        except _AgencyError as ex:
            return self._failed(report_id, str(ex))
        try:
            with self.rt.transaction() as session:
                filing.record_receipt(
                    session, report_id, receipt, now=self.rt.now(), actor=self.actor
                )
        except filing.FilingError as ex:
            return self._failed(report_id, f"receipt refused: {ex}")
        return True

    def _send(self, outgoing: filing.Outgoing) -> bytes:
        req = urllib.request.Request(  # noqa: S310 - the agency's registered http(s) endpoint
            outgoing.url,
            data=outgoing.body,
            method="PUT",
            headers={"Content-Type": "application/json", "Accept": "application/pkcs7-mime"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.policy.agency_timeout_s) as answer:  # noqa: S310
                body = answer.read(1024 * 1024)
                return _receipt_of(body, answer.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as ex:
            raise _AgencyError(f"the agency answered HTTP {ex.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as ex:
            reason = getattr(ex, "reason", ex)
            raise _AgencyError(f"the agency is unreachable: {reason}") from None

    def _failed(self, report_id: str, error: str) -> bool:
        log.warning("report %s not delivered: %s", report_id, error)
        with self.rt.transaction() as session:
            filing.record_failure(
                session,
                report_id,
                error,
                owner=self.owner,
                now=self.rt.now(),
                actor=self.actor,
                policy=self.policy,
            )
        return False

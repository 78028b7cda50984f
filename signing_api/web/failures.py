"""Failed authentications, journalled as counts: one row per client address per interval.

A refused bearer token (401) or a call from outside an OSMP provider's allow-list (403) used to
append one hash-chained row each: anyone could write the journal at will. Now the first failure
of an address opens an interval (``SUMMARY_INTERVAL``) and is journalled at once, with count 1, so
that a lone failed attempt is visible immediately; the failures and rate-limit refusals (429)
that follow in that interval are counted in memory and journalled as one row when the interval
closes. Each row is ``login.failed`` (or ``billing.osmp.refused``) with details ``{address,
count, throttled, first, last, reasons}``; the counts of an address's rows add up to its
failures. The token presented is never journalled, logged or kept: only the refusal's reason.
A row's ``count`` is the failures it stands for (1 for the opening row), ``throttled`` the
requests refused with 429 meanwhile, ``first``/``last`` their times, ``reasons`` a list of
``{reason, count}``.

Intervals close lazily: on the next failure or request this worker handles after the interval,
and when the worker stops (``serve.py``'s ``worker_exit``). The counts live in each worker
process, so an address attacking two workers gets rows from each.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, request

from db import audit
from policies.dates import iso_utc
from signing_api.runtime import Runtime

__all__ = [
    "AUTHENTICATION",
    "LOGIN_FAILED",
    "SUMMARY_INTERVAL",
    "FailureJournal",
    "KnownCredentials",
    "client_address",
    "credential_digest",
    "failure_journal",
    "known_credentials",
]

log = logging.getLogger("tamga.http")

SUMMARY_INTERVAL = timedelta(minutes=1)
_EXTENSION = "tamga.failures"
_KNOWN = "tamga.known_credentials"
LOGIN_FAILED = "login.failed"
AUTHENTICATION = "http:authentication"
_MAX_REASONS = 8  # distinct reasons kept per row; the rest are counted as "other"


def client_address() -> str:
    """The client's address for limits and the journal: the socket peer (``remote_addr``), after
    ``ProxyFix`` when ``TAMGA_TRUSTED_PROXIES`` says how many proxies to trust. An IPv6 client
    is its /64: one host holds a whole /64 and could otherwise rotate through it."""
    address = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Tally:
    action: str
    object: str
    opened: datetime  # when the interval started: its first failure, journalled at once
    count: int = 0  # failures after the first
    throttled: int = 0  # requests refused with 429 before their credentials were looked at
    first: datetime | None = None
    last: datetime | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, moment: datetime, reason: str | None) -> None:
        if reason is None:
            self.throttled += 1
        else:
            self.count += 1
            key = reason if reason in self.reasons or len(self.reasons) < _MAX_REASONS else "other"
            self.reasons[key] = self.reasons.get(key, 0) + 1
        self.first = self.first or moment
        self.last = moment


class FailureJournal:
    """The per-worker counts of failed authentications, by address."""

    def __init__(self, interval: timedelta = SUMMARY_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str, str], _Tally] = {}
        self._next_due: datetime | None = None

    def failed(
        self,
        runtime: Runtime,
        address: str,
        reason: str,
        *,
        action: str = LOGIN_FAILED,
        object: str = AUTHENTICATION,
    ) -> None:
        """One refused attempt from ``address`` (``reason`` never holds the credential)."""
        moment = runtime.now()
        key = (action, object, address)
        with self._lock:
            due = self._take_due(moment)
            tally = self._open.get(key)
            if tally is None:
                self._open[key] = _Tally(action=action, object=object, opened=moment)
                self._schedule(moment + self.interval)
            else:
                tally.add(moment, reason)
        if tally is None:
            opening = _Tally(action=action, object=object, opened=moment)
            opening.add(moment, reason)
            self._write(runtime, address, opening)
        self._write_due(runtime, due)

    def throttled(
        self,
        runtime: Runtime,
        address: str,
        *,
        action: str = LOGIN_FAILED,
        object: str = AUTHENTICATION,
    ) -> None:
        """A request from ``address`` refused by the failure limit (429): counted in the
        interval's row, not journalled on its own."""
        moment = runtime.now()
        key = (action, object, address)
        with self._lock:
            due = self._take_due(moment)
            tally = self._open.get(key)
            if tally is None:
                tally = self._open[key] = _Tally(action=action, object=object, opened=moment)
                self._schedule(moment + self.interval)
            tally.add(moment, None)
        self._write_due(runtime, due)

    def sweep(self, runtime: Runtime, *, everything: bool = False) -> None:
        """Journal the intervals that have closed (all of them, when the worker stops)."""
        moment = runtime.now()
        with self._lock:
            if everything:
                due, self._open, self._next_due = list(self._open.items()), {}, None
            elif self._next_due is None or moment < self._next_due:
                return
            else:
                due = self._take_due(moment)
        self._write_due(runtime, due)

    def _schedule(self, moment: datetime) -> None:
        if self._next_due is None or moment < self._next_due:
            self._next_due = moment

    def _take_due(self, moment: datetime) -> list[tuple[tuple[str, str, str], _Tally]]:
        if self._next_due is None or moment < self._next_due:
            return []
        due = [(k, t) for k, t in self._open.items() if t.opened + self.interval <= moment]
        for key, _ in due:
            del self._open[key]
        self._next_due = min((t.opened + self.interval for t in self._open.values()), default=None)
        return due

    def _write_due(self, runtime: Runtime, due: list[tuple[tuple[str, str, str], _Tally]]) -> None:
        for (_, _, address), tally in due:
            if tally.first is not None:  # else only the opening failure: already journalled
                self._write(runtime, address, tally)

    @staticmethod
    def _write(runtime: Runtime, address: str, tally: _Tally) -> None:
        details: dict[str, Any] = {
            "address": address,
            "count": tally.count,
            "throttled": tally.throttled,
            "first": iso_utc(tally.first),
            "last": iso_utc(tally.last),
            # a list, not a mapping: a reason's text is not a key (the journal refuses keys that
            # look like secrets, such as "... token")
            "reasons": [{"reason": r, "count": n} for r, n in sorted(tally.reasons.items())],
        }
        try:
            with runtime.transaction() as session:
                audit.append(
                    session,
                    actor=f"ip:{address}",
                    action=tally.action,
                    object=tally.object,
                    outcome="refused",
                    details=details,
                    now=runtime.now(),
                )
        except Exception:
            log.exception("could not journal the %s counts of %s", tally.action, address)


class KnownCredentials:
    """Digests of the tokens this worker authenticated lately (at most ``size``, for ``ttl``):
    a request bearing one is not held back by its address's failure limit, so a good client is
    not locked out by an attacker at the same address. Only a digest is kept, never a token."""

    def __init__(self, ttl: timedelta = timedelta(minutes=10), size: int = 1024) -> None:
        self.ttl, self.size = ttl, size
        self._lock = threading.Lock()
        self._seen: dict[str, datetime] = {}

    def remember(self, digest: str, moment: datetime) -> None:
        with self._lock:
            self._seen.pop(digest, None)
            self._seen[digest] = moment + self.ttl
            while len(self._seen) > self.size:
                del self._seen[next(iter(self._seen))]

    def known(self, digest: str, moment: datetime) -> bool:
        with self._lock:
            until = self._seen.get(digest)
            return until is not None and moment < until


def credential_digest(token: str) -> str:
    """A token's stand-in for limits and caches: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def known_credentials(app: Flask | None = None) -> KnownCredentials:
    target = app or current_app
    known: KnownCredentials = target.extensions.setdefault(_KNOWN, KnownCredentials())
    return known


def failure_journal(app: Flask | None = None) -> FailureJournal:
    """The app's (this worker's) failure journal."""
    target = app or current_app
    journal: FailureJournal = target.extensions.setdefault(_EXTENSION, FailureJournal())
    return journal

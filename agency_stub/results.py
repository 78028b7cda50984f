"""Check results, posted to Tamga from a background thread.

``POST {callback}/api/v1/agency-results`` with ``Content-Type: application/pkcs7-mime`` and an
encapsulated CMS signed by the receipt key. A result is signed once (at its first attempt) and
every retry and copy sends the same bytes. Retries back off exponentially (``retry_base``,
doubling, at most 60 s): without end on a network error or a 5xx; a 4xx (Tamga's 422: the
signature does not verify, or the report is not known yet) is retried ``max_refusals`` times in
all and then given up (logged, ``result_status: gave-up``). Nothing is posted while the mode is
``down``; pending results survive a restart (they are in the state file).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request

from agency_stub.protocol import canonical_json, utc_now_iso
from agency_stub.service import Stub
from agency_stub.store import DueResult

__all__ = ["ResultPoster", "backoff"]

log = logging.getLogger("agency_stub.results")

MAX_BACKOFF = 60.0


def backoff(retry_base: float, attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt: ``retry_base`` doubling, at most 60 s."""
    return float(min(MAX_BACKOFF, retry_base * 2 ** max(0, attempts - 1)))


class ResultPoster(threading.Thread):
    def __init__(
        self,
        stub: Stub,
        callback: str,
        *,
        retry_base: float = 1.0,
        max_refusals: int = 4,
        tick: float = 0.1,
    ) -> None:
        super().__init__(name="result-poster", daemon=True)
        self.stub = stub
        self.url = callback.rstrip("/") + "/api/v1/agency-results"
        self.retry_base = retry_base
        self.max_refusals = max_refusals
        self.tick = tick
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.wait(self.tick):
            if self.stub.controls.current.mode == "down":
                continue
            try:
                for due in self.stub.store.due(time.time()):
                    if self._stop_event.is_set() or self.stub.controls.current.mode == "down":
                        break
                    self._attempt(due)
            except Exception:  # the poster must outlive any one bad result
                log.exception("posting check results failed")

    def _signed(self, due: DueResult) -> bytes:
        if due.cms is not None:
            return due.cms
        checked_at = utc_now_iso()
        cms = self.stub.keys.sign(
            canonical_json(
                {
                    "type": "check-result",
                    "report_id": due.report_id,
                    "agency": self.stub.agency,
                    "result": due.result,
                    "message": due.message,
                    "checked_at": checked_at,
                }
            )
        )
        self.stub.store.save_result_cms(due.report_id, cms, checked_at)
        return cms

    def _post(self, body: bytes) -> tuple[int | None, str]:
        request = urllib.request.Request(  # noqa: S310 - the callback URL the operator gave
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/pkcs7-mime"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return int(answer.status), answer.read(500).decode(errors="replace")
        except urllib.error.HTTPError as ex:
            return ex.code, ex.read(500).decode(errors="replace")
        except OSError as ex:
            return None, str(ex)

    def _attempt(self, due: DueResult) -> None:
        status, text = self._post(self._signed(due))
        attempts = due.attempts + 1
        now = time.time()
        if status is not None and 200 <= status < 300:
            done = due.posts + 1 >= due.copies
            log.info(
                "check result of %s (%s) posted, copy %d of %d: %d",
                due.report_id,
                due.result,
                due.posts + 1,
                due.copies,
                status,
            )
            self.stub.store.record_attempt(
                due.report_id,
                http_status=status,
                posted=True,
                refused=False,
                status="posted" if done else "pending",
                next_attempt_at=None if done else now,
            )
        elif status is not None and 400 <= status < 500:
            give_up = due.refusals + 1 >= self.max_refusals
            log.warning(
                "Tamga refused the check result of %s with %d (%s)%s",
                due.report_id,
                status,
                text,
                ": giving up" if give_up else "",
            )
            self.stub.store.record_attempt(
                due.report_id,
                http_status=status,
                posted=False,
                refused=True,
                status="gave-up" if give_up else "pending",
                next_attempt_at=None if give_up else now + backoff(self.retry_base, attempts),
            )
        else:
            log.warning(
                "posting the check result of %s failed (%s: %s); retrying",
                due.report_id,
                status,
                text,
            )
            self.stub.store.record_attempt(
                due.report_id,
                http_status=status,
                posted=False,
                refused=False,
                status="pending",
                next_attempt_at=now + backoff(self.retry_base, attempts),
            )

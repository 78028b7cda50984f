"""Locust users for ``bench/load.py`` (issue #16): a filing day's mix against ``tamga serve``.

Not run on its own: ``bench/load.py`` seeds a throwaway installation, writes what the users need
(the portal's bearer token, the subscribers' INNs, the holders, the credentials, the pre-minted
SADs and the OCSP request paths) to a JSON file named by ``TAMGA_LOAD_SEED``, and starts locust
on this file. When the test stops, what the users did that left a trace in the database (hashes
signed, payments credited, replays answered) is written to ``TAMGA_LOAD_TALLY`` for the runner to
check against the evidence rows and the receipts, with locust's figures.

One user class, :class:`FilingDay`, whose task weights are those of a filing day (per 100
requests): 28 balance reads by the portal, 10 OSMP ``check`` and 10 ``pay`` from terminals (3
of them replays of a ``pay`` already answered), 7 ``credentials/list`` and 7
``credentials/info``, 12 ``signHash`` with one hash and 4 with ten (each spends one pre-minted
SAD), 10 OCSP requests (GET, the RFC 5019 cacheable form) and 3 CRL fetches by relying parties,
3 ``/healthz`` probes and 6 requests with a wrong bearer token (401 expected: counted as a
success under their own name; any other status is a failure). A failure is an unexpected HTTP
status or an answer that does not say what it should (an OSMP ``<result>`` other than 0, a
replay with another ``prv_txn``, fewer signatures than hashes).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

SEED: dict[str, Any] = json.loads(Path(os.environ["TAMGA_LOAD_SEED"]).read_text())
TALLY_PATH = os.environ.get("TAMGA_LOAD_TALLY")
SHA256_OID = "2.16.840.1.101.3.4.2.1"
BISHKEK = timedelta(hours=6)  # OSMP txn_date is Asia/Bishkek local time (docs/osmp.md)
_RESULT = re.compile(r"<result>(\d+)</result>")
_PRV_TXN = re.compile(r"<prv_txn>(\d+)</prv_txn>")
RNG = random.Random()  # noqa: S311 - picks requests, guards no secret

# Shared by every user: locust runs them all as greenlets of this one process.
SADS: dict[int, deque[dict[str, Any]]] = {
    int(n): deque(jobs) for n, jobs in SEED["sads"].items()
}  # fmt: skip
TXN_IDS = itertools.count(1)
PAID: list[tuple[str, str, str, str, str]] = []  # (provider, txn_id, account, sum, prv_txn)
TALLY = {"hashes_signed": 0, "pays": 0, "paid_tyiyn": 0, "replays": 0, "sads_missing": 0}


def _osmp_result(text: str) -> tuple[int | None, str | None]:
    result, prv_txn = _RESULT.search(text), _PRV_TXN.search(text)
    return (
        None if result is None else int(result.group(1)),
        None if prv_txn is None else prv_txn.group(1),
    )


class FilingDay(FastHttpUser):
    """The portal, payment terminals, relying parties and a load balancer, in one mix."""

    wait_time = between(*SEED["wait"])

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {SEED['token']}"}

    # -- the portal: balances, credentials, signatures ------------------------------------------

    @task(28)
    def balance(self) -> None:
        inn = RNG.choice(SEED["inns"])
        with self.client.get(
            f"/api/v1/accounts/{inn}", headers=self.auth, name="GET /api/v1/accounts/[inn]",
            catch_response=True,
        ) as answer:  # fmt: skip
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}")
            elif answer.json().get("inn") != inn:
                answer.failure("another account answered")

    @task(7)
    def credentials_list(self) -> None:
        holder = RNG.choice(SEED["holders"])
        with self.client.post(
            "/csc/v1/credentials/list", json={"userID": str(holder)}, headers=self.auth,
            name="POST /csc/v1/credentials/list", catch_response=True,
        ) as answer:  # fmt: skip
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}")
            elif not answer.json().get("credentialIDs"):
                answer.failure("no credentials listed")

    @task(7)
    def credentials_info(self) -> None:
        serial = RNG.choice(SEED["credentials"])["serial"]
        body = {"credentialID": serial, "certificates": "chain", "certInfo": True}
        with self.client.post(
            "/csc/v1/credentials/info", json=body, headers=self.auth,
            name="POST /csc/v1/credentials/info", catch_response=True,
        ) as answer:  # fmt: skip
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}")
            elif len(answer.json()["cert"]["certificates"]) != 3:
                answer.failure("not the chain of three")

    def _sign_hash(self, hashes: int) -> None:
        if not SADS[hashes]:  # the runner minted too few for this run: say so, send nothing
            TALLY["sads_missing"] += 1
            return
        job = SADS[hashes].popleft()
        body = {
            "credentialID": job["serial"],
            "SAD": job["sad"],
            "hash": job["hash"],
            "hashAlgo": SHA256_OID,
            "signAlgo": job["sign_algo"],
        }
        with self.client.post(
            "/csc/v1/signatures/signHash", json=body, headers=self.auth,
            name=f"POST /csc/v1/signatures/signHash ({hashes} hash{'es' if hashes > 1 else ''})",
            catch_response=True,
        ) as answer:  # fmt: skip
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}: {answer.text[:200]}")
            elif len(answer.json().get("signatures", ())) != hashes:
                answer.failure("not one signature per hash")
            else:
                TALLY["hashes_signed"] += hashes

    @task(12)
    def sign_one_hash(self) -> None:
        self._sign_hash(1)

    @task(4)
    def sign_ten_hashes(self) -> None:
        self._sign_hash(10)

    @task(6)
    def wrong_token(self) -> None:
        headers = {"Authorization": "Bearer not-a-token-" + RNG.choice("abcdef")}
        with self.client.get(
            f"/api/v1/accounts/{RNG.choice(SEED['inns'])}", headers=headers,
            name="GET /api/v1/accounts/[inn] (wrong token: 401)", catch_response=True,
        ) as answer:  # fmt: skip
            if answer.status_code == 401:
                answer.success()
            else:
                answer.failure(f"status {answer.status_code}, 401 expected")

    # -- payment terminals (OSMP) ---------------------------------------------------------------

    def _osmp(self, name: str, params: dict[str, str]) -> tuple[int | None, str | None]:
        provider = params.pop("provider")
        with self.client.get(
            f"/payments/osmp/{provider}", params=params, name=name, catch_response=True
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}")
                return None, None
            result, prv_txn = _osmp_result(answer.text or "")
            if result != 0:
                answer.failure(f"<result>{result}</result>: {(answer.text or '')[:200]}")
            return result, prv_txn

    @task(10)
    def osmp_check(self) -> None:
        self._osmp(
            "GET /payments/osmp/[provider] check",
            {"provider": RNG.choice(SEED["providers"]), "command": "check",
             "txn_id": str(next(TXN_IDS)), "account": RNG.choice(SEED["inns"]),
             "sum": f"{RNG.randint(100, 5000)}.00"},
        )  # fmt: skip

    @task(7)
    def osmp_pay(self) -> None:
        provider, txn_id = RNG.choice(SEED["providers"]), str(next(TXN_IDS))
        account = RNG.choice(SEED["inns"])
        amount = f"{RNG.randint(100, 5000)}.{RNG.randint(0, 99):02d}"
        txn_date = (datetime.now(UTC) + BISHKEK).strftime("%Y%m%d%H%M%S")
        result, prv_txn = self._osmp(
            "GET /payments/osmp/[provider] pay",
            {"provider": provider, "command": "pay", "txn_id": txn_id, "account": account,
             "sum": amount, "txn_date": txn_date},
        )  # fmt: skip
        if result == 0 and prv_txn is not None:
            PAID.append((provider, txn_id, account, amount, prv_txn))
            TALLY["pays"] += 1
            TALLY["paid_tyiyn"] += int(amount.replace(".", ""))

    @task(3)
    def osmp_pay_replay(self) -> None:
        if not PAID:
            return
        provider, txn_id, account, amount, first = RNG.choice(PAID)
        txn_date = (datetime.now(UTC) + BISHKEK).strftime("%Y%m%d%H%M%S")
        with self.client.get(
            f"/payments/osmp/{provider}",
            params={"command": "pay", "txn_id": txn_id, "account": account, "sum": amount,
                    "txn_date": txn_date},
            name="GET /payments/osmp/[provider] pay (replay)", catch_response=True,
        ) as answer:  # fmt: skip
            result, prv_txn = _osmp_result(answer.text or "")
            if answer.status_code != 200 or result != 0:
                answer.failure(f"status {answer.status_code}, <result>{result}</result>")
            elif prv_txn != first:
                answer.failure(f"replay answered prv_txn {prv_txn}, the first was {first}")
            else:
                TALLY["replays"] += 1

    # -- relying parties and the load balancer --------------------------------------------------

    @task(10)
    def ocsp(self) -> None:
        with self.client.get(
            RNG.choice(SEED["ocsp"]), name="GET /ocsp/[request]", catch_response=True
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}")
            elif answer.headers.get("Content-Type") != "application/ocsp-response":
                answer.failure("not an OCSP response")

    @task(3)
    def crl(self) -> None:
        with self.client.get(
            "/crl/issuing.crl", name="GET /crl/issuing.crl", catch_response=True
        ) as answer:
            if answer.status_code != 200 or not answer.content:
                answer.failure(f"status {answer.status_code}")

    @task(3)
    def healthz(self) -> None:
        with self.client.get("/healthz", name="GET /healthz", catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}")


def _write_tally(environment: Any, **_: Any) -> None:
    """After the last user stopped (each finishes its request first: ``--stop-timeout``): what
    the users did, and locust's own figures, which then cover every request (its CSV is written
    at the time limit, before the users' last requests end)."""
    if not TALLY_PATH:
        return
    stats = environment.stats

    def figures(entry: Any) -> dict[str, Any]:
        return {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "rps": entry.total_rps,
            **{f"p{p}": entry.get_response_time_percentile(p / 100) for p in (50, 95, 99)},
            "max": entry.max_response_time,
        }

    Path(TALLY_PATH).write_text(json.dumps(TALLY | {
        "sads_left": {str(n): len(jobs) for n, jobs in SADS.items()},
        "stats": {name: figures(entry) for (name, _method), entry in stats.entries.items()},
        "total": figures(stats.total),
        "errors": [[e.occurrences, e.name, str(e.error)] for e in stats.errors.values()],
    }))  # fmt: skip


events.test_stop.add_listener(_write_tally)  # type: ignore[no-untyped-call]  # locust: untyped

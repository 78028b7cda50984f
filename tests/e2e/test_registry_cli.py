"""``tamga ca subscriber|holder|registration|poa`` and ``tamga clients grant`` as an officer runs
them (real subprocesses, SQLite and PostgreSQL): ``--json`` prints what the API answers, the
plain output one line per object, and refusals are one line on stderr with exit status 1."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from policies.calendar import REGISTRATION_POLICY, local_date
from signing_api.app import create_app
from signing_api.clients import create_client
from signing_api.runtime import Runtime
from tests.tamga_fixtures import RunTamga

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

INN = "01234567890123"
NAME = 'ОсОО "Ала-Тоо Консалтинг"'
COMPANY = ["--inn", INN, "--name", NAME, "--legal-form", "ОсОО", "--locality", "Бишкек"]
PERSON = ["--full-name", "Асанова Айгуль Бакытовна", "--position", "Директор",
          "--passport-series", "ID1234567", "--phone", "+996555123456"]  # fmt: skip


@pytest.fixture
def tamga(run_tamga: RunTamga, tmp_path: Path, database_url: str) -> Any:
    """``tamga("ca", "subscriber", "show", INN, check=False)`` on this test's database."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(tmp_path / "home", *args, database_url=database_url, check=check)

    return run


class Api:
    """The real app over the same database, with an officer and a portal client."""

    def __init__(self, runtime: Runtime) -> None:
        self.app: Flask = create_app(runtime.config)
        self.app.extensions["tamga"] = runtime
        now = datetime.now(UTC)
        with runtime.transaction() as session:
            self.tokens = {
                role: create_client(session, name=role, role=role, now=now, actor="test").token
                for role in ("officer", "portal")
            }

    def get(self, path: str, who: str = "officer", **query: str) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.app.test_client().get(path, headers=headers, query_string=query)

    def post(self, path: str, body: dict[str, Any], who: str = "officer") -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.app.test_client().post(path, json=body, headers=headers)


@pytest.fixture
def api(runtime: Runtime) -> Api:
    return Api(runtime)


def _refused(result: subprocess.CompletedProcess[str], words: str) -> None:
    """Exit status 1 and one line on stderr saying what was wrong."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], lines
    assert "Traceback" not in result.stderr


def test_subscriber_and_holder_commands_mirror_the_api(tamga: Any, api: Api) -> None:
    added = tamga("ca", "subscriber", "add", *COMPANY, "--email", "office@alatoo.kg")
    assert added.stdout.strip() == f"registered subscriber {INN} ({NAME})"
    again = tamga("ca", "subscriber", "add", *COMPANY, "--email", "office@alatoo.kg")
    assert again.stdout.strip() == f"subscriber exists already: {INN} ({NAME})"
    _refused(tamga("ca", "subscriber", "add", *COMPANY, "--email", "x@y.kg", check=False),
             "already registered")  # fmt: skip
    bad = [*COMPANY[2:], "--inn", "12345", "--email", "office@alatoo.kg"]
    _refused(tamga("ca", "subscriber", "add", *bad, check=False), "invalid --inn")

    shown = json.loads(tamga("ca", "subscriber", "show", INN, "--json").stdout)
    assert shown == api.get(f"/api/v1/subscribers/{INN}").json
    assert shown["locality"] == "Бишкек"
    listed = json.loads(tamga("ca", "subscriber", "list", "--json").stdout)
    assert listed == api.get("/api/v1/subscribers").json
    assert "1 subscribers" in tamga("ca", "subscriber", "list").stdout
    _refused(tamga("ca", "subscriber", "show", "02234567890123", check=False), "no subscriber")

    holder = tamga("ca", "holder", "add", "--inn", INN, *PERSON, "--email", "d@alatoo.kg")
    match = re.fullmatch(r"registered holder (\d+): Асанова Айгуль Бакытовна, Директор of "
                         rf"{INN}; passport ID1234567; d@alatoo.kg, \+996555123456; active; "
                         "identity NOT verified", holder.stdout.strip())  # fmt: skip
    assert match, holder.stdout
    holder_id = match.group(1)
    _refused(tamga("ca", "holder", "verify", holder_id, "--document", "паспорт ID 1234567",
                   check=False), "invalid --document: name the office file")  # fmt: skip
    verified = tamga("ca", "holder", "verify", holder_id, "--document", "дело 2026/5").stdout
    assert verified.strip().endswith("identity verified (дело 2026/5)"), verified
    as_json = json.loads(tamga("ca", "holder", "show", holder_id, "--json").stdout)
    assert as_json == api.get(f"/api/v1/holders/{holder_id}").json
    assert as_json["passport_series"] == "ID1234567"  # the CLI is an officer
    plain = tamga("ca", "subscriber", "show", INN).stdout
    assert NAME in plain and f"holder {holder_id}: Асанова Айгуль Бакытовна, Директор" in plain
    holders = json.loads(tamga("ca", "holder", "list", INN, "--json").stdout)
    assert holders == api.get(f"/api/v1/subscribers/{INN}/holders").json
    _refused(tamga("ca", "holder", "add", "--inn", INN, *PERSON, "--email", "bad", check=False),
             "invalid --email")  # fmt: skip


def test_registration_submit_list_approve_reject(tamga: Any, api: Api) -> None:
    before = datetime.now(UTC)
    submit = ["ca", "registration", "submit", *COMPANY, "--email", "office@alatoo.kg", *PERSON,
              "--holder-email", "d@alatoo.kg"]  # fmt: skip
    _refused(tamga(*submit, "--role", "boss", check=False), "invalid --role")
    _refused(tamga(*submit, "--role", "head", "--phone", "1", check=False), "invalid --phone")
    view = json.loads(tamga(*submit, "--role", "head", "--json").stdout)
    assert view["status"] == "pending" and view["channel"] == "office" and not view["overdue"]
    deadline = datetime.fromisoformat(view["deadline_at"].replace("Z", "+00:00"))
    assert REGISTRATION_POLICY.deadline("office", before) <= deadline
    assert deadline <= REGISTRATION_POLICY.deadline("office", datetime.now(UTC))
    assert view == api.get(f"/api/v1/registrations/{view['id']}").json

    online = tamga(*submit, "--role", "accountant", "--channel", "online").stdout
    assert re.search(r"submitted request \d+ \(online\) .*accountant/cloud, pending, decide by "
                     r"\d{4}-\d{2}-\d{2} 00:00", online), online  # fmt: skip
    listed = tamga("ca", "registration", "list", "--status", "pending").stdout
    assert "2 requests, 0 overdue" in listed

    approved = tamga("ca", "registration", "approve", str(view["id"]), "--note", "ok").stdout
    match = re.search(r"pay 1510\.00 som to payment account (\d{16})$", approved.strip())
    assert match and f"approved request {view['id']} (office)" in approved, approved
    shown = json.loads(tamga("ca", "registration", "show", str(view["id"]), "--json").stdout)
    assert shown["payment_account"] == match.group(1) and shown["amount_due"] == 151_000
    assert shown == api.get(f"/api/v1/registrations/{view['id']}").json
    again = json.loads(tamga("ca", "registration", "approve", str(view["id"]), "--json").stdout)
    assert again == shown
    _refused(tamga("ca", "registration", "reject", str(view["id"]), "--note", "no", check=False),
             "was approved")  # fmt: skip
    _refused(tamga("ca", "registration", "approve", "999", check=False), "no registration")

    second = json.loads(tamga("ca", "registration", "list", "--status", "pending", "--json").stdout)
    [pending] = second["registrations"]
    _refused(tamga("ca", "registration", "reject", str(pending["id"]), "--note", " ", check=False),
             "invalid --note")  # fmt: skip
    rejected = tamga("ca", "registration", "reject", str(pending["id"]), "--note", "нет копии")
    assert "rejected request" in rejected.stdout and rejected.stdout.strip().endswith("нет копии")
    assert "1 requests" in tamga("ca", "registration", "list", "--status", "rejected").stdout


def test_cli_approval_grants_the_submitting_portal(tamga: Any, api: Api) -> None:
    body = {
        "channel": "online",
        "subscriber": {"inn": INN, "name": NAME, "legal_form": "ОсОО", "locality": "Бишкек",
                       "email": "office@alatoo.kg"},
        "holder": {"full_name": "Асанова Айгуль", "position": "Директор",
                   "passport_series": "ID1234567", "email": "d@alatoo.kg",
                   "phone": "+996555123456"},
        "role": "head",
        "storage": "cloud",
    }  # fmt: skip
    submitted = api.post("/api/v1/registrations", body, who="portal")
    assert submitted.status_code == 201
    assert api.get(f"/api/v1/subscribers/{INN}", who="portal").status_code == 404
    tamga("ca", "registration", "approve", str(submitted.json["id"]))
    assert api.get(f"/api/v1/subscribers/{INN}", who="portal").json["name"] == NAME


def test_poa_add_list_revoke(tamga: Any, api: Api) -> None:
    tamga("ca", "subscriber", "add", *COMPANY, "--email", "office@alatoo.kg")
    holder = tamga("ca", "holder", "add", "--inn", INN, *PERSON, "--email", "d@alatoo.kg")
    holder_id = re.search(r"holder (\d+):", holder.stdout).group(1)  # type: ignore[union-attr]
    today = local_date(datetime.now(UTC))
    days = [str(today - timedelta(days=10)), str(today - timedelta(days=1)),
            str(today + timedelta(days=300))]  # fmt: skip
    poa = ["ca", "poa", "add", "--holder-id", holder_id, "--taxpayer-inn", "11234567890123",
           "--taxpayer-name", 'ОсОО "Береке"', "--taxpayer-legal-form", "ОсОО",
           "--taxpayer-locality", "Ош", "--document-number", "Д-1", "--issued-on", days[0],
           "--valid-from", days[1]]  # fmt: skip
    _refused(tamga(*poa, "--valid-until", days[0], check=False), "invalid --valid-until")
    _refused(tamga(*poa, "--valid-until", "31.12.2027", check=False), "invalid --valid-until")
    unknown = tamga(*poa, "--valid-until", days[2], "--holder-id", "999", check=False)
    _refused(unknown, "no holder 999")
    added = tamga(*poa, "--valid-until", days[2])
    match = re.fullmatch(rf"recorded power (\d+): holder {holder_id} for 11234567890123 "
                         rf'ОсОО "Береке", № Д-1 of {days[0]}, {days[1]} \.\. {days[2]}, '
                         r"valid today", added.stdout.strip())  # fmt: skip
    assert match, added.stdout
    power_id = match.group(1)
    assert "already recorded:" in tamga(*poa, "--valid-until", days[2]).stdout

    listed = json.loads(tamga("ca", "poa", "list", holder_id, "--json").stdout)
    assert listed == api.get("/api/v1/powers-of-attorney", holder_id=holder_id).json
    assert listed["valid_taxpayers"] == ["11234567890123"]
    assert "may file today" in tamga("ca", "poa", "list", holder_id).stdout

    revoked = tamga("ca", "poa", "revoke", power_id, "--note", "договор расторгнут")
    assert f"revoked power {power_id}" in revoked.stdout and "revoked today" in revoked.stdout
    _refused(tamga("ca", "poa", "revoke", power_id, "--note", "again", check=False),
             "revoked already")  # fmt: skip
    assert "for: none" in tamga("ca", "poa", "list", holder_id).stdout


def test_clients_grant(tamga: Any, api: Api) -> None:
    created = tamga("clients", "create", "--name", "второй портал", "--role", "portal").stdout
    token = created.strip().splitlines()[-1]
    _refused(tamga("clients", "grant", "второй портал", "--inn", INN, check=False),
             "no subscriber")  # fmt: skip
    tamga("ca", "subscriber", "add", *COMPANY, "--email", "office@alatoo.kg")
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/v1/subscribers/{INN}"
    assert api.app.test_client().get(path, headers=headers).status_code == 404

    granted = tamga("clients", "grant", "второй портал", "--inn", INN).stdout.strip()
    assert re.fullmatch(rf"granted client \d+ \(второй портал\) subscriber {INN} \({NAME}\)",
                        granted), granted  # fmt: skip
    assert api.app.test_client().get(path, headers=headers).json["name"] == NAME
    again = tamga("clients", "grant", "второй портал", "--inn", INN).stdout
    assert again.startswith("already in scope:")
    _refused(tamga("clients", "grant", "nobody", "--inn", INN, check=False), "no client")
    _refused(tamga("clients", "grant", "officer", "--inn", INN, check=False), "officer client")

"""Fixtures for the CA registry and certificate lifecycle tests (issue #4).

``ca_api`` is the Flask app over a real database and SoftHSM, with the CA hierarchy made at
``CA_NOW``, a movable clock, and three API clients: ``officer``, ``portal`` (company A's
portal client) and ``portal_b`` (another portal client, scoped to other subscribers).
"""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import billing
from ca import ensure_hierarchy
from ca.tsa import ensure_tsa
from signing_api.app import create_app
from signing_api.clients import create_client
from signing_api.mail import MailSink, read_mailbox
from signing_api.runtime import Runtime

CA_NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Monday, 12:00 in Bishkek
CA_URL = "http://127.0.0.1:8000"
CLIENTS = ("officer", "portal", "portal_b")
_RECEIPTS = itertools.count(1)


class Clock:
    """A callable clock the app reads through its runtime (``runtime.clock``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class CaApi:
    client: FlaskClient
    runtime: Runtime
    clock: Clock
    mailbox: Path
    tokens: dict[str, str] = field(default_factory=dict)
    client_ids: dict[str, int] = field(default_factory=dict)

    def mails(self, recipient: str | None = None) -> list[str]:
        """Bodies of the messages the mail sink received (to ``recipient``), oldest first."""
        return [m.get_content() for m in read_mailbox(self.mailbox, recipient)]

    def activation_code(self, serial: str) -> str:
        """The newest activation code mailed for ``serial``, as the holder reads it."""
        for body in reversed(self.mails()):
            found = _CODE.search(body)
            if found and f"certificate: {serial}" in body:
                return found.group(1)
        raise AssertionError(f"no activation code was mailed for {serial}")

    def activate(self, serial: str, pin: str, who: str = "portal") -> str:
        """The holder activates with the code from its mailbox: the otpauth URI."""
        done = self.post(
            f"/api/v1/certificates/{serial}/activation",
            {"activation_code": self.activation_code(serial), "pin": pin},
            who=who,
        )
        assert done.status_code == 201, done.json
        uri: str = done.json["otpauth_uri"]
        return uri

    def headers(
        self, who: str | None, holder: int | None = None, extra: dict[str, str] | None = None
    ) -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        if holder is not None:
            found["X-Tamga-Holder"] = str(holder)
        return {**found, **(extra or {})}

    def get(
        self, path: str, who: str | None = "officer", holder: int | None = None, **query: Any
    ) -> Any:
        return self.client.get(path, headers=self.headers(who, holder), query_string=query)

    def post(
        self,
        path: str,
        body: Any = None,
        who: str | None = "officer",
        holder: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.client.post(
            path, json=body if body is not None else {}, headers=self.headers(who, holder, headers)
        )

    def pay(self, account: str, amount: int, channel: str = "cash") -> billing.Receipt:
        """Money reaches ``account`` (an INN or a payment account) through the cash desk."""
        with self.runtime.transaction() as session:
            return billing.record_payment(
                session,
                channel=channel,
                provider="",
                external_id=f"test-{next(_RECEIPTS)}-{account}",
                account=account,
                amount=amount,
                paid_at=self.clock.now,
                now=self.clock.now,
                actor="test",
            )


_CODE = re.compile(r"Activation code: ([0-9A-Z-]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[MailSink]:
    """The development SMTP sink on a free port, writing ``tmp_path/mail/*.eml``."""
    with MailSink(tmp_path / "mail", "127.0.0.1", free_port()) as sink:
        yield sink


@pytest.fixture
def ca_api(runtime: Runtime, mail_sink: MailSink) -> CaApi:
    """The app with the hierarchy made at ``CA_NOW``, the three clients and a mail sink."""
    runtime.config = replace(runtime.config, smtp_url=mail_sink.url)
    app: Flask = create_app(runtime.config)
    app.extensions["tamga"] = runtime
    clock = Clock(CA_NOW)
    app.extensions["tamga"].clock = clock
    api = CaApi(app.test_client(), runtime, clock, mail_sink.directory)
    with runtime.transaction() as session:
        ensure_hierarchy(session, runtime.ca_token, public_url=CA_URL, now=CA_NOW)
        ensure_tsa(session, runtime.ca_token, public_url=CA_URL, now=CA_NOW, actor="test")
        for name in CLIENTS:
            role = "officer" if name == "officer" else "portal"
            made = create_client(session, name=name, role=role, now=CA_NOW, actor="test")
            api.tokens[name] = made.token
            api.client_ids[name] = made.client_id
    return api


SUBSCRIBER = {
    "inn": "01234567890123",
    "name": 'ОсОО "Тест"',
    "legal_form": "ОсОО",
    "locality": "Бишкек",
    "email": "office@test.kg",
}
HOLDER = {
    "full_name": "Проверкина Проверка Проверковна",
    "position": "Руководитель",
    "passport_series": "ID1234567",
    "email": "head@test.kg",
    "phone": "+996555123456",
}


def register(
    api: CaApi,
    *,
    inn: str = SUBSCRIBER["inn"],
    name: str = SUBSCRIBER["name"],
    grant_to: str | None = "portal",
    verified: bool = True,
    **holder: str,
) -> int:
    """A subscriber (made once) and a new holder through the registry service; the holder id.

    ``grant_to`` puts the subscriber in that client's scope. ``verified``: an officer checked
    the holder's documents at the office (§3.3), which a certificate needs.
    """
    from ca.models import Subscriber
    from ca.registry import create_holder, create_subscriber, verify_holder
    from signing_api.clients import ClientSubscriber

    with api.runtime.transaction() as session:
        if session.get(Subscriber, inn) is None:
            create_subscriber(
                session, {**SUBSCRIBER, "inn": inn, "name": name}, now=api.clock.now, actor="test"
            )
        if (
            grant_to is not None
            and session.get(ClientSubscriber, (api.client_ids[grant_to], inn)) is None
        ):
            session.add(
                ClientSubscriber(
                    client_id=api.client_ids[grant_to],
                    inn=inn,
                    granted_at=api.clock.now,
                    granted_by="test",
                )
            )
        row = create_holder(
            session, {**HOLDER, **holder, "inn": inn}, now=api.clock.now, actor="test"
        )
        if verified:
            verify_holder(
                session, row.id, document="office file 1", now=api.clock.now, actor="officer"
            )
        return row.id

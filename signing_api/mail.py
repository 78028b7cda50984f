"""Mail: deliver the outbox through a real SMTP client, and the development mail sink.

``deliver`` takes pending messages of ``db.outbox`` (all, or the ones a request just wrote),
sends each through ``TAMGA_SMTP_URL`` with :mod:`smtplib`, and marks it sent, which erases its
body. A failure is recorded on the message and retried by the next ``tamga mail send``; it never
fails the request that wrote the message.

``MailSink`` is the development SMTP server (aiosmtpd): every message it accepts becomes one
``.eml`` file under ``$TAMGA_HOME/mail/``, which a person opens in any mail reader and a test
parses with :mod:`email`. ``make run`` starts it (``tamga mail sink``); production points
``TAMGA_SMTP_URL`` at the operator's relay instead.
"""

from __future__ import annotations

import email.policy
import logging
import os
import smtplib
import ssl
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from itertools import count
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from db import outbox

__all__ = ["Delivery", "MailSink", "deliver", "read_mailbox"]

log = logging.getLogger(__name__)
_TIMEOUT = 10.0


@dataclass(frozen=True)
class Delivery:
    sent: int
    failed: int


def _connect(url: str) -> smtplib.SMTP:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, parts.port or 465, timeout=_TIMEOUT, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=_TIMEOUT)
        if parts.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
    if parts.username:
        client.login(
            urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
        )
    return client


def _message(sender: str, item: outbox.Message, now: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = item.recipient
    msg["Subject"] = item.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="tamga.localhost")
    msg.set_content(item.body, cte="quoted-printable")  # ASCII lines stay readable
    return msg


def deliver(
    transaction: Callable[[], AbstractContextManager[Session]],
    *,
    smtp_url: str,
    sender: str,
    now: datetime,
    ids: list[int] | None = None,
    limit: int = 50,
) -> Delivery:
    """Send pending messages (``ids``: only those); each is marked sent or failed."""
    sent = failed = 0
    with transaction() as session:
        pending = outbox.claim_pending(session, limit=limit, ids=ids)
        if not pending:
            return Delivery(0, 0)
        try:
            client = _connect(smtp_url)
        except (OSError, smtplib.SMTPException) as ex:
            for item in pending:
                outbox.mark_failed(session, item.id, error=f"connect: {ex}")
            log.warning("mail: cannot reach %s: %s", _safe(smtp_url), ex)
            return Delivery(0, len(pending))
        with client:
            for item in pending:
                try:
                    client.send_message(_message(sender, item, now))
                except (OSError, smtplib.SMTPException) as ex:
                    outbox.mark_failed(session, item.id, error=str(ex))
                    failed += 1
                else:
                    outbox.mark_sent(session, item.id, now=now)
                    sent += 1
    return Delivery(sent, failed)


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port or ''}"


class _SinkHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._numbers = count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now().strftime('%Y%m%dT%H%M%S%f')}-{os.getpid()}-{next(self._numbers)}"
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, self.directory / f"{name}.eml")  # readers never see half a message
        return "250 Message accepted for delivery"


class MailSink:
    """The development SMTP server: each message becomes ``<directory>/<time>-<n>.eml``."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 8025) -> None:
        from aiosmtpd.controller import Controller

        self.directory = directory
        self._controller = Controller(_SinkHandler(directory), hostname=host, port=port)
        self.host, self.port = host, port

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_mailbox(directory: Path, recipient: str | None = None) -> Iterator[EmailMessage]:
    """The messages a sink wrote, oldest first (``recipient``: only those to that address)."""
    for path in sorted(directory.glob("*.eml")):
        with path.open("rb") as handle:
            parsed = email.message_from_binary_file(handle, policy=email.policy.default)
        if not isinstance(parsed, EmailMessage):
            continue
        if recipient is None or recipient.lower() in str(parsed["To"]).lower():
            yield parsed

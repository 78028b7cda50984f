"""``tamga mail send|sink``: the outbox's delivery, and the development mail sink.

``send`` hands every pending message to ``TAMGA_SMTP_URL`` (run it from a timer in production:
what a request could not deliver at once waits in the outbox). ``sink`` is the development SMTP
server that ``make run`` starts: each message becomes an ``.eml`` file under
``$TAMGA_HOME/mail/``.
"""

from __future__ import annotations

import signal
import threading
import urllib.parse

import click

from signing_api.cli import root

__all__: list[str] = []


@root.cli.group()
def mail() -> None:
    """Mail: deliver the outbox; the development mail sink."""


@mail.command("send")
@click.option("--limit", default=500, show_default=True, type=click.IntRange(1, 10_000))
def send(limit: int) -> None:
    """Deliver pending outbox messages through TAMGA_SMTP_URL."""
    from signing_api.mail import deliver

    rt = root.open_runtime()
    done = deliver(
        rt.transaction, smtp_url=rt.config.smtp_url, sender=rt.config.mail_from,
        now=root.now(), limit=limit,
    )  # fmt: skip
    click.echo(f"sent {done.sent}, failed {done.failed}")
    if done.failed:
        raise click.ClickException(f"{done.failed} message(s) not delivered; they stay queued")


@mail.command("sink")
@click.option("--listen", default=None, help="host:port (default: the one in TAMGA_SMTP_URL)")
def sink(listen: str | None) -> None:
    """Run the development SMTP sink: every message → $TAMGA_HOME/mail/<time>.eml."""
    from signing_api.mail import MailSink

    config = root.load_config()
    if listen is None:
        parts = urllib.parse.urlsplit(config.smtp_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 25
    else:
        host, _, port_text = listen.rpartition(":")
        if not port_text.isascii() or not port_text.isdigit():
            raise click.BadParameter("host:port", param_hint="--listen")
        port = int(port_text)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with MailSink(config.mail_dir, host or "127.0.0.1", port):
        click.echo(f"mail sink on smtp://{host}:{port}, writing {config.mail_dir}/", err=True)
        stop.wait()

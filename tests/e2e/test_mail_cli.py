"""``tamga mail sink|send`` and ``tamga ca activation-code``: the holder's code leaves by SMTP.

Real subprocesses: the development sink (``tamga mail sink``, what ``make run`` starts), the
officer's console issuing a cloud certificate while the mail server is down (the code waits in
the outbox), ``tamga mail send`` delivering it once the sink is up, and a new code on request.
The code is read from the ``.eml`` file as the holder's mail reader would.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from db.outbox import OutboxMail
from signing_api.config import Config
from signing_api.mail import read_mailbox
from signing_api.runtime import Runtime
from tests.ca_fixtures import free_port
from tests.e2e.test_ca_cli import INN, _pay
from tests.tamga_fixtures import TAMGA, RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

_CODE = re.compile(r"Activation code: ([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})")


def _outbox(home: Path, smtp: str) -> list[tuple[str | None, int]]:
    with Runtime(Config.from_env(tamga_env(home, TAMGA_SMTP_URL=smtp))).transaction() as s:
        return [(r.body, r.attempts) for r in s.scalars(select(OutboxMail).order_by(OutboxMail.id))]


def test_codes_wait_in_the_outbox_until_the_sink_takes_them(
    run_tamga: RunTamga, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    smtp = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there yet

    def tamga(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(home, *args, check=check, env={"TAMGA_SMTP_URL": smtp})

    tamga("init")
    tamga("ca", "subscriber", "add", "--inn", INN, "--name", 'ОсОО "Тест"', "--legal-form",
          "ОсОО", "--locality", "Бишкек", "--email", "office@test.kg")  # fmt: skip
    holder = json.loads(
        tamga("ca", "holder", "add", "--inn", INN, "--full-name", "Асанова Айгуль",
              "--position", "Директор", "--passport-series", "ID1234567", "--email",
              "aigul@test.kg", "--phone", "+996555123456", "--identity-document",
              "office file 7", "--json").stdout
    )["id"]  # fmt: skip
    issue = ["ca", "issue", "--holder", str(holder), "--role", "head", "--storage", "cloud"]
    account = tamga(*issue, check=False).stderr.split("payment account ")[1][:16]
    _pay(home, account, 1510_00)
    issued = tamga(*issue)
    assert "activation code (activate) mailed to the holder at a***@test.kg" in issued.stdout
    assert "tamga mail send" in issued.stderr  # the server was down: it says so
    serial = issued.stdout.split()[1]
    [(body, attempts)] = _outbox(home, smtp)
    assert body is not None and attempts == 1  # queued, with its failed attempt
    down = tamga("mail", "send", check=False)
    assert down.returncode == 1 and "not delivered" in down.stderr

    sink = subprocess.Popen(
        [TAMGA, "mail", "sink"], env=tamga_env(home, TAMGA_SMTP_URL=smtp),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while (sent := tamga("mail", "send", check=False)).returncode != 0:
            assert sink.poll() is None, sink.communicate()
            assert time.monotonic() < deadline, sent.stderr
            time.sleep(0.3)
        assert "sent 1, failed 0" in sent.stdout
        again = json.loads(tamga("ca", "activation-code", serial, "--json").stdout)
        assert again["purpose"] == "activate" and again["sent_to"] == "a***@test.kg"
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    mails = list(read_mailbox(home / "mail", "aigul@test.kg"))
    assert len(mails) == 2
    codes = [_CODE.search(m.get_content()) for m in mails]
    assert all(codes) and all(serial in m.get_content() for m in mails)
    assert codes[0] and codes[1] and codes[0].group(1) != codes[1].group(1)
    assert mails[0]["From"] == "Tamga <noreply@tamga.localhost>"
    # Delivered: the outbox keeps the envelopes, never the codes.
    assert [body for body, _ in _outbox(home, smtp)] == [None, None]
    assert tamga("ca", "activation-code", "ffff", check=False).returncode == 1

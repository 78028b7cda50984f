"""The commission's page in a real browser against a real server: Debian's ``chromium --headless``
driven over the DevTools protocol, ``tamga serve`` (gunicorn) on a home made by ``tamga init``.

A RuToken holder's certificate is issued from a CSR at the console and the document is signed by
``openssl cms -sign`` (a key Tamga never had); the CRLs are published after the signature. The
browser opens ``/disputes/``, chooses the two files in the form, submits, and the result page is
photographed: the screenshot is not blank and shows the green verdict. Then the browser presses
"Download the PDF report" (the page re-posts the files) and the downloaded PDF, read by
``pdftotext``, is the commission's report in Russian. The page must load with no console error
(a script or style the Content-Security-Policy blocks would be one).

The screenshot is kept as ``disputes-result.png`` in the test's temporary directory, and copied
to ``$TAMGA_SCREENSHOT_DIR`` when that is set.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

import billing
from signing_api.config import Config
from signing_api.runtime import Runtime
from tests.e2e.serving import free_port, tamga_serve
from tests.tamga_fixtures import RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

INN = "01234567890123"
DOCUMENT = "<report form='STI-091' period='2026-10'>НДС к уплате: 12 345,67 сом</report>".encode()
GREEN = (0x1B, 0x7F, 0x3B)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: make system-packages installs it")
    return path


def _pay(home: Path, account: str, amount: int, receipt: str) -> None:
    with Runtime(Config.from_env(tamga_env(home))).transaction() as session:
        billing.record_payment(
            session, channel="cash", provider="", external_id=receipt, account=account,
            amount=amount, paid_at=datetime.now(UTC), now=datetime.now(UTC), actor="test",
        )  # fmt: skip


def _signed(run_tamga: RunTamga, home: Path, tmp: Path) -> tuple[Path, Path]:
    """A head's RuToken certificate from the console, and ``openssl cms -sign`` of DOCUMENT."""
    subscriber = ["--inn", INN, "--name", 'ОсОО "Ала-Тоо"', "--legal-form", "ОсОО",
                  "--locality", "Бишкек", "--email", "office@test.kg"]  # fmt: skip
    run_tamga(home, "ca", "subscriber", "add", *subscriber)
    person = ["--inn", INN, "--full-name", "Асанова Айгуль Бакытовна", "--position", "Директор",
              "--passport-series", "ID1234567", "--email", "head@test.kg", "--phone",
              "+996555123456", "--identity-document", "office file 2026/7"]  # fmt: skip
    holder = json.loads(run_tamga(home, "ca", "holder", "add", *person, "--json").stdout)["id"]
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token")]))
        .sign(key, hashes.SHA256())
    )
    (tmp / "token.csr").write_bytes(csr.public_bytes(serialization.Encoding.DER))
    issue = ["ca", "issue", "--holder", str(holder), "--role", "head", "--storage", "rutoken",
             "--csr", str(tmp / "token.csr"), "-o", str(tmp / "head.pem")]  # fmt: skip
    unpaid = run_tamga(home, *issue, check=False)
    assert unpaid.returncode == 1 and "payment account" in unpaid.stderr, unpaid.stderr
    _pay(home, unpaid.stderr.split("payment account ")[1][:16], 1200_00, "К-1")
    run_tamga(home, *issue)
    (tmp / "head.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    document = tmp / "nds-2026-10.xml"
    document.write_bytes(DOCUMENT)
    signature = tmp / "nds-2026-10.xml.p7s"
    subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-in", document,
         "-signer", tmp / "head.pem", "-inkey", tmp / "head.key", "-outform", "DER",
         "-out", signature],
        check=True, capture_output=True,
    )  # fmt: skip
    time.sleep(1.1)  # the CRLs' thisUpdate falls in a later second than the signing-time
    run_tamga(home, "crl", "publish")
    return document, signature


# --- the browser ----------------------------------------------------------------------------------


@contextmanager
def chromium(tmp: Path) -> Iterator[str]:
    """``chromium --headless`` with its DevTools endpoint; yields the endpoint's base URL."""
    port = free_port()
    profile = tmp / "chromium-profile"
    log = (tmp / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [_tool("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--hide-scrollbars", "--window-size=1280,1400",
         f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/json/version", timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "chromium did not start:\n" + (tmp / "chromium.log").read_text()
                    ) from None
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


class Page:
    """One tab over the DevTools protocol: commands, and the events they cause."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        sent = self.next_id
        await self.socket.send_json({"id": sent, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.socket.receive_json(), 60)
            if message.get("id") == sent:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    async def until(self, event: str, timeout: float = 60) -> dict[str, Any]:
        for index, seen in enumerate(self.events):
            if seen.get("method") == event:
                return self.events.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {event} within {timeout} s"
            message = await asyncio.wait_for(self.socket.receive_json(), left)
            if message.get("method") == event:
                return dict(message)
            self.events.append(message)

    async def evaluate(self, expression: str) -> Any:
        done = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return done["result"].get("value")

    async def choose(self, selector: str, path: Path) -> None:
        root = await self.send("DOM.getDocument")
        found = await self.send(
            "DOM.querySelector", nodeId=root["root"]["nodeId"], selector=selector
        )
        assert found["nodeId"], selector
        await self.send("DOM.setFileInputFiles", nodeId=found["nodeId"], files=[str(path)])

    async def click_and_load(self, selector: str) -> None:
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        await self.until("Page.loadEventFired")


async def _drive(
    devtools: str, site: str, document: Path, signature: Path, out: Path
) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{devtools}/json/new?about:blank") as made:
            target = await made.json()
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            page = Page(socket)
            for domain in ("Page", "Runtime", "Log", "DOM"):
                await page.send(f"{domain}.enable")
            await page.send(
                "Browser.setDownloadBehavior", behavior="allow", downloadPath=str(out),
                eventsEnabled=True,
            )  # fmt: skip
            await page.send("Page.navigate", url=f"{site}/disputes/")
            await page.until("Page.loadEventFired")
            await page.choose("#signed", signature)
            await page.choose("#document", document)
            await page.click_and_load("form.upload button[type=submit]")
            location = await page.evaluate("location.pathname")
            verdict = await page.evaluate(
                "getComputedStyle(document.querySelector('section.verdict')).backgroundColor"
            )
            text = await page.evaluate("document.body.innerText")
            size = (await page.send("Page.getLayoutMetrics"))["cssContentSize"]
            whole = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = await page.send(
                "Page.captureScreenshot", format="png", clip=whole, captureBeyondViewport=True
            )
            await page.evaluate("document.querySelector('form.download button').click()")
            finished: dict[str, Any] = {}
            while finished.get("params", {}).get("state") != "completed":
                finished = await page.until("Browser.downloadProgress")
                assert finished["params"]["state"] != "canceled", finished
            errors = [
                e["params"]["entry"]
                for e in page.events
                if e.get("method") == "Log.entryAdded"
                and e["params"]["entry"]["level"] == "error"
                and not e["params"]["entry"].get("url", "").endswith("/favicon.ico")
            ]
            return {
                "location": location, "verdict": verdict, "text": text, "shot": shot["data"],
                "errors": errors,
            }  # fmt: skip


def test_a_commission_checks_a_signature_in_the_browser(
    run_tamga: RunTamga, tmp_path: Path
) -> None:
    import base64

    home = tmp_path / "home"
    run_tamga(home, "init")
    document, signature = _signed(run_tamga, home, tmp_path)
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = tamga_env(home, TAMGA_BIND=f"127.0.0.1:{port}", TAMGA_WORKERS="1", TAMGA_PUBLIC_URL=site)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with tamga_serve(env, port, tmp_path / "serve.log"), chromium(tmp_path) as devtools:
        seen = asyncio.run(_drive(devtools, site, document, signature, downloads))

    shot = tmp_path / "disputes-result.png"
    shot.write_bytes(base64.b64decode(seen["shot"]))
    if keep := os.environ.get("TAMGA_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(keep) / shot.name)
    assert seen["location"] == "/disputes/verify"
    assert "TOTAL-PASSED" in seen["text"], seen["text"][:3000]
    assert seen["verdict"] == "rgb(27, 127, 59)"  # the CSS arrived: CSP let the style sheet in
    assert "Асанова Айгуль Бакытовна" in seen["text"]
    assert hashlib.sha256(DOCUMENT).hexdigest() in seen["text"]
    assert seen["errors"] == [], seen["errors"]

    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        data = rgb.tobytes()
    pixels = [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]
    assert len(set(pixels)) > 50, "the screenshot is blank"
    green = sum(1 for p in pixels if all(abs(a - b) <= 6 for a, b in zip(p, GREEN, strict=True)))
    assert green > 10_000, f"only {green} pixels of the verdict's green"

    [pdf] = list(downloads.glob("*.pdf"))
    assert re.fullmatch(r"dispute-report-[0-9a-f]{12}\.pdf", pdf.name), pdf.name
    text = subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True
    ).stdout.decode("utf-8")
    flat = re.sub(r"\s+", " ", text)
    assert "Заключение о проверке электронной подписи (§8)" in flat
    assert "TOTAL-PASSED" in flat and "подпись подлинная" in flat
    assert "Асанова Айгуль Бакытовна" in flat

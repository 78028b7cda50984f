"""The agency gateway stub (agency_stub, ``tamga-agency``) as a real process, checked from outside:
receipts and check results verify with ``openssl cms -verify`` against the agency's own root,
idempotency holds across a restart, the controls do what docs/agency-protocol.md says.

A small local HTTP receiver stands in for Tamga's ``/api/v1/agency-results``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from agency_stub.results import backoff
from agency_stub.testing import RunningStub, command, running_stub
from tests.e2e.serving import free_port

pytestmark = pytest.mark.slow

RECEIPT_FIELDS = [
    "type",
    "report_id",
    "agency",
    "office",
    "document_sha256",
    "received_at",
    "registration_number",
]
RESULT_FIELDS = ["type", "report_id", "agency", "result", "message", "checked_at"]


# --- Tamga's side, as far as these tests need it -------------------------------------------


@dataclass
class Receiver:
    """Records every POST; answers with the scripted statuses in turn, then 200."""

    statuses: list[int] = field(default_factory=list)
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def results(self) -> list[bytes]:
        with self.lock:
            return [body for _, _, body in self.posts]

    def wait_for(self, count: int, timeout: float = 20) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.results()) < count:
            assert time.monotonic() < deadline, f"{len(self.results())} posts, not {count}"
            time.sleep(0.05)
        return self.results()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.posts.append((self.path, self.headers["Content-Type"], body))
                state.times.append(time.monotonic())
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub(tmp_path: Path, receiver: tuple[Receiver, str]) -> Iterator[RunningStub]:
    with running_stub(
        tmp_path / "agency", free_port(), receiver[1], tmp_path / "agency.log"
    ) as running:
        yield running


@dataclass(frozen=True)
class Filer:
    """A company's signer, enough to make CMS the stub parses (it does not verify them)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def detached(self, data: bytes) -> bytes:
        return self._builder(data).sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )

    def attached(self, data: bytes) -> bytes:
        return self._builder(data).sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])

    def _builder(self, data: bytes) -> pkcs7.PKCS7SignatureBuilder:
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(data)
            .add_signer(self.certificate, self.key, hashes.SHA256())
        )


@pytest.fixture(scope="module")
def filer() -> Filer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test head")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return Filer(key, certificate)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def delivery(filer: Filer, report_id: str, document: bytes = b"%PDF-1.7 report") -> dict[str, Any]:
    return {
        "report_id": report_id,
        "agency": "tax",
        "office": "003",
        "inn": "01234567890123",
        "kind": "STI-001",
        "period": "2026-11",
        "document": b64(document),
        "document_sha256": hashlib.sha256(document).hexdigest(),
        "signatures": [b64(filer.detached(document)), b64(filer.detached(document))],
        "dispatch_confirmation": b64(filer.attached(b'{"type":"dispatch"}')),
    }


def put(
    stub: RunningStub, report_id: str, body: Any, content_type: str = "application/json"
) -> tuple[int, str, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the local stub
        f"{stub.url}/reports/{report_id}",
        data=data,
        method="PUT",
        headers={"Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as ex:
        return ex.code, ex.headers["Content-Type"], ex.read()


def verify_argv(path: Path, root: Path) -> list[str]:
    return ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(path), "-CAfile", str(root)]


def openssl_verified(cms: bytes, root: Path, tmp_path: Path, *purpose: str) -> dict[str, Any]:
    """The eContent of ``cms`` as ``openssl cms -verify`` prints it, parsed as JSON."""
    path = tmp_path / f"{uuid.uuid4()}.der"
    path.write_bytes(cms)
    out = subprocess.run(
        [*verify_argv(path, root), *purpose],
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert b"Verification successful" in out.stderr
    value: dict[str, Any] = json.loads(out.stdout.decode("utf-8"))
    return value


def signer_pem(cms: bytes, root: Path, tmp_path: Path) -> bytes:
    path, signer = tmp_path / "signed.der", tmp_path / "signer.pem"
    path.write_bytes(cms)
    subprocess.run(
        [*verify_argv(path, root), "-purpose", "any", "-signer", str(signer), "-out", "/dev/null"],
        capture_output=True,
        check=True,
    )
    return signer.read_bytes()


def reported(stub: RunningStub, report_id: str) -> dict[str, Any]:
    [row] = [row for row in stub.reports() if row["report_id"] == report_id]
    return row


def wait_status(
    stub: RunningStub, report_id: str, status: str, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (row := reported(stub, report_id))["result_status"] != status:
        assert time.monotonic() < deadline, row
        time.sleep(0.05)
    return row


# --- delivery and receipts ------------------------------------------------------------------


def test_receipt_is_encapsulated_cms_that_openssl_verifies_and_a_replay_is_the_same_bytes(
    stub: RunningStub, filer: Filer, tmp_path: Path
) -> None:
    report_id = str(uuid.uuid4())
    body = delivery(filer, report_id)
    status, content_type, receipt = put(stub, report_id, body)
    assert status == 200, receipt
    assert content_type == "application/pkcs7-mime; smime-type=signed-data"

    content = openssl_verified(receipt, stub.root_pem_path, tmp_path, "-purpose", "any")
    assert openssl_verified(receipt, stub.root_pem_path, tmp_path) == content  # S/MIME purpose
    assert list(content) == RECEIPT_FIELDS
    assert content["type"] == "delivery-receipt"
    assert content["report_id"] == report_id
    assert content["agency"] == "tax"
    assert content["office"] == "003"
    assert content["document_sha256"] == body["document_sha256"]
    assert re.fullmatch(r"TAX-\d{4}-000001", content["registration_number"])
    received = dt.datetime.fromisoformat(content["received_at"])
    assert received.utcoffset() == dt.timedelta(0)
    assert content["received_at"].endswith("Z")
    assert abs(dt.datetime.now(dt.UTC) - received) < dt.timedelta(minutes=5)

    # the receipt is signed by the certificate /receipt-certificate and `tamga-agency cert` give
    published = stub.receipt_certificate_pem()
    printed = subprocess.run(
        [*command(), "cert", "--home", str(stub.home)], capture_output=True, check=True
    ).stdout
    assert signer_pem(receipt, stub.root_pem_path, tmp_path) == published == printed
    root = subprocess.run(
        [*command(), "ca-cert", "--home", str(stub.home)], capture_output=True, check=True
    ).stdout
    assert root == stub.root_pem_path.read_bytes()
    with urllib.request.urlopen(stub.url + "/ca-certificate", timeout=30) as answer:  # noqa: S310
        assert answer.read() == root
    certificate = x509.load_pem_x509_certificate(published)
    assert certificate.subject.rfc4514_string().startswith("CN=State Tax Service receipts")
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    for key in ("root-ca-key.pem", "receipt-key.pem"):
        assert (stub.home / key).stat().st_mode & 0o777 == 0o600

    assert put(stub, report_id, body) == (200, content_type, receipt)
    second_id = str(uuid.uuid4())
    status, _, second = put(stub, second_id, delivery(filer, second_id))
    assert status == 200
    assert openssl_verified(second, stub.root_pem_path, tmp_path)["registration_number"] == (
        content["registration_number"][:-1] + "2"
    )
    row = reported(stub, report_id)
    assert row["times_received"] == 2
    assert row["registration_number"] == content["registration_number"]
    assert row["document_sha256"] == body["document_sha256"]


def test_the_same_report_id_with_another_document_is_409(stub: RunningStub, filer: Filer) -> None:
    report_id = str(uuid.uuid4())
    status, _, receipt = put(stub, report_id, delivery(filer, report_id))
    assert status == 200
    status, content_type, answer = put(stub, report_id, delivery(filer, report_id, b"other"))
    assert status == 409
    assert content_type == "application/problem+json"
    assert "document_sha256" in json.loads(answer)["detail"]
    assert put(stub, report_id, delivery(filer, report_id))[2] == receipt
    row = reported(stub, report_id)
    assert (row["times_received"], row["conflicting_puts"]) == (2, 1)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"document": "not base64!"}, "document is not valid base64"),
        ({"document": "QUJD"}, "does not hash to document_sha256"),
        ({"document_sha256": "ab" * 31}, "64 hexadecimal"),
        ({"inn": "123"}, "inn must be 14 digits"),
        ({"period": "2026-13"}, "period"),
        ({"agency": "social-fund"}, "this gateway is agency 'tax'"),
        ({"report_id": "00000000-0000-4000-8000-000000000000"}, "differs"),
        ({"signatures": []}, "signatures must be a non-empty list"),
        ({"signatures": ["QUJD"]}, "signatures[0] is not a DER CMS SignedData"),
        ({"dispatch_confirmation": None}, "dispatch_confirmation must be"),
        ({"kind": None}, "kind must be"),
    ],
)
def test_a_malformed_delivery_is_400_and_registers_nothing(
    stub: RunningStub, filer: Filer, change: dict[str, Any], words: str
) -> None:
    report_id = str(uuid.uuid4())
    status, content_type, answer = put(stub, report_id, {**delivery(filer, report_id), **change})
    assert (status, content_type) == (400, "application/problem+json"), answer
    assert words in json.loads(answer)["detail"]
    assert stub.reports() == []


def test_a_body_that_is_not_a_report_is_400_or_415(stub: RunningStub, filer: Filer) -> None:
    report_id = str(uuid.uuid4())
    assert put(stub, report_id, b"{not json")[0] == 400
    assert put(stub, report_id, b"[]")[0] == 400
    body = delivery(filer, report_id)
    del body["signatures"]
    assert b"missing fields: signatures" in put(stub, report_id, body)[2]
    assert put(stub, "not-a-uuid", delivery(filer, "not-a-uuid"))[0] == 400
    assert put(stub, report_id, delivery(filer, report_id), "text/plain")[0] == 415
    assert stub.reports() == []


# --- the controls ---------------------------------------------------------------------------


def test_down_error_and_slow(stub: RunningStub, filer: Filer, tmp_path: Path) -> None:
    defaults = stub.control()
    assert defaults["mode"] == "up"
    report_id = str(uuid.uuid4())
    body = delivery(filer, report_id)

    assert stub.control(mode="down")["mode"] == "down"
    status, content_type, _ = put(stub, report_id, body)
    assert (status, content_type) == (503, "application/problem+json")
    with urllib.request.urlopen(stub.url + "/healthz", timeout=30) as health:  # noqa: S310
        assert json.loads(health.read()) == {"status": "ok", "agency": "tax", "mode": "down"}
    stub.control(mode="error")
    assert put(stub, report_id, body)[0] == 500
    assert stub.reports() == []  # neither registered anything

    stub.control(mode="slow", delay=2.5)
    answered: list[tuple[int, str, bytes]] = []
    started = time.monotonic()
    slow = threading.Thread(target=lambda: answered.append(put(stub, report_id, body)))
    slow.start()
    # registered at once, answered later; meanwhile the server answers /reports and /control
    while not stub.reports():
        assert slow.is_alive()
        time.sleep(0.05)
    assert stub.control()["delay"] == 2.5
    assert answered == []
    slow.join(30)
    assert time.monotonic() - started >= 2.5
    [(status, _, receipt)] = answered
    assert status == 200
    openssl_verified(receipt, stub.root_pem_path, tmp_path)

    stub.control(mode="up")
    started = time.monotonic()
    assert put(stub, report_id, body)[2] == receipt
    assert time.monotonic() - started < 2.5


def test_bad_controls_are_400_and_change_nothing(stub: RunningStub) -> None:
    before = stub.control()
    for bad in (
        {"mode": "sideways"},
        {"check": "maybe"},
        {"delay": -1},
        {"check_delay": "1"},
        {"duplicate_results": 1},
        {"mode": "down", "colour": "red"},
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            stub.control(**bad)
        assert refused.value.code == 400
    assert stub.control() == before


# --- check results --------------------------------------------------------------------------


def test_an_accepted_check_result_is_posted_signed(
    stub: RunningStub, receiver: tuple[Receiver, str], filer: Filer, tmp_path: Path
) -> None:
    report_id = str(uuid.uuid4())
    assert put(stub, report_id, delivery(filer, report_id))[0] == 200
    [posted] = receiver[0].wait_for(1)
    [(path, content_type, _)] = receiver[0].posts
    assert path == "/api/v1/agency-results"
    assert content_type == "application/pkcs7-mime"
    result = openssl_verified(posted, stub.root_pem_path, tmp_path, "-purpose", "any")
    assert list(result) == RESULT_FIELDS
    assert result["type"] == "check-result"
    assert (result["report_id"], result["agency"]) == (report_id, "tax")
    assert (result["result"], result["message"]) == ("accepted", "")
    assert result["checked_at"].endswith("Z")
    assert signer_pem(posted, stub.root_pem_path, tmp_path) == stub.receipt_certificate_pem()
    row = wait_status(stub, report_id, "posted")
    assert row["result_posted"] is True
    assert (row["check"], row["result_posts"], row["last_result_status"]) == ("accepted", 1, 200)
    time.sleep(0.5)
    assert len(receiver[0].results()) == 1


def test_a_rejected_check_carries_the_message_and_duplicates_are_the_same_bytes(
    stub: RunningStub, receiver: tuple[Receiver, str], filer: Filer, tmp_path: Path
) -> None:
    message = "Форма СТИ-001: строка 040 не заполнена"
    stub.control(check="reject", reject_message=message, duplicate_results=True)
    report_id = str(uuid.uuid4())
    assert put(stub, report_id, delivery(filer, report_id))[0] == 200
    first, second = receiver[0].wait_for(2)
    assert first == second
    result = openssl_verified(first, stub.root_pem_path, tmp_path)
    assert (result["result"], result["message"]) == ("rejected", message)
    row = wait_status(stub, report_id, "posted")
    assert (row["check"], row["check_message"], row["result_posts"]) == ("rejected", message, 2)
    time.sleep(0.5)
    assert len(receiver[0].results()) == 2


def test_check_none_never_posts(
    stub: RunningStub, receiver: tuple[Receiver, str], filer: Filer
) -> None:
    stub.control(check="none")
    report_id = str(uuid.uuid4())
    assert put(stub, report_id, delivery(filer, report_id))[0] == 200
    time.sleep(1.5)
    assert receiver[0].results() == []
    row = reported(stub, report_id)
    assert (row["check"], row["result_status"], row["result_posted"]) == (None, "none", False)


def test_results_wait_for_check_delay_and_are_not_posted_while_down(
    stub: RunningStub, receiver: tuple[Receiver, str], filer: Filer
) -> None:
    stub.control(check_delay=2.5)
    report_id = str(uuid.uuid4())
    received = time.monotonic()
    assert put(stub, report_id, delivery(filer, report_id))[0] == 200
    stub.control(mode="down")
    time.sleep(3.5)
    assert receiver[0].results() == []
    assert reported(stub, report_id)["result_status"] == "pending"
    stub.control(mode="up")
    receiver[0].wait_for(1)
    assert time.monotonic() - received >= 2.5


def test_a_5xx_is_retried_until_a_2xx_and_a_422_is_given_up_after_a_few_attempts(
    stub: RunningStub, receiver: tuple[Receiver, str], filer: Filer
) -> None:
    receiver[0].statuses.extend([503, 500])
    first = str(uuid.uuid4())
    assert put(stub, first, delivery(filer, first))[0] == 200
    row = wait_status(stub, first, "posted")
    assert (row["result_attempts"], row["result_posts"]) == (3, 1)
    assert len(set(receiver[0].results())) == 1  # every retry sends the same signed bytes
    first_post, second_post, third_post = receiver[0].times
    assert second_post - first_post >= 0.2  # running_stub's retry_base
    assert third_post - second_post >= 0.4  # doubled

    receiver[0].statuses.extend([422] * 10)
    second = str(uuid.uuid4())
    assert put(stub, second, delivery(filer, second))[0] == 200
    row = wait_status(stub, second, "gave-up")
    assert (row["result_attempts"], row["result_posts"], row["last_result_status"]) == (3, 0, 422)
    time.sleep(1.0)
    assert len(receiver[0].results()) == 3 + 3  # the stub running_stub starts: max_refusals=3
    assert "giving up" in stub.log_path.read_text()


# --- restarts -------------------------------------------------------------------------------


def test_state_survives_a_restart(
    tmp_path: Path, receiver: tuple[Receiver, str], filer: Filer
) -> None:
    home, log = tmp_path / "agency", tmp_path / "agency.log"
    delivered, pending = str(uuid.uuid4()), str(uuid.uuid4())
    with running_stub(home, free_port(), receiver[1], log, check_delay=0) as first:
        status, _, receipt = put(first, delivered, delivery(filer, delivered))
        assert status == 200
        receiver[0].wait_for(1)
        first.control(check_delay=3, check="reject", reject_message="late")
        assert put(first, pending, delivery(filer, pending))[0] == 200
        root, certificate = first.root_pem_path.read_bytes(), first.receipt_certificate_pem()

    with running_stub(home, free_port(), receiver[1], log, check_delay=0) as second:
        assert second.root_pem_path.read_bytes() == root
        assert second.receipt_certificate_pem() == certificate
        assert put(second, delivered, delivery(filer, delivered)) == (
            200,
            "application/pkcs7-mime; smime-type=signed-data",
            receipt,
        )
        assert put(second, delivered, delivery(filer, delivered, b"changed"))[0] == 409
        row = reported(second, delivered)
        assert (row["times_received"], row["result_status"]) == (2, "posted")
        # the result decided before the restart is posted after it, as decided
        row = wait_status(second, pending, "posted")
        assert (row["check"], row["check_message"]) == ("rejected", "late")
        assert len(receiver[0].results()) == 2
        third = str(uuid.uuid4())
        assert put(second, third, delivery(filer, third))[0] == 200
        assert reported(second, third)["registration_number"].endswith("-000003")


def test_backoff_doubles_up_to_a_minute() -> None:
    assert [backoff(1.0, n) for n in (1, 2, 3, 4, 6, 7, 20)] == [1, 2, 4, 8, 32, 60, 60]


def test_another_agency_has_its_own_names_and_a_home_serves_one_agency(
    tmp_path: Path, receiver: tuple[Receiver, str], filer: Filer
) -> None:
    home = tmp_path / "social-fund"
    with running_stub(
        home, free_port(), receiver[1], tmp_path / "sf.log", agency="social-fund"
    ) as stub:
        report_id = str(uuid.uuid4())
        body = {**delivery(filer, report_id), "agency": "social-fund"}
        status, _, receipt = put(stub, report_id, body)
        assert status == 200
        content = openssl_verified(receipt, stub.root_pem_path, tmp_path)
        assert content["agency"] == "social-fund"
        assert re.fullmatch(r"SF-\d{4}-000001", content["registration_number"])
        certificate = x509.load_pem_x509_certificate(stub.receipt_certificate_pem())
        assert certificate.subject.rfc4514_string().startswith("CN=Social Fund receipts")
        result = openssl_verified(receiver[0].wait_for(1)[0], stub.root_pem_path, tmp_path)
        assert result["agency"] == "social-fund"

    refused = subprocess.run(
        [*command(), "cert", "--home", str(home), "--agency", "tax"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "holds the keys of agency 'social-fund', not 'tax'" in refused.stderr
    same = subprocess.run(
        [sys.executable, "-m", "agency_stub", "cert", "--home", str(home)],
        capture_output=True,
        check=True,
    )
    assert same.stdout == (home / "receipt.pem").read_bytes()

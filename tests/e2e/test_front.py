"""The production front: nginx (deploy/nginx/tamga.conf) before ``tamga serve``.

The attack (issue #12, finding 4): clients that send a request body a byte at a time. gunicorn's
gthread workers give each such request a thread until its body is complete, so 16 of them hold
all 2 x 4 threads and ``/healthz`` times out. nginx reads every body whole before it opens a
connection to gunicorn, so the same clients wait in nginx and gunicorn stays free.

One ``tamga serve`` (two workers, SQLite) and one nginx run for the module; nginx runs in the
foreground (``daemon off``) with a prefix, configuration and temporary directories of its own,
on a free port, with the repository's ``deploy/nginx/tamga.conf`` included as it is except for
its listen port and upstream address.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.serving import free_port
from tests.e2e.test_serve import _get
from tests.hsm_fixtures import REPO
from tests.tamga_fixtures import TAMGA, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
)
FRONT_CONF = REPO / "deploy" / "nginx" / "tamga.conf"
SLOW_CLIENTS = 16  # gunicorn has 2 workers x 4 threads: 8 would do if they spread evenly
SLOW_PATH = "/csc/v1/info"  # public, and it reads its (optional) JSON body


@dataclass(frozen=True)
class Front:
    nginx_port: int
    gunicorn_port: int
    home: Path
    serve_log: Path


def _wait_for(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if _get(f"http://127.0.0.1:{port}/healthz")[0] in (200, 503):
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start:\n" + log.read_text())
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def render_front(prefix: Path, listen_port: int, upstream: str) -> Path:
    """A whole nginx.conf for a non-daemon nginx under ``prefix``, including the repository's
    front with its listen port and upstream address replaced (each must occur exactly once)."""
    site = FRONT_CONF.read_text()
    for old, new in (
        ("    listen 80;\n", f"    listen 127.0.0.1:{listen_port};\n"),
        ("    server 127.0.0.1:8000;", f"    server {upstream};"),
    ):
        assert site.count(old) == 1, f"{FRONT_CONF} no longer has exactly one {old.strip()!r}"
        site = site.replace(old, new)
    (prefix / "tamga.conf").write_text(site)
    temp = {name: prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    # Run as root (CI), nginx would hand its workers to `nobody`, who cannot enter pytest's
    # private temporary directories.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        f"    access_log {prefix}/access.log;\n"
        f"    client_body_temp_path {temp['body']};\n"
        f"    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n"
        f"    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"    include {prefix}/tamga.conf;\n"
        "}\n"
    )
    return conf


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    if NGINX is None:
        pytest.skip("nginx is not installed: `make setup` installs Debian's nginx package")
    tmp = tmp_path_factory.mktemp("front")
    home = tmp / "home"
    database_url = f"sqlite:///{home / 'tamga.db'}"
    subprocess.run(
        [TAMGA, "init"],
        env=tamga_env(home, database_url),
        check=True,
        capture_output=True,
        timeout=120,
    )
    gunicorn_port, nginx_port = free_port(), free_port()
    env = tamga_env(
        home,
        database_url,
        TAMGA_BIND=f"127.0.0.1:{gunicorn_port}",
        TAMGA_WORKERS="2",
        TAMGA_PUBLIC_URL=f"http://127.0.0.1:{nginx_port}",
        TAMGA_TRUSTED_PROXIES="1",
    )
    serve_log = tmp / "serve.log"
    prefix = tmp / "nginx"
    prefix.mkdir()
    conf = render_front(prefix, nginx_port, f"127.0.0.1:{gunicorn_port}")
    check = subprocess.run(
        [NGINX, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    with serve_log.open("w") as log:
        serve = subprocess.Popen([TAMGA, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(gunicorn_port, serve, serve_log, "tamga serve")
            _wait_for(nginx_port, nginx, prefix / "error.log", "nginx")
            yield Front(nginx_port, gunicorn_port, home, serve_log)
        finally:
            _stop(nginx)
            _stop(serve)


@contextmanager
def slow_clients(port: int, count: int, path: str = SLOW_PATH) -> Iterator[None]:
    """``count`` connections that announce a 1 MB JSON body and send it a byte every 0.5 s."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000\r\n\r\n"
    ).encode()
    stop = threading.Event()
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]

    def trickle(sock: socket.socket) -> None:
        try:
            sock.sendall(head)
            while not stop.wait(0.5):
                sock.sendall(b" ")
        except OSError:
            return

    threads = [threading.Thread(target=trickle, args=(s,), daemon=True) for s in sockets]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)  # every client has sent its head and is trickling its body
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()


def healthz_latency(port: int, timeout: float) -> float | None:
    """Seconds ``/healthz`` took to answer 200, or None when it did not answer in ``timeout``."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
    except TimeoutError:
        return None
    finally:
        connection.close()
    assert response.status == 200
    return time.monotonic() - started


def test_slow_clients_wait_in_the_front_and_healthz_answers(front: Front) -> None:
    before = front.serve_log.read_text().count(f"POST {SLOW_PATH}")
    with slow_clients(front.nginx_port, SLOW_CLIENTS):
        latencies = [healthz_latency(front.nginx_port, timeout=5) for _ in range(5)]
        reached = front.serve_log.read_text().count(f"POST {SLOW_PATH}") - before
    print(f"healthz through nginx with {SLOW_CLIENTS} slow-body clients: {latencies}")
    assert None not in latencies, f"/healthz timed out behind the front: {latencies}"
    assert reached == 0, "nginx passed an unfinished body to gunicorn"


def test_without_the_front_slow_clients_starve_gunicorn(front: Front) -> None:
    """The contrast, and why docs/deployment.md says gunicorn must not face clients directly:
    the same clients sent straight to gunicorn hold every thread and /healthz does not answer."""
    # Four times as many as through the front: each gunicorn worker accepts what it can, and
    # with 16 one worker sometimes took nearly all of them, leaving the other free to answer.
    with slow_clients(front.gunicorn_port, 4 * SLOW_CLIENTS):
        latencies = [healthz_latency(front.gunicorn_port, timeout=3) for _ in range(3)]
    print(f"healthz direct to gunicorn with {4 * SLOW_CLIENTS} slow-body clients: {latencies}")
    assert None in latencies, f"gunicorn answered every probe: {latencies}"
    deadline = time.monotonic() + 15  # the threads come back once the clients are gone
    while healthz_latency(front.gunicorn_port, timeout=3) is None:
        assert time.monotonic() < deadline, "gunicorn did not recover after the clients left"


def _raw(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        method, path, *_ = head.split(" ")
        connection.putrequest(method, path, skip_accept_encoding=True)
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(": ")
            connection.putheader(name, value)
        connection.endheaders()
        if body:
            with contextlib.suppress(OSError):  # nginx may answer and close before reading it
                connection.send(body)
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def test_the_front_refuses_oversized_bodies_before_reading_them(front: Front) -> None:
    status, headers, body = _raw(
        front.nginx_port,
        f"POST {SLOW_PATH} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2000000",
    )
    assert status == 413 and headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["type"] == "urn:tamga:problem:payload-too-large"
    # the CAdES route takes a document of up to 20 MiB: 2 MB passes the front (and the app
    # answers; without a token, 401)
    status, headers, body = _raw(
        front.nginx_port,
        "POST /api/v1/signatures HTTP/1.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 2000000",
        b" " * 2_000_000,
    )
    assert status == 401, body


def _journal_actors(home: Path) -> list[str]:
    with sqlite3.connect(home / "tamga.db") as db:
        rows = db.execute("SELECT actor, details FROM audit_journal ORDER BY sequence").fetchall()
    return [f"{actor} {details}" for actor, details in rows]


def test_the_front_sets_the_client_address_and_a_client_cannot_forge_it(front: Front) -> None:
    status, _, _ = _raw(
        front.nginx_port,
        "GET /api/v1/accounts/01234567890123 HTTP/1.1\r\nAuthorization: Bearer tmg_forged\r\n"
        "X-Forwarded-For: 203.0.113.9",
    )
    assert status == 401
    journal = _journal_actors(front.home)
    assert any("127.0.0.1" in row for row in journal), journal
    assert not any("203.0.113.9" in row for row in journal), journal

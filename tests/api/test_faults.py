"""Database faults, simulated with a small TCP proxy on 127.0.0.1 between the app and
PostgreSQL (other engineers share this server, so it is never really restarted here).

* A database that accepts TCP but never answers: a fresh process's request fails within the
  connect timeout (503 `service_unavailable`), instead of hanging a worker.
* A restart under load (the proxy drops every connection and refuses new ones for a while,
  as a restarting server does): requests fail fast with 503 during the outage, and errors
  stop as soon as it is back (persistent connections are health-checked per request).

The app runs in a subprocess with DATABASE_URL pointed at the proxy: a fresh connection
through the fault, as in production. Not covered: an established connection whose peer
silently vanishes (packets dropped). A local proxy's kernel still ACKs, so only a real
network fault exercises libpq's keepalives / tcp_user_timeout from config/settings/base.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from leasing.api_keys import api_key_create

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKER = r"""
import json, sys, time
from wsgiref.util import setup_testing_defaults

from django.core.wsgi import get_wsgi_application

# The real WSGI handler (not the test client, which keeps broken connections open on purpose):
# request_started/finished close unusable connections exactly as under gunicorn.
app = get_wsgi_application()
key, seconds = sys.argv[1], float(sys.argv[2])


def get(path):
    environ = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    box = []
    result = app(environ, lambda status, headers, exc_info=None: box.append(status))
    try:
        b"".join(result)
    finally:
        result.close()
    return int(box[0].split()[0])


started = time.monotonic()
while time.monotonic() - started <= seconds:
    t0 = time.monotonic()
    status = get("/api/v1/leases/")
    print(json.dumps({"t": t0 - started, "status": status, "took": time.monotonic() - t0}),
          flush=True)
    time.sleep(0.02)
"""


class Proxy:
    """TCP proxy to PostgreSQL with two faults: `black_hole` (accept, never answer) and
    `outage()`/`restore()` (drop every connection, refuse new ones, then recover)."""

    def __init__(self, upstream=("127.0.0.1", 5432), black_hole=False):
        self.upstream = upstream
        self.black_hole = black_hole
        self.down = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _track(self, sock):
        with self.lock:
            self.sockets.append(sock)

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.black_hole:
                self._track(client)  # held open, never read, never answered
                continue
            if self.down:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self._track(client)
            self._track(server)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def outage(self):
        self.down = True
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def restore(self):
        self.down = False

    def close(self):
        self.closed = True
        self.listener.close()
        self.outage()


def _worker(proxy: Proxy, key: str, seconds: float, **env) -> subprocess.Popen:
    name = connection.settings_dict["NAME"]
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{proxy.port}/{name}",
        "DB_CONNECT_TIMEOUT_S": "2",
        "DB_CONN_MAX_AGE": "60",
        "LOG_LEVEL": "CRITICAL",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, key, str(seconds)],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
def test_a_database_that_never_answers_fails_requests_in_bounded_time(tenant_a):
    _, key = api_key_create(tenant=tenant_a)
    proxy = Proxy(black_hole=True)
    try:
        started = time.monotonic()
        worker = _worker(proxy, key, seconds=0.1)
        out, _ = worker.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert rows, "the worker made no request"
    assert rows[0]["status"] == 503
    # connect_timeout 2 s (libpq may try once more); far below any worker timeout.
    assert rows[0]["took"] < 10
    assert elapsed < 20


@pytest.mark.django_db(transaction=True)
def test_errors_stop_as_soon_as_the_database_is_back(tenant_a):
    _, key = api_key_create(tenant=tenant_a)
    proxy = Proxy()
    lines: list[dict] = []
    try:
        worker = _worker(proxy, key, seconds=9)

        def read():
            for line in worker.stdout:
                if line.startswith("{"):
                    lines.append(json.loads(line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while not any(r["status"] == 200 for r in lines) and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until the worker is serving
        assert any(r["status"] == 200 for r in lines), lines[:5]
        time.sleep(1.5)
        down_at = lines[-1]["t"]
        proxy.outage()
        time.sleep(2.0)
        proxy.restore()
        up_at = lines[-1]["t"] if lines else down_at
        worker.wait(timeout=60)
        reader.join(10)
    finally:
        proxy.close()
    before = [r for r in lines if r["t"] < down_at]
    during = [r for r in lines if down_at < r["t"] < up_at]
    after = [r for r in lines if r["t"] > up_at + 0.5]
    assert before
    assert {r["status"] for r in before} == {200}
    assert during, "requests kept being answered during the outage"
    assert {r["status"] for r in during} <= {200, 503}, during  # never a 500 or a hang
    assert 503 in {r["status"] for r in during}
    assert max(r["took"] for r in lines) < 10
    assert after, "no request after the database came back"
    assert {r["status"] for r in after} == {200}, after[:5]

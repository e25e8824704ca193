"""Helpers for tests that run the real sender and scheduler as separate processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.extensions import db
from app.supporters import services as supporters
from tests.conftest import district

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def process_env(app):
    """Environment for a child process that uses this test's database and SMTP server."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(app.config["MAIL_PORT"]),
        "HOTNET_BASE_URL": app.config["HOTNET_BASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "HOTNET_SEND_RETRY_SECONDS": "0",
        "FLASK_APP": "wsgi",
        "HOTNET_INSTANCE_PATH": str(ROOT / "instance"),
    })
    return env


def flask_process(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "hotnet", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def add_recipients(count: int) -> list[str]:
    """`count` active supporters who take the newsletter by e-mail; returns their addresses."""
    addresses = []
    for n in range(count):
        address = f"r{n:04d}@example.jp"
        supporters.add_supporter({
            "kind": "person", "name": f"受信 {n:04d}", "kana": "じゅしん", "email": address,
            "delivery": "email", "status": "active", "joined_via": "staff",
            "district_id": district("d01").id, "phone": "", "postal_code": "", "address": "",
        }, "created", actor=None)
        addresses.append(address)
    db.session.commit()
    return addresses


def wait_for(condition, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture(autouse=True)
def _sender_processes_deliver(mailbox):
    """Here only the real sender and scheduler processes deliver mail: reading the mailbox
    does not run the outbox in the test's own process."""
    mailbox.auto = False
    yield
    mailbox.auto = True


# --- real servers ------------------------------------------------------------------------------

class Relay:
    """A counting SMTP server (aiosmtpd) on a free port: it may be slow, or refuse."""

    def __init__(self, delay: float = 0.0, refuse: str = ""):
        import asyncio
        import email
        import email.policy

        from aiosmtpd.controller import Controller

        from tests.conftest import free_port

        self.delay, self.refuse = delay, refuse
        self.messages: list = []
        relay = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if relay.refuse:
                    return {"550": "550 5.1.1 No such user here",
                            "451": "451 4.3.0 Try again later"}[relay.refuse]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                if relay.delay:
                    await asyncio.sleep(relay.delay)
                relay.messages.append((envelope.rcpt_tos, email.message_from_bytes(
                    envelope.content, policy=email.policy.default)))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def message_ids(self):
        import collections
        return collections.Counter(str(m["Message-ID"]) for _r, m in self.messages)

    def recipients(self):
        import collections
        return collections.Counter(a for rcpts, _m in self.messages for a in rcpts)

    def stop(self) -> None:
        self.controller.stop()


class HangingSMTP:
    """A server that accepts connections and never says a word (a stuck relay)."""

    def __init__(self):
        import socket
        import threading

        from tests.conftest import free_port

        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(50)
        self.held = []
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        self.running = False
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def relay_factory():
    made = []

    def make(**kwargs):
        server = Relay(**kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def hanging_smtp():
    server = HangingSMTP()
    yield server
    server.stop()


class Gunicorn:
    """The app served by gunicorn exactly as in production, in its own processes."""

    def __init__(self, env: dict, workers: int = 2, timeout: int = 30):
        from tests.conftest import free_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--timeout",
             str(timeout), "--bind", f"127.0.0.1:{self.port}", "wsgi:app"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        import urllib.request
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start: " + self.output())

    def output(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()[0].decode(errors="replace")

    def stop(self) -> str:
        return self.output()


class Browser:
    """A person's browser over real HTTP: cookies kept, redirects not followed."""

    def __init__(self, base: str):
        import http.cookiejar
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect())

    def request(self, path: str, data: dict | None = None, timeout: float = 60):
        """(status, headers, text, seconds)."""
        import urllib.error
        import urllib.parse
        import urllib.request
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        url = path if path.startswith("http") else self.base + path
        started = time.monotonic()
        try:
            response = self.opener.open(urllib.request.Request(url, data=body), timeout=timeout)
            status, headers, text = response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, headers, text = exc.code, exc.headers, exc.read().decode()
        return status, headers, text, time.monotonic() - started

    def form_tokens(self, path: str) -> dict:
        import re
        _s, _h, html, _t = self.request(path)
        tokens = {"csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)}
        key = re.search(r'name="submission_key"[^>]*value="([^"]+)"', html)
        if key:
            tokens["submission_key"] = key.group(1)
        return tokens

    def post_form(self, path: str, data: dict):
        return self.request(path, dict(self.form_tokens(path), **data))

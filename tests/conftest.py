"""Fixtures: the app on SQLite and on PostgreSQL, a real SMTP server, users and helpers."""
from __future__ import annotations

import contextvars
import email
import email.policy
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from flask import has_app_context
from flask.testing import FlaskClient
from sqlalchemy import text

from app import create_app
from app.config import database_url
from app.extensions import db

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct-horse-battery"


def postgres_reachable(url: str = PG_URL) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- databases -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_server_url():
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    if not postgres_reachable():
        message = f"PostgreSQL at {PG_URL} is not reachable"
        if IN_CI:
            pytest.fail(message + " (CI requires it)")
        pytest.skip(message + ": PostgreSQL half skipped")
    name = f"hotnet_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_database(request, tmp_path_factory, backend: str) -> str:
    """A URL of an empty database of the given backend (PostgreSQL: its own database)."""
    if backend == "sqlite":
        return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    server = request.getfixturevalue("pg_server_url")
    name = f"s{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: _drop(server, name))
    return server.rsplit("/", 1)[0] + "/" + name


def _drop(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def schema_url(request, tmp_path_factory, backend):
    """A database with the schema built once per run and backend."""
    url = database_url(make_database(request, tmp_path_factory, backend))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return url


class Mailbox(list):
    """What the test SMTP server received, as (recipients, message) pairs.

    No request talks to SMTP: the app queues mail in the outbox and the sender process
    delivers it within seconds. Reading the mailbox first runs the outbox sender once (in
    the test's app context), as that process would, so a test reads what the app sent.
    """

    auto = True  # reliability tests turn this off: there the sender processes deliver

    def deliver(self) -> None:
        if not self.auto or not has_app_context():
            return
        from app.outbox.sender import deliver
        deliver(until_idle=True)

    def __iter__(self):
        self.deliver()
        return super().__iter__()

    def __len__(self):
        self.deliver()
        return super().__len__()

    def __getitem__(self, index):
        self.deliver()
        return super().__getitem__(index)

    def __reversed__(self):
        self.deliver()
        return super().__reversed__()

    def __eq__(self, other):
        self.deliver()
        return list(super().__iter__()) == other

    def clear(self):
        """Forget what was sent so far (delivering what was queued first)."""
        self.deliver()
        super().clear()

    __hash__ = None


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free loopback port; it keeps what arrives."""
    class Handler:
        """Keeps what arrives. `plan[address]` lists answers for that recipient's next
        attempts: "451"/"550" refuse at RCPT, "421" answers DATA so, "drop" hangs up after DATA."""

        pipelining = True  # offered after EHLO, as Postfix does; a test may turn it off
        on_accept = None  # called (in the server's thread) as each message is accepted

        def __init__(self):
            self.messages = Mailbox()
            self.plan: dict[str, list[str]] = {}

        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            if self.pipelining:
                responses.insert(-1, "250-PIPELINING")
            return responses

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            answers = self.plan.get(address)
            if answers and answers[0] in ("451", "550"):
                code = answers.pop(0)
                return ("451 4.3.0 Try again later" if code == "451"
                        else "550 5.1.1 No such user here")
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            for address in envelope.rcpt_tos:
                answers = self.plan.get(address)
                if answers and answers[0] == "421":
                    answers.pop(0)
                    return "421 4.4.2 Closing connection, too busy"
                if answers and answers[0] == "drop":
                    answers.pop(0)
                    server.transport.close()
                    return "250 OK"
            if self.on_accept is not None:
                self.on_accept()
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            message.raw = envelope.content  # as received, for signature checks
            self.messages.append((envelope.rcpt_tos, message))
            return "250 OK"

    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.fixture
def mailbox(smtp_server):
    """Messages received during this test, as (recipients, email.message.EmailMessage)."""
    _controller, handler = smtp_server
    handler.messages.clear()
    handler.plan.clear()
    handler.pipelining = True
    handler.on_accept = None
    return handler.messages


@pytest.fixture
def smtp_plan(smtp_server):
    """Scripted SMTP answers per recipient (see the handler)."""
    return smtp_server[1].plan


@pytest.fixture(scope="session")
def app_config(schema_url, smtp_server, tmp_path_factory):
    controller, _handler = smtp_server
    return {
        "HOTNET_UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
        # Figures are read fresh in tests (one app serves many tests with different data).
        "CACHE_TYPE": "NullCache",
        "TESTING": True,
        # Child processes (sender, scheduler) are given the same key in their environment.
        "SECRET_KEY": secrets.token_hex(32),
        "SQLALCHEMY_DATABASE_URI": schema_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": controller.port,
        # One Limiter serves every app in a process, so it stays on; the limits are high
        # except where a test lowers them (the limit is read from config per request).
        "RATELIMIT_ENABLED": True,
        "HOTNET_LOGIN_RATE_LIMIT": "10000 per minute",
        "HOTNET_LOGIN_IP_RATE_LIMIT": "10000 per minute",
        "HOTNET_PUBLIC_FORM_RATE_LIMIT": "10000 per minute",
        "HOTNET_BASE_URL": "https://hotnet.test",
        "HOTNET_SEND_RETRY_SECONDS": 0,
        "HOTNET_SMTP_TIMEOUT": 5,
        "HOTNET_MAILCATCHER_DIR": "",
        "HOTNET_PASSWORD_METHOD": "pbkdf2:sha256:1000",
    }


class RequestIsolatingClient(FlaskClient):
    """Runs each request in its own app context, as in production.

    Otherwise requests would share the test's app context: its `g` (signed-in user, locale)
    and its database session. After each request the test's session starts a new
    transaction, so the test reads what the request wrote.
    """

    def open(self, *args, **kwargs):
        if not has_app_context():  # already isolated: a redirect being followed
            return super().open(*args, **kwargs)
        kwargs.setdefault("buffered", True)
        response = contextvars.Context().run(super().open, *args, **kwargs)
        db.session.rollback()
        return response


@pytest.fixture(scope="session")
def shared_app(app_config):
    """One application per backend for the whole run (templates compile once)."""
    app = create_app(app_config)
    app.test_client_class = RequestIsolatingClient
    return app


@pytest.fixture
def app(shared_app, mailbox):
    """The app with an empty database; config changes made by a test are undone after it."""
    saved = dict(shared_app.config)
    with shared_app.app_context():
        yield shared_app
        db.session.remove()
        _empty_all_tables()
        shutil.rmtree(shared_app.config["HOTNET_UPLOAD_DIR"], ignore_errors=True)
    shared_app.config.clear()
    shared_app.config.update(saved)


def _empty_all_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def client(app):
    return app.test_client()


# --- data ----------------------------------------------------------------------------------

@pytest.fixture
def geography(app):
    from app.concerns.services import ensure_concern_categories
    from app.geography.services import load_geography
    from app.supporters.services import ensure_business_categories

    load_geography(app.config["HOTNET_GEOGRAPHY"])
    ensure_business_categories()
    ensure_concern_categories()


def district(code: str):
    from sqlalchemy import select

    from app.geography.models import District
    return db.session.scalar(select(District).where(District.code == code))


@pytest.fixture
def admin(geography):
    from app.accounts.services import create_staff
    return create_staff("admin@example.jp", "管理 太郎", PASSWORD, "admin", actor=None)


@pytest.fixture
def coordinator(geography):
    from app.accounts.services import create_staff
    area = district("d01").area
    return create_staff("coord@example.jp", "調整 花子", PASSWORD, "coordinator",
                        station_id=area.station_id, area_ids=[area.id], actor=None)


def make_supporter(**values):
    """Register a supporter through the service (as staff would)."""
    from app.supporters.services import create_supporter

    data = {"kind": "person", "name": "山田 太郎", "kana": "やまだ たろう", "delivery": "post",
            "postal_code": "188-0012", "address": "西東京市南町1-1-1", "status": "active",
            "joined_via": "staff", "district_id": district("d01").id}
    data.update(values)
    return create_supporter(data, actor=None)


# --- client helpers ------------------------------------------------------------------------------

_TOKEN = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf(client, url: str = "/privacy") -> str:
    html = client.get(url).get_data(as_text=True)
    match = _TOKEN.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def post(client, url: str, data: dict | None = None, **kwargs):
    """POST a form the way a browser does, with the page's CSRF token."""
    data = dict(data or {})
    data.setdefault("csrf_token", csrf(client))
    return client.post(url, data=data, **kwargs)


def login_staff(client, user, password: str = PASSWORD):
    response = post(client, "/login", {"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


LINK = re.compile(r"https?://\S+/login/link/[A-Za-z0-9_\-]+")


def sign_in_link(mailbox, address: str) -> str:
    """The path of the newest sign-in link mailed to address."""
    for recipients, message in reversed(mailbox):
        if address in recipients:
            match = LINK.search(message.get_body(("plain",)).get_content())
            if match:
                return "/" + match.group(0).split("/", 3)[3]
    raise AssertionError(f"no sign-in link mailed to {address}")


def login_supporter(client, supporter, mailbox):
    """Sign in the way a supporter does: request a link by e-mail and follow it."""
    response = post(client, "/login/link", {"email": supporter.email})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/link/sent")
    link = sign_in_link(mailbox, supporter.email)
    response = post(client, link)
    assert response.status_code == 302 and response.headers["Location"].endswith("/me")
    return response


def mails_to(mailbox, address: str) -> list:
    """The messages in the mailbox addressed to `address`."""
    return [message for recipients, message in mailbox if address in recipients]


def text_of(message) -> str:
    """The plain-text body of a message."""
    return message.get_body(("plain",)).get_content()


def page_text(response) -> str:
    return response.get_data(as_text=True)

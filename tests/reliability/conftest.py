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
        }, "created")
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

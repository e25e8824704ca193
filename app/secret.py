"""The secret key that signs sessions, CSRF tokens and unsubscribe links.

A forged session cookie opens every record, so there is no built-in key: outside
development and tests the app refuses to start without a strong one. `make run` (which sets
HOTNET_ENV=development) generates a random key once into the instance folder and keeps
using it, so the demo needs no setup.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

MIN_LENGTH = 32
# Values that appear in documentation and tutorials: as good as no key at all.
KNOWN_WEAK = {"dev-only-change-me", "dev", "development", "secret", "secret-key", "changeme",
              "change-me", "please-change-me", "bench-secret", "test", "testing"}
DEV_KEY_FILE = "secret_key"


class SecretKeyError(RuntimeError):
    """The configured SECRET_KEY is missing or too weak for a server."""


def problem_with(key: str) -> str | None:
    """Why the key is unsafe, or None when it is fine."""
    if not key:
        return "SECRET_KEY is not set"
    if key.strip().lower() in KNOWN_WEAK:
        return "SECRET_KEY is a well-known example value"
    if len(key) < MIN_LENGTH:
        return f"SECRET_KEY is shorter than {MIN_LENGTH} characters"
    return None


HOW_TO_FIX = (
    "Set the environment variable SECRET_KEY to a long random value, for example:\n"
    "  export SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_hex(32))')\"\n"
    "Keep it the same for every web worker, the scheduler and the senders (changing it signs "
    "everyone out and invalidates unsubscribe links already mailed). For a local demo, "
    "`make run` sets HOTNET_ENV=development and generates one into the instance folder."
)


def development_key(instance_path: str) -> str:
    """The instance folder's generated key, created on first use (never committed)."""
    path = Path(instance_path) / DEV_KEY_FILE
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    if problem_with(key):
        key = secrets.token_hex(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        try:
            os.link(tmp, path)  # only one process wins the race to create it
        except FileExistsError:
            key = path.read_text(encoding="ascii").strip()
        finally:
            tmp.unlink(missing_ok=True)
    return key


def ensure_secret_key(app: Flask) -> None:
    """Make sure the app signs with a strong key, or refuse to start."""
    key = app.config.get("SECRET_KEY") or ""
    if problem_with(key) is None:
        return
    if app.testing:
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        return
    if app.debug or app.config.get("HOTNET_ENV") == "development":
        app.config["SECRET_KEY"] = development_key(app.instance_path)
        return
    raise SecretKeyError(f"{problem_with(key)}: Hot-Net will not start without a strong key.\n"
                         + HOW_TO_FIX)

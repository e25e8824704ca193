"""`flask hotnet check`: what is unsafe or missing before Hot-Net goes into production.

Each finding says what is wrong and what to set. Above the domains, with the CLI.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask


@dataclass
class Finding:
    level: str    # "error": unsafe or broken; "warning": works, but not as it should for production
    subject: str
    advice: str


def production_findings(app: Flask) -> list[Finding]:
    from app import health
    from app.secret import problem_with

    config = app.config
    found: list[Finding] = []

    def add(level: str, subject: str, advice: str) -> None:
        found.append(Finding(level, subject, advice))

    problem = problem_with(config.get("SECRET_KEY") or "")
    if problem or config.get("HOTNET_ENV") == "development":
        add("error", "SECRET_KEY", (problem or "development mode (HOTNET_ENV=development) uses a "
            "generated key and demo settings") + ": set SECRET_KEY to the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` and "
            "HOTNET_ENV=production")
    base = config.get("HOTNET_BASE_URL", "")
    if not base.startswith("https://"):
        add("error", "HOTNET_BASE_URL", f"{base!r} is not https: links in mail would travel "
            "unencrypted; serve Hot-Net over HTTPS (deploy/nginx) and set the https address")
    elif not config.get("SESSION_COOKIE_SECURE"):
        add("error", "SESSION_COOKIE_SECURE", "the site is https but the sign-in cookie may be "
            "sent over http: set SESSION_COOKIE_SECURE=true")
    if base.startswith("https://") and not config.get("HOTNET_PROXY_COUNT"):
        add("warning", "HOTNET_PROXY_COUNT", "behind nginx set HOTNET_PROXY_COUNT=1, or client "
            "addresses (rate limits, the audit log) are all the proxy's")
    if str(config.get("RATELIMIT_STORAGE_URI", "")).startswith("memory://"):
        add("warning", "RATELIMIT_STORAGE_URI", "rate limits are counted per worker process: with "
            "several gunicorn workers set RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/1")
    if config.get("CACHE_TYPE") == "SimpleCache":
        add("warning", "HOTNET_CACHE_URL", "the cache lives in each worker process: with several "
            "workers set HOTNET_CACHE_URL=redis://127.0.0.1:6379/2")
    if config.get("HOTNET_MAILCATCHER_DIR"):
        add("error", "HOTNET_MAILCATCHER_DIR", "the demo mail catcher is on: unset it")
    if not config.get("HOTNET_BACKUP_DIR"):
        add("error", "HOTNET_BACKUP_DIR", "no nightly backup: set HOTNET_BACKUP_DIR to a folder "
            "on another disk (and copy it off the machine, docs/deploy.md)")
    elif not _writable(Path(config["HOTNET_BACKUP_DIR"])):
        add("error", "HOTNET_BACKUP_DIR", f"{config['HOTNET_BACKUP_DIR']} is not writable")
    uploads = Path(config["HOTNET_UPLOAD_DIR"])
    if not _writable(uploads):
        add("error", "HOTNET_UPLOAD_DIR", f"{uploads} is not writable by this user: photos and "
            "pictures cannot be stored")
    if str(config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("sqlite"):
        add("warning", "DATABASE_URL", "SQLite suits a trial; for a council's data use "
            "PostgreSQL (docs/deploy.md)")
    smtp = health.check_smtp(max_age=0)
    if smtp.state != health.OK:
        add("error", "MAIL_SERVER", f"the SMTP server {config.get('MAIL_SERVER')}:"
            f"{config.get('MAIL_PORT')} does not answer ({smtp.summary})")
    if not config.get("HOTNET_NEWSLETTER_FROM") and not config.get("MAIL_DEFAULT_SENDER"):
        add("warning", "MAIL_DEFAULT_SENDER", "no sender address is set for mail")
    if not config.get("HOTNET_DKIM_KEY_FILE"):
        add("warning", "HOTNET_DKIM_KEY_FILE", "mail is not DKIM-signed: large providers may "
            "refuse newsletters (docs/mail.md, flask hotnet dkim-keygen)")
    try:
        ZoneInfo("Asia/Tokyo")
    except Exception:  # noqa: BLE001 - tzdata missing
        add("error", "time zone", "Asia/Tokyo is unknown to this Python: install tzdata")
    local = time.strftime("%Z")
    if os.environ.get("TZ", "") not in ("", "Asia/Tokyo") or local not in ("JST", "UTC"):
        add("warning", "time zone", f"the server's clock zone is {local}: Hot-Net shows Japan "
            "time regardless, but logs and cron use the server's; UTC or Asia/Tokyo is clearest")
    return found


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False

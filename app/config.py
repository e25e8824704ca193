"""Settings, read from environment variables (documented in README.md)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class ConfigError(ValueError):
    """A setting the app cannot start with."""


def _int(name: str, default: int) -> int:
    """A count, a size or a number of seconds: a whole number, 0 or more."""
    value = os.environ.get(name)
    try:
        number = int(value) if value else default
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{name} must be a whole number, 0 or more, not {value!r}")
    return number


def _int_between(name: str, default: int, low: int, high: int) -> int:
    value = os.environ.get(name)
    try:
        number = int(value) if value else default
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return number


def database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _cache(url: str, seconds: int) -> dict:
    if url.startswith(("redis://", "rediss://")):
        # Pages go on being served from the database while Redis is away (app/cachestore.py).
        return {"CACHE_TYPE": "app.cachestore.FailSafeRedisCache", "CACHE_REDIS_URL": url,
                "CACHE_DEFAULT_TIMEOUT": seconds, "CACHE_KEY_PREFIX": "hotnet:"}
    return {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": seconds}


def from_environment(instance_path: str) -> dict:
    """Build the configuration mapping from the process environment."""
    default_db = "sqlite:///" + os.path.join(instance_path, "hotnet.sqlite3")
    send_connections = _int_between("HOTNET_SEND_CONNECTIONS", 1, 1, 16)
    return {
        # No default: create_app refuses to start without a strong key, except in
        # development (HOTNET_ENV=development, what `make run` sets), where one is generated
        # once into the instance folder, and in tests.
        "SECRET_KEY": os.environ.get("SECRET_KEY", ""),
        "HOTNET_ENV": os.environ.get("HOTNET_ENV", "production"),
        "SQLALCHEMY_DATABASE_URI": database_url(os.environ.get("DATABASE_URL", default_db)),
        # A sender uses two database connections per SMTP connection (HOTNET_SEND_CONNECTIONS).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True,
                                      "max_overflow": max(10, 2 * send_connections)},
        # A request never waits on the database longer than the web worker lives (gunicorn:
        # 30 s): a statement is cancelled after this many seconds, a lock wait earlier, and the
        # person sees a page that keeps what they typed. 0 turns a limit off.
        "HOTNET_DB_STATEMENT_TIMEOUT": _int("HOTNET_DB_STATEMENT_TIMEOUT", 20),
        "HOTNET_DB_LOCK_TIMEOUT": _int("HOTNET_DB_LOCK_TIMEOUT", 10),
        "HOTNET_GEOGRAPHY": os.environ.get(
            "HOTNET_GEOGRAPHY", str(ROOT / "app" / "geography" / "nishitokyo.toml")
        ),
        # Uploaded pictures (newsletter images, concern photos); private, never served as static.
        "HOTNET_UPLOAD_DIR": os.environ.get("HOTNET_UPLOAD_DIR", os.path.join(instance_path, "uploads")),
        "HOTNET_BASE_URL": os.environ.get("HOTNET_BASE_URL", "http://127.0.0.1:5000"),
        "HOTNET_ORG_NAME": os.environ.get("HOTNET_ORG_NAME", "西東京市社会福祉協議会"),
        # The council's name for readers of English (without it they read HOTNET_ORG_NAME).
        "HOTNET_ORG_NAME_EN": os.environ.get(
            "HOTNET_ORG_NAME_EN",
            "" if "HOTNET_ORG_NAME" in os.environ else "Nishitokyo Council of Social Welfare"),
        "HOTNET_PRIVACY_VERSION": os.environ.get("HOTNET_PRIVACY_VERSION", "2026-04"),
        # Folder where the demo mail catcher stores caught messages; empty turns the page off.
        "HOTNET_MAILCATCHER_DIR": os.environ.get("HOTNET_MAILCATCHER_DIR", ""),
        # werkzeug hashing method; the tests use a cheaper one to stay fast.
        "HOTNET_PASSWORD_METHOD": os.environ.get("HOTNET_PASSWORD_METHOD", "scrypt"),
        "HOTNET_PAGE_SIZE": _int("HOTNET_PAGE_SIZE", 25),
        "HOTNET_LOGIN_LINK_MINUTES": _int("HOTNET_LOGIN_LINK_MINUTES", 30),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "127.0.0.1"),
        "MAIL_PORT": _int("MAIL_PORT", 8025),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _bool("MAIL_USE_SSL", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": os.environ.get(
            "MAIL_DEFAULT_SENDER", "ほっとネット <hotnet@example.jp>"
        ),
        "MAIL_SUPPRESS_SEND": _bool("MAIL_SUPPRESS_SEND", False),
        # Newsletter sending
        "HOTNET_NEWSLETTER_FROM": os.environ.get("HOTNET_NEWSLETTER_FROM", ""),
        "HOTNET_NEWSLETTER_REPLY_TO": os.environ.get("HOTNET_NEWSLETTER_REPLY_TO", ""),
        "HOTNET_LIST_ID": os.environ.get("HOTNET_LIST_ID",
                                         "Hot-Net newsletter <supporters.hotnet.example.jp>"),
        "HOTNET_MESSAGE_ID_DOMAIN": os.environ.get("HOTNET_MESSAGE_ID_DOMAIN", "hotnet.example.jp"),
        "HOTNET_IMAGE_MAX_MB": _int("HOTNET_IMAGE_MAX_MB", 5),
        # Pictures larger than this (width × height) are refused from their header, before
        # decoding: a 12 KB PNG can unpack to gigabytes (decompression bomb).
        "HOTNET_IMAGE_MAX_MEGAPIXELS": _int("HOTNET_IMAGE_MAX_MEGAPIXELS", 40),
        "HOTNET_SEND_BATCH": _int("HOTNET_SEND_BATCH", 50),
        # Messages per second for a whole sender process, all its connections together (0: no limit).
        "HOTNET_SEND_RATE": _int("HOTNET_SEND_RATE", 0),
        # SMTP connections one sender process drives at once (1 to 16); a council's provider
        # may allow only one. A crash repeats at most one message per open connection.
        "HOTNET_SEND_CONNECTIONS": send_connections,
        "HOTNET_SEND_PROCESSES": _int_between("HOTNET_SEND_PROCESSES", 1, 1, 8),
        # Newsletter messages per day (Japan time) at most, as mail providers limit them
        # (0: no cap); a send that meets it continues the next day by itself.
        "HOTNET_SEND_DAILY_CAP": _int("HOTNET_SEND_DAILY_CAP", 0),
        "HOTNET_SMTP_TIMEOUT": _int("HOTNET_SMTP_TIMEOUT", 30),
        "HOTNET_SEND_MAX_ATTEMPTS": _int("HOTNET_SEND_MAX_ATTEMPTS", 5),
        "HOTNET_SEND_RETRY_SECONDS": _int("HOTNET_SEND_RETRY_SECONDS", 300),
        "HOTNET_SEND_LEASE_SECONDS": _int("HOTNET_SEND_LEASE_SECONDS", 300),
        # Bounces: the return path (VERP: bounces+<signed id>@domain) and the mailbox (IMAP)
        # the council's provider delivers bounces to; a scheduler job reads it.
        "HOTNET_BOUNCE_ADDRESS": os.environ.get("HOTNET_BOUNCE_ADDRESS", ""),
        "HOTNET_BOUNCE_IMAP_HOST": os.environ.get("HOTNET_BOUNCE_IMAP_HOST", ""),
        "HOTNET_BOUNCE_IMAP_PORT": _int("HOTNET_BOUNCE_IMAP_PORT", 993),
        "HOTNET_BOUNCE_IMAP_SSL": _bool("HOTNET_BOUNCE_IMAP_SSL", True),
        "HOTNET_BOUNCE_IMAP_USER": os.environ.get("HOTNET_BOUNCE_IMAP_USER", ""),
        "HOTNET_BOUNCE_IMAP_PASSWORD": os.environ.get("HOTNET_BOUNCE_IMAP_PASSWORD", ""),
        "HOTNET_BOUNCE_IMAP_FOLDER": os.environ.get("HOTNET_BOUNCE_IMAP_FOLDER", "INBOX"),
        "HOTNET_BOUNCE_SOFT_LIMIT": _int("HOTNET_BOUNCE_SOFT_LIMIT", 3),
        # DKIM signing (flask hotnet dkim-keygen makes a key and prints the DNS record)
        "HOTNET_DKIM_DOMAIN": os.environ.get("HOTNET_DKIM_DOMAIN", ""),
        "HOTNET_DKIM_SELECTOR": os.environ.get("HOTNET_DKIM_SELECTOR", ""),
        "HOTNET_DKIM_KEY_FILE": os.environ.get("HOTNET_DKIM_KEY_FILE", ""),
        # Concerns
        "HOTNET_CONCERN_PHOTO_MAX_MB": _int("HOTNET_CONCERN_PHOTO_MAX_MB", 5),
        "HOTNET_CONCERN_ACK_DAYS": _int("HOTNET_CONCERN_ACK_DAYS", 2),
        "HOTNET_CONCERN_RETENTION_YEARS": _int("HOTNET_CONCERN_RETENTION_YEARS", 5),
        "HOTNET_DIGEST_HOUR": _int("HOTNET_DIGEST_HOUR", 8),
        # Failover: standbys poll every POLL seconds; on SQLite the active scheduler's lease
        # lasts LEASE seconds (on PostgreSQL the advisory lock ends with the process).
        "HOTNET_SCHEDULER_POLL_SECONDS": _int("HOTNET_SCHEDULER_POLL_SECONDS", 2),
        "HOTNET_SCHEDULER_LEASE_SECONDS": _int("HOTNET_SCHEDULER_LEASE_SECONDS", 10),
        # Nightly backups (flask hotnet backup): where, how many to keep, at what hour (Japan).
        "HOTNET_BACKUP_DIR": os.environ.get("HOTNET_BACKUP_DIR", ""),
        "HOTNET_BACKUP_KEEP": _int("HOTNET_BACKUP_KEEP", 14),
        "HOTNET_BACKUP_HOUR": _int("HOTNET_BACKUP_HOUR", 2),
        "HOTNET_TRAINING_REMINDER_DAYS": _int("HOTNET_TRAINING_REMINDER_DAYS", 2),
        # Dashboard figures are cached this many seconds; HOTNET_CACHE_URL=redis://… shares
        # them between workers (SimpleCache keeps them per process).
        **_cache(os.environ.get("HOTNET_CACHE_URL", ""), _int("HOTNET_STATS_CACHE_SECONDS", 60)),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # While that storage (Redis) cannot be reached, limits are counted in each worker
        # process instead (sign-in and the public forms keep working, still limited), and
        # the storage is tried again after 1, 2, 4 … 32 seconds; a Redis that does not answer
        # at all is given up after a second.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        # Failed sign-ins per account, and per network address (an office shares one).
        "HOTNET_LOGIN_RATE_LIMIT": os.environ.get("HOTNET_LOGIN_RATE_LIMIT",
                                                  "5 per minute;20 per hour"),
        "HOTNET_LOGIN_IP_RATE_LIMIT": os.environ.get("HOTNET_LOGIN_IP_RATE_LIMIT",
                                                     "60 per minute;300 per hour"),
        "HOTNET_PUBLIC_FORM_RATE_LIMIT": os.environ.get(
            "HOTNET_PUBLIC_FORM_RATE_LIMIT", "20 per hour"
        ),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        # Behind nginx: how many proxies set X-Forwarded-For/-Proto/-Host (0: none, trust no header).
        "HOTNET_PROXY_COUNT": _int("HOTNET_PROXY_COUNT", 0),
        "BABEL_DEFAULT_LOCALE": "ja",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Tokyo",
        "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "app" / "translations"),
        "LANGUAGES": ["ja", "en"],
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": _int("HOTNET_MAX_UPLOAD_MB", 10) * 1024 * 1024,
    }

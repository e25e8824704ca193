"""Hot-Net: the web platform of a community-welfare supporter network."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, has_request_context, session
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app import config as config_module
from app.dbtypes import json_text, json_value
from app.extensions import babel, cache, csrf, db, limiter, login_manager, mail, migrate

ROOT = Path(__file__).resolve().parent.parent
__version__ = "1.14.0"  # written into backups; raise it with every release


def create_app(config: dict | None = None) -> Flask:
    """Build the application; `config` overrides settings read from the environment."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        instance_path=os.environ.get("HOTNET_INSTANCE_PATH", str(ROOT / "instance")),
    )
    from app.site import BoundedIntConverter
    app.url_map.converters["int"] = BoundedIntConverter
    app.config.update(config_module.from_environment(app.instance_path))
    if config:
        app.config.update(config)
    os.makedirs(app.instance_path, exist_ok=True)
    from app.secret import ensure_secret_key
    ensure_secret_key(app)

    _database_options(app)
    _init_extensions(app)
    _register_blueprints(app)

    from app import formatting, site
    formatting.init_app(app)
    site.init_app(app)

    from app.cli import hotnet
    app.cli.add_command(hotnet)
    proxies = app.config["HOTNET_PROXY_COUNT"]
    if proxies:  # the client's address and https come from the proxy's headers, no others
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app


def _select_locale() -> str:
    """The language chosen with the switch; Japanese otherwise (and outside requests)."""
    if has_request_context():
        return session.get("lang") or "ja"
    return "ja"


def _database_options(app: Flask) -> None:
    """Statement and lock timeouts on every connection (see HOTNET_DB_*_TIMEOUT), and how
    JSON columns are written and read (app.dbtypes.json_text)."""
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    statement = int(app.config.get("HOTNET_DB_STATEMENT_TIMEOUT") or 0)
    lock = int(app.config.get("HOTNET_DB_LOCK_TIMEOUT") or 0)
    if url.startswith("postgresql"):
        settings = [connect_args.get("options", "")]
        if statement:
            settings.append(f"-c statement_timeout={statement * 1000}")
        if lock:
            settings.append(f"-c lock_timeout={lock * 1000}")
        connect_args["options"] = " ".join(part for part in settings if part)
    elif url.startswith("sqlite"):
        # SQLite waits for the write lock this long, then says "database is locked".
        connect_args.setdefault("timeout", lock or 10)
        if url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url:
            # An in-memory database is one connection shared by the process (StaticPool),
            # which has no overflow to size.
            options.pop("max_overflow", None)
    options["connect_args"] = connect_args
    options.setdefault("json_serializer", json_text)
    options.setdefault("json_deserializer", json_value)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _init_extensions(app: Flask) -> None:
    # Import every model so that metadata (and Alembic) sees all tables.
    from app import models  # noqa: F401

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    mail.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)
    from app import i18n
    i18n.init_jinja(app.jinja_env)
    limiter.init_app(app)
    cache.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = None

    from app.accounts.services import load_user
    login_manager.user_loader(load_user)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL mode and foreign keys for SQLite (no-op on other databases)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL: never corrupt, no fsync on every commit (the sender
        # commits once per message); only a power cut can lose the last few commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Reads through a memory map of the file (up to 256 MB; shared with the operating
        # system's cache, not copied into each connection's own 2 MB cache): a search
        # that visits a few hundred supporters scattered over the file is twice as quick.
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()


def _register_blueprints(app: Flask) -> None:
    from app.accounts.views import bp as accounts_bp
    from app.audit.views import bp as audit_bp
    from app.concerns.views import bp as concerns_bp
    from app.geography.views import bp as geography_bp
    from app.health import bp as health_bp
    from app.mailcatcher.views import bp as mailcatcher_bp
    from app.newsletters.views import bp as newsletters_bp
    from app.outbox.views import bp as outbox_bp
    from app.partners.views import bp as partners_bp
    from app.supporters.views import bp as supporters_bp
    from app.trainings.views import bp as trainings_bp

    for bp in (accounts_bp, audit_bp, concerns_bp, geography_bp, health_bp, mailcatcher_bp,
               newsletters_bp, outbox_bp, partners_bp, supporters_bp, trainings_bp):
        app.register_blueprint(bp)

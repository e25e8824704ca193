"""`flask hotnet check` (issue 14): what is unsafe for production is named, with what to set."""
from __future__ import annotations

from app import health


def run_check(app):
    health._RECENT.clear()
    return app.test_cli_runner().invoke(args=["hotnet", "check"])


def production(app, tmp_path) -> None:
    app.config.update(
        HOTNET_ENV="production", SECRET_KEY="k" * 48, HOTNET_BASE_URL="https://hotnet.example.jp",
        SESSION_COOKIE_SECURE=True, HOTNET_PROXY_COUNT=1,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/1", CACHE_TYPE="RedisCache",
        HOTNET_MAILCATCHER_DIR="", HOTNET_BACKUP_DIR=str(tmp_path / "backups"),
        HOTNET_UPLOAD_DIR=str(tmp_path / "uploads"),
        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://hotnet@db/hotnet",
        HOTNET_DKIM_KEY_FILE="/etc/hotnet/dkim.pem", HOTNET_NEWSLETTER_FROM="news@example.jp")


def test_a_production_setup_passes(app, tmp_path):
    production(app, tmp_path)
    result = run_check(app)
    assert result.exit_code == 0, result.output
    assert "ready for production" in result.output


def test_each_unsafe_setting_is_named_with_what_to_set(app, tmp_path):
    production(app, tmp_path)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the uploads folder should be")
    app.config.update(SECRET_KEY="short", SESSION_COOKIE_SECURE=False, HOTNET_BACKUP_DIR="",
                      RATELIMIT_STORAGE_URI="memory://", HOTNET_UPLOAD_DIR=str(blocked),
                      MAIL_PORT=1)
    result = run_check(app)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    for subject in ("SECRET_KEY", "SESSION_COOKIE_SECURE", "HOTNET_BACKUP_DIR",
                    "HOTNET_UPLOAD_DIR", "MAIL_SERVER"):
        assert any(line.startswith("ERROR") and f" {subject}:" in line for line in lines), subject
    assert any(line.startswith("WARNING") and "RATELIMIT_STORAGE_URI" in line for line in lines)
    assert "set SESSION_COOKIE_SECURE=true" in result.output
    assert lines[-1] == "5 unsafe, 1 to improve"

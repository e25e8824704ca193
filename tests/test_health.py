"""Health you can monitor (issue 14): /healthz/ready for tools, /admin/status for people."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app import health, heartbeat
from app.dbtypes import utcnow
from app.extensions import db
from app.heartbeat import ServiceStatus
from app.outbox.models import OutboxMessage
from app.outbox.services import enqueue
from tests.conftest import free_port, login_staff, page_text


def everything_running(app, tmp_path) -> None:
    """A live scheduler, a fresh backup, a bounce mailbox read a minute ago."""
    app.config.update(HOTNET_BACKUP_DIR=str(tmp_path), HOTNET_BOUNCE_IMAP_HOST="imap.example.jp")
    heartbeat.beat("scheduler", {"role": "active", "jobs": {"deliver_outbox": {"ok": True}}})
    heartbeat.beat("backup", {"bytes": 12_345_678, "path": "x"})
    heartbeat.beat("bounces", {"read": 0})
    health._RECENT.clear()


def test_ready_is_ok_when_every_part_runs(client, app, tmp_path):
    everything_running(app, tmp_path)
    response = client.get("/healthz/ready")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ok", body
    assert set(body["checks"]) == {"database", "scheduler", "smtp", "mail_queue", "backup",
                                   "bounces"}
    assert body["checks"]["backup"]["bytes"] == 12_345_678
    assert response.headers["Cache-Control"] == "no-store"


def test_each_part_that_fails_is_named_and_the_answer_is_503(client, app, tmp_path, geography):
    everything_running(app, tmp_path)
    # The scheduler went quiet five minutes ago; the SMTP server is gone; a mail failed.
    db.session.execute(update(ServiceStatus).where(ServiceStatus.name == "scheduler")
                       .values(at=utcnow() - timedelta(minutes=5)))
    message = enqueue("taro@example.jp", "件名", "application_received",
                      supporter=None, mobile_carrier=False)
    db.session.commit()
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message.id)
                       .values(status="failed"))
    db.session.commit()
    app.config["MAIL_PORT"] = free_port()
    health._RECENT.clear()
    response = client.get("/healthz/ready")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "error"
    checks = {name: check["status"] for name, check in body["checks"].items()}
    assert checks == {"database": "ok", "scheduler": "error", "smtp": "error",
                      "mail_queue": "warning", "backup": "ok", "bounces": "ok"}
    assert body["checks"]["mail_queue"]["outbox"]["failed"] == 1
    # Counts and states only: no address, no name.
    assert "taro@example.jp" not in response.get_data(as_text=True)


def test_nothing_configured_is_a_warning_not_silence(client, app):
    heartbeat.beat("scheduler", {"role": "active"})
    health._RECENT.clear()
    body = client.get("/healthz/ready").get_json()
    assert body["status"] == "warning"
    assert body["checks"]["backup"]["status"] == "warning"   # no HOTNET_BACKUP_DIR
    assert body["checks"]["bounces"]["status"] == "warning"  # no bounce mailbox


def test_admins_read_the_same_in_japanese(client, app, admin, tmp_path):
    everything_running(app, tmp_path)
    db.session.execute(update(ServiceStatus).where(ServiceStatus.name == "backup")
                       .values(at=utcnow() - timedelta(hours=30)))
    db.session.commit()
    login_staff(client, admin)
    page = page_text(client.get("/admin/status"))
    assert "稼働状況" in page and "バックアップ" in page
    assert "30時間バックアップがありません。" in page and "注意" in page
    assert "動いています" in page and "/healthz/ready" in page


def test_a_redis_away_is_a_warning_that_says_the_site_goes_on(client, app, admin, tmp_path):
    """Redis (the shared cache, the rate limits' counts) is checked only where it is used; away,
    the site still works (tests/reliability/test_redis_outage.py), so it is a warning."""
    everything_running(app, tmp_path)
    health._RECENT.clear()
    assert "redis" not in client.get("/healthz/ready").get_json()["checks"]  # not used here
    app.config.update(CACHE_TYPE="app.cachestore.FailSafeRedisCache",
                      CACHE_REDIS_URL="redis://127.0.0.1:6379/2",
                      RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/1")
    response = client.get("/healthz/ready")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ok", body
    assert body["checks"]["redis"]["status"] == "ok"
    health._RECENT.clear()
    app.config["RATELIMIT_STORAGE_URI"] = f"redis://127.0.0.1:{free_port()}/1"
    response = client.get("/healthz/ready")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "warning"
    assert body["checks"]["redis"] == {"status": "warning"}  # no address, no password
    login_staff(client, admin)
    health._RECENT.clear()
    page = page_text(client.get("/admin/status"))
    assert "Redis（ページの共有キャッシュ・ログイン回数の記録）" in page
    assert "接続できません（ConnectionError）。その間もページはデータベースから作り" in page

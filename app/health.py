"""Health you can monitor: each part of the service with ok / warning / error.

`/healthz` stays a cheap liveness check. `/healthz/ready` answers JSON for a monitoring tool
(HTTP 503 when anything is in error) with no personal data: only states, ages and counts.
Admins read the same, in their language and with details, on /admin/status.

This module looks across the domains (mail queues of the outbox and of newsletters), so it
sits above them, with the CLI and the scheduler (docs/architecture.md).
"""
from __future__ import annotations

import smtplib
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime

import redis
from flask import Blueprint, current_app, jsonify, render_template
from sqlalchemy import func, select, text

from app.access import admin_required
from app.dbtypes import utcnow
from app.extensions import db
from app.heartbeat import ServiceStatus
from app.i18n import lazy_gettext as _l

OK, WARNING, ERROR = "ok", "warning", "error"
_RANK = {OK: 0, WARNING: 1, ERROR: 2}

NAMES = {"database": _l("データベース"), "scheduler": _l("スケジューラー（自動の処理）"),
         "smtp": _l("メールサーバー（SMTP）"), "mail_queue": _l("メールの送信待ち"),
         "backup": _l("バックアップ"), "bounces": _l("届かなかったメールの読み取り"),
         "redis": _l("Redis（ページの共有キャッシュ・ログイン回数の記録）")}
STATE_NAMES = {OK: _l("正常"), WARNING: _l("注意"), ERROR: _l("異常")}


@dataclass
class Check:
    name: str
    state: str
    summary: str = ""                                   # for people (admin page)
    figures: dict = field(default_factory=dict)         # for machines and people: no personal data


def _age(at: datetime | None) -> float | None:
    return None if at is None else (utcnow() - at).total_seconds()


def check_database() -> Check:
    started = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        db.session.rollback()
        return Check("database", ERROR, f"{type(exc).__name__}")
    ms = round((time.perf_counter() - started) * 1000, 1)
    return Check("database", OK, str(_l("応答しています。")), figures={"ms": ms})


def _status(name: str) -> ServiceStatus | None:
    try:
        return db.session.get(ServiceStatus, name)
    except Exception:  # noqa: BLE001 - the database check says why
        db.session.rollback()
        return None


def check_scheduler() -> Check:
    row = _status("scheduler")
    age = _age(row.at if row else None)
    if age is None:
        return Check("scheduler", ERROR, str(_l("スケジューラーが一度も動いていません。")))
    lease = current_app.config["HOTNET_SCHEDULER_LEASE_SECONDS"]
    failed = sorted(job for job, run in (row.detail or {}).get("jobs", {}).items()
                    if not run.get("ok", True))
    figures = {"heartbeat_age_s": round(age), "failed_jobs": failed}
    if age > 12 * lease:
        return Check("scheduler", ERROR, str(_l("%(s)d秒前から応答がありません。", s=age)), figures)
    if age > 3 * lease:
        return Check("scheduler", WARNING, str(_l("%(s)d秒前から応答がありません。", s=age)), figures)
    if failed:
        return Check("scheduler", WARNING,
                     str(_l("最後の実行で失敗した処理があります: %(jobs)s", jobs=", ".join(failed))),
                     figures)
    return Check("scheduler", OK, str(_l("動いています（%(s)d秒前に応答）。", s=age)), figures)


# The last answers of the servers checked over the network, by what was checked: monitors
# poll often, and a server is asked at most every `max_age` seconds.
_RECENT: dict[tuple, tuple[float, Check]] = {}


def _at_most_every(max_age: float, key: tuple, check) -> Check:
    """`check()`, or its answer of less than `max_age` seconds ago for the same `key`."""
    recent = _RECENT.get(key)
    if recent and time.monotonic() - recent[0] < max_age:
        return recent[1]
    result = check()
    _RECENT[key] = (time.monotonic(), result)
    return result


def check_smtp(max_age: float = 30) -> Check:
    """Connect and say hello (at most every `max_age` seconds)."""
    config = current_app.config
    server, port = config.get("MAIL_SERVER") or "localhost", config.get("MAIL_PORT") or 25
    return _at_most_every(max_age, ("smtp", server, port), lambda: _smtp_noop(server, port))


def _smtp_noop(server: str, port: int) -> Check:
    started = time.perf_counter()
    try:
        with smtplib.SMTP(server, port, timeout=5) as smtp:
            code, _message = smtp.noop()
        result = Check("smtp", OK if code == 250 else WARNING,
                       str(_l("応答しています。")) if code == 250 else f"NOOP {code}",
                       {"ms": round((time.perf_counter() - started) * 1000, 1)})
    except (OSError, smtplib.SMTPException, socket.timeout) as exc:
        result = Check("smtp", ERROR, str(_l("接続できません（%(error)s）。", error=type(exc).__name__)))
    return result


def _redis_urls() -> list[str]:
    """The Redis servers in use: the shared cache's and the rate limits' (when set)."""
    config = current_app.config
    urls = [config.get("CACHE_REDIS_URL", "") if "Redis" in config.get("CACHE_TYPE", "") else "",
            str(config.get("RATELIMIT_STORAGE_URI", ""))]
    return list(dict.fromkeys(url for url in urls if url.startswith(("redis://", "rediss://"))))


def check_redis(max_age: float = 30) -> Check | None:
    """Ping each Redis in use (at most every `max_age` seconds); None when none is. Away, it is a
    warning, not an error: pages are then made from the database (app/cachestore.py) and
    failed sign-ins counted in each worker."""
    urls = _redis_urls()
    if not urls:
        return None
    return _at_most_every(max_age, ("redis", *urls), lambda: _redis_ping(urls))


def _redis_ping(urls: list[str]) -> Check:
    started = time.perf_counter()
    try:
        for url in urls:
            with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as server:
                server.ping()
        result = Check("redis", OK, str(_l("応答しています。")),
                       {"ms": round((time.perf_counter() - started) * 1000, 1)})
    except redis.RedisError as exc:
        result = Check("redis", WARNING, str(_l(
            "接続できません（%(error)s）。その間もページはデータベースから作り、ログインの失敗は"
            "ワーカーごとに数えています。", error=type(exc).__name__)))
    return result


def check_mail_queue() -> Check:
    from app.newsletters.models import Delivery
    from app.outbox.models import OutboxMessage

    figures = {}
    oldest = None
    for label, model in (("outbox", OutboxMessage), ("newsletters", Delivery)):
        counts = dict(db.session.execute(
            select(model.status, func.count()).where(
                model.status.in_(("waiting", "sending", "deferred", "failed")))
            .group_by(model.status)).all())
        figures[label] = {"waiting": counts.get("waiting", 0) + counts.get("sending", 0),
                          "deferred": counts.get("deferred", 0), "failed": counts.get("failed", 0)}
        due = db.session.scalar(select(func.min(model.next_attempt_at)).where(
            model.status.in_(("waiting", "deferred"))))
        if due is not None and (oldest is None or due < oldest):
            oldest = due
    late = _age(oldest) or 0
    figures["oldest_due_age_s"] = round(max(late, 0))
    failed = sum(v["failed"] for v in figures.values() if isinstance(v, dict))
    waiting = sum(v["waiting"] + v["deferred"] for v in figures.values() if isinstance(v, dict))
    summary = str(_l("待ち %(w)d通・失敗 %(f)d通", w=waiting, f=failed))
    if late > 3600:
        return Check("mail_queue", ERROR, summary + str(_l("（1時間以上送れていません）")), figures)
    if late > 900 or failed:
        return Check("mail_queue", WARNING, summary, figures)
    return Check("mail_queue", OK, summary, figures)


def check_backup() -> Check:
    if not current_app.config.get("HOTNET_BACKUP_DIR"):
        return Check("backup", WARNING, str(_l("バックアップの保存先（HOTNET_BACKUP_DIR）が設定されていません。")))
    row = _status("backup")
    age = _age(row.at if row else None)
    if age is None:
        return Check("backup", WARNING, str(_l("まだバックアップをとっていません。")))
    detail = row.detail or {}
    figures = {"age_h": round(age / 3600, 1), "bytes": detail.get("bytes", 0)}
    if detail.get("error"):
        return Check("backup", ERROR, str(_l("前回のバックアップは失敗しました。")), figures)
    if age > 50 * 3600:
        return Check("backup", ERROR, str(_l("%(h)d時間バックアップがありません。", h=age // 3600)), figures)
    if age > 26 * 3600:
        return Check("backup", WARNING, str(_l("%(h)d時間バックアップがありません。", h=age // 3600)), figures)
    return Check("backup", OK, str(_l("%(h).1f時間前（%(mb).1f MB）", h=age / 3600,
                                     mb=detail.get("bytes", 0) / 1e6)), figures)


def check_bounces() -> Check:
    if not current_app.config.get("HOTNET_BOUNCE_IMAP_HOST"):
        return Check("bounces", WARNING, str(_l("届かなかったメールを受けるメールボックスが設定されていません。")))
    row = _status("bounces")
    age = _age(row.at if row else None)
    if age is None:
        return Check("bounces", WARNING, str(_l("まだ読み取っていません。")))
    figures = {"age_min": round(age / 60)}
    if (row.detail or {}).get("error"):
        return Check("bounces", ERROR, str(_l("前回の読み取りは失敗しました。")), figures)
    if age > 3 * 3600:
        return Check("bounces", WARNING, str(_l("%(m)d分間読み取っていません。", m=age // 60)), figures)
    return Check("bounces", OK, str(_l("%(m)d分前に読み取りました。", m=age // 60)), figures)


def run_checks() -> tuple[str, list[Check]]:
    """The overall state (the worst of all) and each check."""
    checks = [check_database()]
    if checks[0].state == ERROR:
        return ERROR, checks
    checks += [check_scheduler(), check_smtp(), check_mail_queue(), check_backup(), check_bounces()]
    if (shared := check_redis()) is not None:
        checks.append(shared)
    return max((c.state for c in checks), key=_RANK.__getitem__), checks


bp = Blueprint("health", __name__)


@bp.get("/healthz/ready")
def ready():
    """For monitoring: 200 unless something is in error (then 503). No personal data."""
    state, checks = run_checks()
    body = {"status": state, "checked_at": utcnow().isoformat(timespec="seconds"),
            "checks": {c.name: {"status": c.state, **c.figures} for c in checks}}
    return jsonify(body), 503 if state == ERROR else 200


@bp.get("/admin/status")
@admin_required
def status_page():
    state, checks = run_checks()
    return render_template("admin/status.html", state=state, checks=checks, names=NAMES,
                           state_names=STATE_NAMES, now=utcnow())

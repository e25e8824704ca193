"""The demo data, the demo mail catcher, the scheduler's job store, and the admin command."""
import smtplib

from sqlalchemy import func, select

from app.accounts.models import StaffUser
from app.dbtypes import utcnow
from app.extensions import db
from app.mailcatcher.server import FolderHandler
from app.supporters.models import LoginLink, Supporter
from app.text import is_kana
from tests.conftest import free_port, login_staff, make_supporter, page_text, post


def test_seed_demo_is_realistic_and_idempotent(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["hotnet", "seed-demo"])
    assert result.exit_code == 0, result.output
    assert "admin@hotnet.example.jp" in result.output
    coordinators = list(db.session.scalars(select(StaffUser).where(StaffUser.role == "coordinator")))
    assert len(coordinators) == 8
    per_area = {}
    for c in coordinators:
        for area in c.areas:
            per_area[area.code] = per_area.get(area.code, 0) + 1
    assert per_area == {"chubu": 2, "nanbu": 2, "hokutobu": 2, "seibu": 2}
    people = list(db.session.scalars(select(Supporter)))
    assert len([s for s in people if s.kind == "person"]) == 420
    assert len([s for s in people if s.kind == "business"]) == 40
    assert all(is_kana(s.kana) for s in people if s.kind == "person")
    assert len({s.district_id for s in people}) == 20
    assert {s.status for s in people} == {"active", "applied", "paused"}
    assert {s.delivery for s in people} == {"email", "post", "both", "none"}
    # Stored as the app stores what people type (〒 as 7 digits …): an edit that changes one
    # thing records only that, not the demo's own spelling of the rest.
    from app.supporters.records import normalise
    typed = ("name", "kana", "business_name", "business_kana", "contact_person", "email",
             "phone", "postal_code", "address")
    for s in people:
        stored = {key: getattr(s, key) for key in typed}
        assert normalise(stored) == stored, stored
    runner.invoke(args=["hotnet", "seed-demo"])
    assert db.session.scalar(select(func.count(Supporter.id))) == 460
    assert db.session.scalar(select(func.count(StaffUser.id))) == 9


def test_create_admin_command(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["hotnet", "create-admin", "--email", "boss@example.jp",
                                 "--name", "事務局 長", "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(StaffUser))
    assert user.role == "admin" and user.check_password("a-long-password")
    result = runner.invoke(args=["hotnet", "create-admin", "--email", "boss@example.jp",
                                 "--name", "x", "--password", "a-long-password"])
    assert result.exit_code != 0 and "すでに登録されています" in result.output


def test_mail_catcher_keeps_messages_that_staff_can_read(app, client, admin, mailbox, tmp_path):
    from aiosmtpd.controller import Controller
    supporter = make_supporter(email="catch@example.jp", delivery="email")
    post(client, "/login/link", {"email": supporter.email})
    (recipients, sent), = mailbox
    port = free_port()
    controller = Controller(FolderHandler(tmp_path), hostname="127.0.0.1", port=port)
    controller.start()
    try:  # the message the app sent, delivered over SMTP to the catcher
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(sent, to_addrs=recipients)
    finally:
        controller.stop()
    app.config["HOTNET_MAILCATCHER_DIR"] = str(tmp_path)
    login_staff(client, admin)
    inbox = page_text(client.get("/staff/mailbox"))
    assert "catch@example.jp" in inbox and "ほっとネット ログイン用リンク" in inbox
    key = next(tmp_path.glob("*.eml")).stem
    message = page_text(client.get(f"/staff/mailbox/{key}"))
    assert '<a href="https://hotnet.test/login/link/' in message


def test_mailbox_page_is_off_without_the_catcher(client, admin):
    login_staff(client, admin)
    assert client.get("/staff/mailbox").status_code == 404


JOBS = {"purge_expired_links", "start_due_newsletters", "deliver_newsletters", "concern_digest",
        "purge_expired_concerns", "training_reminders", "deliver_outbox", "housekeeping", "read_bounces",
        "backup"}


def test_scheduler_keeps_its_jobs_in_the_database(app):
    from apscheduler.schedulers.background import BackgroundScheduler
    from sqlalchemy import inspect, text

    from app.scheduler import build_scheduler
    scheduler = build_scheduler(app, BackgroundScheduler)
    scheduler.start(paused=True)
    try:
        assert {job.id for job in scheduler.get_jobs()} == JOBS
    finally:
        scheduler.shutdown(wait=True)
    with db.engine.connect() as conn:
        assert "scheduler_job" in inspect(conn).get_table_names()
        assert set(conn.execute(text("SELECT id FROM scheduler_job")).scalars()) == JOBS
        conn.execute(text("DROP TABLE scheduler_job"))
        conn.commit()


def test_expired_links_are_purged(app, geography):
    from datetime import timedelta

    from app.supporters.signin import purge_expired_links
    supporter = make_supporter()
    db.session.add_all([
        LoginLink(supporter_id=supporter.id, token_hash="a" * 64,
                  expires_at=utcnow() - timedelta(days=2)),
        LoginLink(supporter_id=supporter.id, token_hash="b" * 64,
                  expires_at=utcnow() + timedelta(minutes=10)),
    ])
    db.session.commit()
    assert purge_expired_links() == 1
    assert [link.token_hash[0] for link in db.session.scalars(select(LoginLink))] == ["b"]


def test_every_benchmark_imports():
    """`make bench` is not part of `make test`: at least its scripts must load."""
    import importlib
    import pathlib

    scripts = sorted(p.stem for p in pathlib.Path("bench").glob("*.py") if p.stem != "__init__")
    assert "newsletter_send" in scripts and "registry_search" in scripts
    for name in scripts:
        importlib.import_module(f"bench.{name}")

"""Backup and restore (issue 14): everything back after a disk dies, and nothing else loaded.

Each test builds its databases through the migrations, as a server does, fills every table
through the services, backs up while a newsletter is half sent, restores into a new empty
database and uploads folder, and compares every row and every file.
"""
from __future__ import annotations

import contextlib
import filecmp
import io
import json
import tarfile
from datetime import date, time, timedelta
from pathlib import Path

import pytest
from flask_migrate import upgrade
from PIL import Image
from sqlalchemy import inspect, select, text

from app import create_app, heartbeat
from app.backup import BackupError, known_revisions, nightly_backup, prune, restore_backup, write_backup
from app.extensions import db
from tests.conftest import make_database

PASSWORD = "backup-password-123"


@contextlib.contextmanager
def app_on(app, url: str, uploads: Path, **config):
    """An app of its own on another database and uploads folder (a second server)."""
    other = create_app(dict(app.config, SQLALCHEMY_DATABASE_URI=url,
                            HOTNET_UPLOAD_DIR=str(uploads), **config))
    with other.app_context():
        try:
            yield other
        finally:
            db.session.remove()
            db.engine.dispose()


def png(color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, "PNG")
    return out.getvalue()


def fill_every_table(mailbox) -> int:
    """Use every part of the app once; returns the newsletter being sent."""
    from flask import current_app

    from app.accounts.services import create_staff, grant_cover
    from app.concerns import services as concerns
    from app.concerns.digest import send_daily_digests
    from app.geography.services import list_districts, load_geography
    from app.newsletters import services as newsletters
    from app.newsletters.bounces import parse, record
    from app.newsletters.sender import run as send_newsletters
    from app.supporters import csvio
    from app.supporters import services as supporters
    from app.supporters.signin import request_login_link
    from app.trainings import services as trainings
    from tests.test_newsletter_editions import dsn

    load_geography(current_app.config["HOTNET_GEOGRAPHY"])
    supporters.ensure_business_categories()
    concerns.ensure_concern_categories()
    district = list_districts()[0]
    admin = create_staff("office@example.jp", "事務 局", PASSWORD, "admin", actor=None)
    coordinator = create_staff("coord@example.jp", "調整 花子", PASSWORD, "coordinator",
                               area_ids=[district.area_id], actor=admin)
    grant_cover(admin, coordinator, list_districts()[-1].area_id, date.today() + timedelta(days=7))
    people = [supporters.create_supporter({
        "kind": "person", "name": f"記録 {n}号", "kana": "きろく", "email": f"p{n}@example.jp",
        "delivery": "email", "status": "active", "joined_via": "staff", "district_id": district.id,
        "phone": "042-000-0000", "postal_code": "188-0012", "address": "西東京市南町1-1"},
        actor=coordinator) for n in range(12)]
    supporters.update_supporter(people[0], {"phone": "042-111-2222"}, actor=coordinator)
    supporters.apply({"kind": "person", "name": "申込 ㈱髙橋", "kana": "もうしこみ",
                      "email": "apply@example.jp", "delivery": "email", "district_id": district.id},
                     submission_key="k" * 32)
    supporters.view_supporter(people[1].id, actor=coordinator)
    request_login_link("p2@example.jp")
    csvio.stage("氏名,地区\n取込 一,{}\n".format(district.name).encode("utf-8"), "a.csv",
                coordinator.id)
    category = concerns.list_categories()[0]
    concern = concerns.submit_concern(
        {"category_id": category.id, "body": "郵便受けがいっぱい", "district_id": district.id,
         "urgency": "normal", "channel": "web", "reporter_email": "neighbour@example.jp"},
        photo=concerns.Photo(png((200, 10, 10)), "photo.png"))
    other = concerns.submit_concern({"category_id": category.id, "body": "同じ家のこと",
                                     "district_id": district.id, "urgency": "normal",
                                     "channel": "phone"}, staff=coordinator)
    concerns.link_concerns(concern, other.reference, actor=coordinator)
    from app.partners.services import save_agency
    agency = save_agency(None, {"kind": "houkatsu", "name": "中部地域包括支援センター",
                                "area_ids": [district.area_id], "district_ids": [district.id]},
                         actor=admin)
    people[4].can_help = ["watch"]
    db.session.commit()
    concerns.ask_for_help(concern, people[4].id, "watch", "北原公園の東のお宅に声かけを",
                          actor=coordinator)
    concerns.record_referral(concern, {"agency_id": agency.id, "referred_on": date.today(),
                                       "method": "phone", "consent": "consent",
                                       "passed_on": "訪問をお願いしました"}, actor=coordinator)
    concerns.change_status(concern, "acknowledged", actor=coordinator)
    current_app.config["HOTNET_DIGEST_HOUR"] = 0
    send_daily_digests()
    training = trainings.save_training(None, {"title": "傾聴の研修", "kind": "communication",
                                              "published": True}, actor=coordinator)
    session = trainings.add_session(training, {
        "day": date.today() + timedelta(days=20), "start_time": time(10), "end_time": time(12),
        "venue_name": "田無公民館", "capacity": 10}, actor=coordinator)
    trainings.sign_up(session.id, people[3], actor=people[3])
    newsletter = newsletters.save_draft(None, {
        "layout": "regular", "number": "第7号", "title": "冬の通信", "subject": "冬の通信",
        "body_md": "寒くなりました。"}, newsletters.audiences.Audience(), coordinator.id,
        image=png((10, 10, 200)))
    newsletters.start_send(newsletter.id, actor=coordinator)
    current_app.config["HOTNET_SEND_BATCH"] = 5
    send_newsletters(until_idle=False, max_batches=1)  # half way: the issue is still sending
    current_app.config["HOTNET_BOUNCE_ADDRESS"] = "bounces@example.jp"
    record(parse(dsn("bounces@example.jp", "5.1.1", recipient="p11@example.jp")))
    heartbeat.beat("scheduler", {"role": "active"})
    mailbox.clear()  # receipts, sign-in link, digest: delivered before the backup
    db.session.commit()
    with db.engine.connect() as conn:
        empty = [name for name in db.metadata.tables
                 if not conn.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first()]
    assert empty == [], f"the test leaves these tables empty: {empty}"
    return newsletter.id


def rows_of(url: str) -> dict[str, list[tuple]]:
    from sqlalchemy import create_engine
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name in sorted(inspect(conn).get_table_names()):
                columns = ", ".join(f'"{c["name"]}"' for c in inspect(conn).get_columns(name))
                rows = conn.execute(text(f'SELECT {columns} FROM "{name}"'))
                out[name] = sorted((tuple(row) for row in rows), key=repr)
            return out
    finally:
        engine.dispose()


@pytest.fixture
def servers(request, tmp_path_factory, tmp_path, backend, app):
    """(source URL, restore-target URL): both new, built by the migrations where needed."""
    from tests.conftest import database_url
    return (database_url(make_database(request, tmp_path_factory, backend)),
            database_url(make_database(request, tmp_path_factory, backend)))


def test_backup_while_sending_restores_every_row_and_file(app, servers, tmp_path, mailbox):
    source, target = servers
    with app_on(app, source, tmp_path / "uploads") as first:
        upgrade()
        newsletter_id = fill_every_table(mailbox)
        result = write_backup(tmp_path / "backups")
        before = rows_of(source)
        assert result.path.name.startswith("hotnet-") and result.revision == before[
            "alembic_version"][0][0]
        with tarfile.open(result.path) as archive:
            names = archive.getnames()
        assert "manifest.json" in names and "geography.toml" in names
        assert sum(name.startswith("uploads/") for name in names) == 2  # photo + picture
        uploads = Path(first.config["HOTNET_UPLOAD_DIR"])

    with app_on(app, target, tmp_path / "restored-uploads") as second:
        manifest = restore_backup(result.path)
        assert manifest["tables"]["supporter"] == len(before["supporter"])
        after = rows_of(target)
        for name in before:
            assert after[name] == before[name], f"table {name} differs after restore"
        restored = Path(second.config["HOTNET_UPLOAD_DIR"])
        files = sorted(p.relative_to(uploads) for p in uploads.rglob("*") if p.is_file())
        assert files and files == sorted(p.relative_to(restored) for p in restored.rglob("*")
                                         if p.is_file())
        assert all(filecmp.cmp(uploads / f, restored / f, shallow=False) for f in files)
        # The search index came back with the rows: everyone is found by name and phone.
        from app.supporters.models import Supporter
        from app.supporters.search import where_matches
        people = db.session.scalars(select(Supporter).where(Supporter.name != "")).all()
        assert len(people) > 10
        for person in people:
            for typed in (person.name, person.phone):
                assert person.id in db.session.scalars(
                    where_matches(select(Supporter.id), typed)).all(), typed

        # The restored server finishes the send: those who had it do not get it again.
        from app.newsletters.sender import run as send_newsletters
        from app.newsletters.services import progress
        already = progress(newsletter_id)["sent"]
        send_newsletters(until_idle=True)
        figures = progress(newsletter_id)
        assert already == 5 and figures["sent"] == 12 and figures["waiting"] == 0
        received = [a for rcpts, _m in mailbox for a in rcpts]
        assert len(received) == 12 - already == len(set(received))


def test_damaged_newer_or_misplaced_archives_are_refused(app, servers, tmp_path, mailbox):
    source, target = servers
    with app_on(app, source, tmp_path / "uploads"):
        upgrade()
        fill_every_table(mailbox)
        good = write_backup(tmp_path / "one.tar").path

    def variant(name: str, change) -> Path:
        with tarfile.open(good) as archive:
            members = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
        change(members)
        path = tmp_path / name
        with tarfile.open(path, "w") as archive:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return path

    def flip(members):
        key = next(k for k in members if k.startswith("database."))
        data = bytearray(members[key])
        data[len(data) // 2] ^= 0xFF
        members[key] = bytes(data)

    def newer(members):
        manifest = json.loads(members["manifest.json"])
        manifest["alembic_revision"] = "9999"
        members["manifest.json"] = json.dumps(manifest).encode()

    damaged, future = variant("damaged.tar", flip), variant("future.tar", newer)
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with app_on(app, target, tmp_path / "restored") as second:
        for path, message in ((damaged, "does not match its checksum"),
                              (truncated, "damaged"),
                              (future, "newer Hot-Net")):
            with pytest.raises(BackupError, match=message):
                restore_backup(path)
        with db.engine.connect() as conn:  # nothing was loaded by a refused archive
            assert inspect(conn).get_table_names() == []
        assert not Path(second.config["HOTNET_UPLOAD_DIR"]).exists()
        restore_backup(good)
        with pytest.raises(BackupError, match="not empty"):
            restore_backup(good)  # never over a database in use


def test_an_older_schema_is_migrated_forward(app, servers, tmp_path):
    source, target = servers
    with app_on(app, source, tmp_path / "uploads"):
        upgrade(revision="0010")
        from flask import current_app

        from app.geography.services import load_geography
        load_geography(current_app.config["HOTNET_GEOGRAPHY"])
        old = write_backup(tmp_path / "old.tar")
        assert old.revision == "0010"
    with app_on(app, target, tmp_path / "restored"):
        restore_backup(old.path)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == \
                known_revisions()[-1]
            assert "service_status" in inspect(conn).get_table_names()
            assert conn.execute(text("SELECT count(*) FROM district")).scalar() == 20


def test_nightly_backups_keep_the_newest_and_report_their_size(app, servers, tmp_path, mailbox):
    source, _target = servers
    folder = tmp_path / "nightly"
    with app_on(app, source, tmp_path / "uploads", HOTNET_BACKUP_DIR=str(folder),
                HOTNET_BACKUP_KEEP=3, HOTNET_BACKUP_HOUR=0):
        upgrade()
        first = nightly_backup()
        assert first is not None and nightly_backup() is None  # once a day
        row = heartbeat.last("backup")
        assert row.detail["bytes"] == first.bytes == first.path.stat().st_size
        for n in range(4):
            (folder / f"hotnet-2026010{n}-020000.tar").write_bytes(b"old")
        removed = prune(folder, 3)
        assert len(removed) == 2 and first.path.exists()
        assert len(list(folder.glob("hotnet-*.tar"))) == 3

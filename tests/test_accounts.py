"""Sign-in for staff (password) and supporters (one-time e-mailed link), and role checks."""
from datetime import timedelta

from sqlalchemy import select

from app.dbtypes import utcnow
from app.extensions import db
from app.supporters.models import LoginLink
from tests.conftest import (
    PASSWORD,
    csrf,
    login_staff,
    login_supporter,
    make_supporter,
    page_text,
    post,
    sign_in_link,
)


def test_staff_signs_in_and_out(client, admin):
    response = login_staff(client, admin)
    assert response.headers["Location"].endswith("/staff/supporters")
    assert client.get("/staff/supporters").status_code == 200
    post(client, "/logout")
    assert client.get("/staff/supporters").status_code == 302


def test_wrong_password_is_refused_with_japanese_message(client, admin):
    response = post(client, "/login", {"email": admin.email, "password": "wrong-password"})
    assert response.status_code == 200
    assert "メールアドレスかパスワードが違います" in page_text(response)
    assert f'value="{admin.email}"' in page_text(response)  # what was typed is kept
    assert client.get("/staff/supporters").status_code == 302


def test_password_is_stored_hashed(admin):
    assert PASSWORD not in admin.password_hash
    assert admin.check_password(PASSWORD)


def test_anonymous_visitor_cannot_see_registry(client, geography):
    for url in ("/staff/supporters", "/staff/supporters/export.csv", "/staff/supporters/import",
                "/admin/staff", "/admin/audit", "/admin/geography"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_supporter_cannot_see_registry(client, geography, mailbox):
    supporter = make_supporter(email="sup@example.jp", delivery="email")
    login_supporter(client, supporter, mailbox)
    for url in ("/staff/supporters", "/staff/supporters/export.csv",
                f"/staff/supporters/{supporter.id}", "/admin/audit"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "権限がありません" in page_text(response)


def test_coordinator_cannot_use_admin_pages(client, coordinator):
    login_staff(client, coordinator)
    assert client.get("/staff/supporters").status_code == 200
    for url in ("/admin/staff", "/admin/audit", "/admin/geography", "/admin/categories"):
        assert client.get(url).status_code == 403, url


def test_sign_in_link_arrives_signs_in_and_works_once(client, geography, mailbox):
    make_supporter(email="Hanako@Example.jp", delivery="email")
    response = post(client, "/login/link", {"email": "hanako@example.jp"}, follow_redirects=True)
    assert "ログイン用のリンクをお送りします" in page_text(response)
    assert len(mailbox) == 1
    recipients, message = mailbox[0]
    assert recipients == ["Hanako@Example.jp"]
    assert "ログイン" in message["Subject"]
    link = sign_in_link(mailbox, "Hanako@Example.jp")

    # Opening the link (or a mail scanner fetching it) does not use it up.
    assert client.get(link).status_code == 200
    assert client.get(link).status_code == 200
    response = post(client, link)
    assert response.status_code == 302 and response.headers["Location"].endswith("/me")
    assert "山田 太郎 様" in page_text(client.get("/me"))

    # A second use is refused kindly, with a way to get a new link.
    post(client, "/logout")
    response = post(client, link)
    assert response.status_code == 410
    body = page_text(response)
    assert "すでに一度使われています" in body and "新しいリンクを送る" in body
    assert client.get("/me").status_code == 302


def test_expired_link_says_so_and_offers_a_new_one(client, geography, mailbox):
    supporter = make_supporter(email="late@example.jp", delivery="email")
    post(client, "/login/link", {"email": supporter.email})
    link = sign_in_link(mailbox, supporter.email)
    row = db.session.scalar(select(LoginLink))
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = post(client, link)
    assert response.status_code == 410
    assert "有効期限（30分）が過ぎています" in page_text(response)
    assert client.get("/me").status_code == 302


def test_link_is_valid_for_thirty_minutes(client, geography, mailbox):
    supporter = make_supporter(email="t30@example.jp", delivery="email")
    before = utcnow()
    post(client, "/login/link", {"email": supporter.email})
    row = db.session.scalar(select(LoginLink))
    assert timedelta(minutes=29) < row.expires_at - before <= timedelta(minutes=30, seconds=5)
    assert len(row.token_hash) == 64 and row.token_hash not in sign_in_link(mailbox, supporter.email)


def test_unknown_address_gets_the_same_answer_and_no_mail(client, geography, mailbox):
    response = post(client, "/login/link", {"email": "nobody@example.jp"}, follow_redirects=True)
    assert response.status_code == 200
    assert "ログイン用のリンクをお送りします" in page_text(response)
    assert mailbox == []


def test_withdrawn_supporter_gets_no_link(client, geography, mailbox):
    from app.supporters.services import withdraw
    supporter = make_supporter(email="gone@example.jp", delivery="email")
    withdraw(supporter, actor=None)
    post(client, "/login/link", {"email": "gone@example.jp"})
    assert mailbox == []


def test_forms_without_csrf_token_are_refused(client, admin):
    response = client.post("/login", data={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "有効期限が切れました" in page_text(response)
    assert client.get("/staff/supporters").status_code == 302


def test_sign_in_attempts_are_rate_limited(app, client, admin):
    from app.extensions import limiter
    limiter.reset()
    app.config["HOTNET_LOGIN_RATE_LIMIT"] = "3 per minute"
    token = csrf(client)
    codes = [client.post("/login", data={"csrf_token": token, "email": admin.email,
                                         "password": "wrong-password"}).status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.post("/login", data={"csrf_token": token, "email": admin.email,
                                           "password": PASSWORD})
    assert response.status_code == 429
    assert "しばらくお待ちください" in page_text(response)


def test_admin_creates_a_coordinator_who_can_sign_in(client, admin):
    from app.geography.models import Area
    login_staff(client, admin)
    area = db.session.scalar(select(Area).where(Area.code == "chubu"))
    response = post(client, "/admin/staff/new", {
        "email": "new.coord@example.jp", "name": "新人 調整", "kana": "しんじん ちょうせい",
        "role": "coordinator", "station_id": str(area.station_id), "area_ids": [str(area.id)],
        "active": "y", "password": "short"})
    assert "10文字以上" in page_text(response)
    assert 'value="new.coord@example.jp"' in page_text(response)
    # Typed full-width, as a Japanese keyboard may: stored as the address it stands for.
    response = post(client, "/admin/staff/new", {
        "email": "ｎｅｗ．ｃｏｏｒｄ＠ｅｘａｍｐｌｅ．ｊｐ", "name": "新人 調整",
        "kana": "しんじん ちょうせい", "role": "coordinator", "station_id": str(area.station_id),
        "area_ids": [str(area.id)], "active": "y", "password": "long-enough-password"})
    assert response.status_code == 302
    post(client, "/logout")
    response = post(client, "/login", {"email": "new.coord@example.jp",
                                       "password": "long-enough-password"})
    assert response.status_code == 302
    from app.accounts.models import StaffUser
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == "new.coord@example.jp"))
    assert [a.code for a in user.areas] == ["chubu"] and user.station.code == "tanashi"


def test_admins_reach_what_only_they_do_from_one_menu_entry(client, admin, coordinator):
    """The menu keeps the daily work; 管理 leads an admin to the seven admin pages, each
    with what it is for. Coordinators see neither the entry nor the page."""
    login_staff(client, admin)
    menu = page_text(client.get("/staff/supporters"))
    assert '<a href="/admin">管理</a>' in menu and '<a href="/admin/audit">' not in menu
    hub = page_text(client.get("/admin"))
    for url in ("/admin/staff", "/admin/geography", "/admin/categories",
                "/admin/concern-categories", "/admin/audit", "/admin/mail", "/admin/status"):
        assert f'<dt><a href="{url}">' in hub, url
        assert client.get(url).status_code == 200, url
    post(client, "/logout")
    login_staff(client, coordinator)
    assert '<a href="/admin">' not in page_text(client.get("/staff/supporters"))
    assert client.get("/admin").status_code == 403

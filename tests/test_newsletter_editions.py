"""Newsletters that reach every supporter whole (issue 12): every edition complete and alive,
a readable text part, the picture kept, cancelled issues accounted for, audiences, the test
mail, DKIM, bounces read and acted on, mobile carrier addresses. Both databases."""
from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.newsletters import services
from app.newsletters.models import Delivery, Newsletter
from app.newsletters.sender import run
from tests.conftest import csrf, district, login_staff, mails_to, make_supporter, page_text, post, text_of

BODY = ("## 冬の集い\n\n寒い日が続きますが、**お元気**でお過ごしでしょうか。今年も地域の皆さまの"
        "おかげで、たくさんのお知らせをいただきました。詳しくは[ほっとネットのページ]"
        "(https://hotnet.test/newsletters)をご覧ください。\n\n- 見守りのコツ\n- 声かけのしかた\n")


def issue(client, **changes) -> str:
    data = {"layout": "regular", "number": "第5号", "title": "冬の通信", "subject": "冬の通信",
            "body_md": BODY, "station_id": "0", "area_id": "0", "kind": "", "category_id": "0",
            "training_id": "0", "include_trainings": "y",
            "stats_from": (date.today() - timedelta(days=40)).isoformat(),
            "stats_to": date.today().isoformat()}
    data.update(changes)
    response = post(client, "/staff/newsletters/new", data)
    assert response.status_code == 302, page_text(response)
    return response.headers["Location"]


@pytest.fixture
def readers(geography):
    from app.concerns.models import ConcernCategory
    from app.concerns.services import submit_concern
    from tests.test_trainings import make_session
    make_session(capacity=20)  # コミュニケーション研修（冬）
    category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
    for _ in range(4):
        submit_concern({"category_id": category.id, "body": "x", "urgency": "normal",
                        "district_id": district("d01").id})
    return {"mail": make_supporter(name="読者 一", kana="どくしゃ はじめ", email="one@example.jp",
                                   delivery="email"),
            "post": make_supporter(name="郵送 二", kana="ゆうそう じ", delivery="post")}


# --- 1, 2: every edition complete and alive -----------------------------------------------------

def test_every_edition_carries_the_sections_the_email_had(client, coordinator, readers, mailbox):
    login_staff(client, coordinator)
    url = issue(client)
    newsletter_id = int(url.rstrip("/").rsplit("/", 1)[1])
    post(client, url + "/send")
    run(until_idle=True)
    [message] = mails_to(mailbox, "one@example.jp")
    text, html = text_of(message), message.get_body(("html",)).get_content()
    printed = page_text(client.get(url + "/print"))
    web = page_text(client.application.test_client().get(f"/newsletters/{newsletter_id}"))
    for edition in (text, html, printed, web):
        assert "研修のご案内" in edition and "コミュニケーション研修（冬）" in edition
        assert "寄せられた「気になること」の件数" in edition
    # The sections are those of the day it was sent: a session added later is not in them.
    from tests.test_trainings import make_session
    make_session(capacity=5, days=12)
    from app.trainings.models import Training
    db.session.execute(Training.__table__.update().where(Training.id == 2).values(title="後から"))
    db.session.commit()
    assert "後から" not in page_text(client.application.test_client().get(f"/newsletters/{newsletter_id}"))


def test_the_web_link_works_from_the_first_message_and_after_a_cancel(client, coordinator, readers,
                                                                      mailbox):
    anonymous = client.application.test_client()
    for n in range(3):
        make_supporter(name=f"読者 {n}", kana="どくしゃ", email=f"r{n}@example.jp", delivery="email")
    login_staff(client, coordinator)
    url = issue(client)
    newsletter_id = int(url.rstrip("/").rsplit("/", 1)[1])
    assert anonymous.get(f"/newsletters/{newsletter_id}").status_code == 404  # a draft
    post(client, url + "/send")
    run(until_idle=True, max_batches=0)
    assert anonymous.get(f"/newsletters/{newsletter_id}").status_code == 200  # sending
    assert "冬の通信" not in page_text(anonymous.get("/newsletters"))  # not listed yet
    from flask import current_app
    current_app.config["HOTNET_SEND_BATCH"] = 1
    run(until_idle=True, max_batches=1)
    post(client, url + "/cancel")
    assert db.session.get(Newsletter, newsletter_id).status == "cancelled"
    assert anonymous.get(f"/newsletters/{newsletter_id}").status_code == 200  # 1 person has it
    other = issue(client, title="届かなかった号")
    post(client, other + "/send")
    post(client, other + "/cancel")
    assert anonymous.get(other.replace("/staff", "")).status_code == 404  # nobody got it


# --- 3: the text part -----------------------------------------------------------------------------

def test_the_text_part_is_written_for_reading_not_markdown(client, coordinator, readers, mailbox):
    login_staff(client, coordinator)
    url = issue(client)
    post(client, url + "/send")
    run(until_idle=True)
    text = text_of(mails_to(mailbox, "one@example.jp")[0])
    assert "##" not in text and "**" not in text and "](" not in text
    assert "【冬の集い】" in text and "・見守りのコツ" in text
    assert "ほっとネットのページ" in text and "（https://hotnet.test/newsletters）" in text
    from app.newsletters.plaintext import _width
    for line in text.splitlines():
        assert _width(line) <= 60 or "http" in line, line
    block = text.split("【研修のご案内】")[1]
    # The station has no phone number yet: the link only (not "by phone too" with no number).
    assert "\n  申込み・詳しく:\n  https://hotnet.test/trainings/" in block
    assert "電話" not in block
    assert re.search(r"\n  残り \d+ 席（定員 20 人）\n", block)  # indented with the session's lines


def test_the_training_section_gives_the_readers_own_station_to_call(client, coordinator, readers,
                                                                    mailbox):
    """Signing up by phone is offered with the number to call: the reader's own station's
    (as the contact box below says), and not at all where the station has no number yet."""
    station = district("d01").area.station
    station.phone = "042-000-1111"
    other = district("d11").area.station
    assert other.id != station.id and other.phone == ""
    db.session.commit()
    make_supporter(name="田無 三", kana="たなし さん", email="three@example.jp", delivery="email",
                   district_id=district("d01").id)
    make_supporter(name="保谷 四", kana="ほうや よん", email="four@example.jp", delivery="email",
                   district_id=district("d11").id)
    login_staff(client, coordinator)
    post(client, issue(client) + "/send")
    run(until_idle=True)
    [near] = mails_to(mailbox, "three@example.jp")
    block = text_of(near).split("【研修のご案内】")[1]
    assert "\n  申込み・詳しく（お電話でも: 042-000-1111）:\n  https://hotnet.test/trainings/" in block
    html = near.get_body(("html",)).get_content()
    assert re.search(r"申し込む・詳しく見る</a>（お電話でも: <span[^>]*>042-000-1111</span>）", html)
    [far] = mails_to(mailbox, "four@example.jp")
    assert "お電話" not in text_of(far)
    assert "お電話" not in far.get_body(("html",)).get_content()


# --- 4: a picture is kept when the issue is saved again --------------------------------------

def test_saving_an_issue_with_a_picture_without_choosing_a_file_keeps_it(client, coordinator,
                                                                        readers):
    from PIL import Image
    login_staff(client, coordinator)
    picture = io.BytesIO()
    Image.new("RGB", (30, 20), (20, 120, 20)).save(picture, "PNG")
    data = {"layout": "regular", "number": "", "title": "写真の号", "subject": "件名",
            "body_md": "本文", "station_id": "0", "area_id": "0", "kind": "", "category_id": "0",
            "training_id": "0", "csrf_token": csrf(client, "/staff/newsletters/new"),
            "image": (io.BytesIO(picture.getvalue()), "p.png")}
    response = client.post("/staff/newsletters/new", data=data, content_type="multipart/form-data")
    url = response.headers["Location"]
    stored = db.session.scalar(select(Newsletter.image))
    response = client.post(url + "/edit", data=dict(data, title="写真の号（改）", image=None,
                                                     csrf_token=csrf(client, url + "/edit")),
                           content_type="multipart/form-data")
    assert response.status_code == 302, page_text(response)
    db.session.expire_all()
    newsletter = db.session.scalar(select(Newsletter))
    assert newsletter.title == "写真の号（改）" and newsletter.image == stored


# --- 5: cancelled and copied ---------------------------------------------------------------------

def test_a_cancelled_issue_says_who_got_it_and_can_be_copied(app, client, coordinator, readers,
                                                            mailbox):
    for n in range(4):
        make_supporter(name=f"読者 {n}", kana="どくしゃ", email=f"c{n}@example.jp", delivery="email")
    login_staff(client, coordinator)
    url = issue(client)
    post(client, url + "/send")
    app.config["HOTNET_SEND_BATCH"] = 2
    run(until_idle=True, max_batches=1)
    post(client, url + "/cancel")
    page = page_text(client.get(url))
    assert "送ったのは 2 人、送らなかったのは 3 人" in page
    assert "取り消しで送らなかった方" in page and "読者" in page
    response = post(client, url + "/copy")
    assert response.status_code == 302 and response.headers["Location"].endswith("/edit")
    copy = db.session.scalar(select(Newsletter).where(Newsletter.status == "draft"))
    original = db.session.scalar(select(Newsletter).where(Newsletter.status == "cancelled"))
    assert copy.body_md == original.body_md and copy.blocks == original.blocks
    assert copy.audience == original.audience and copy.frozen_blocks is None


# --- 6: audiences, preview, the test mail ----------------------------------------------------------

def test_audience_by_station_and_several_districts_counted_before_saving(client, coordinator,
                                                                         geography):
    a = make_supporter(name="田無 一", kana="たなし", email="a@example.jp", delivery="email",
                       district_id=district("d01").id)
    make_supporter(name="保谷 二", kana="ほうや", email="b@example.jp", delivery="email",
                   district_id=district("d20").id)
    c = make_supporter(name="南 三", kana="みなみ", email="c@example.jp", delivery="both",
                       postal_code="188-0013", address="西東京市向台町1", district_id=district("d06").id)
    login_staff(client, coordinator)
    station = district("d01").area.station_id
    response = post(client, "/staff/newsletters/new", {
        "layout": "regular", "title": "", "subject": "", "body_md": "", "station_id": str(station),
        "area_id": "0", "kind": "", "category_id": "0", "training_id": "0", "check": "1"})
    page = page_text(response)
    assert response.status_code == 200 and "メールで 2 人" in page  # 田無 = 中部 + 南部
    assert db.session.scalar(select(Newsletter.id)) is None  # nothing saved
    counted = client.get("/staff/newsletters/audience-count", query_string={
        "district_ids": [str(district("d01").id), str(district("d06").id)]}).get_json()
    assert counted["email"] == 2 and counted["post"] == 1 and counted["both"] == 1
    assert a.id and c.id


def test_preview_finds_anyone_and_the_test_mail_is_the_real_thing(app, client, coordinator,
                                                                  geography, mailbox):
    for n in range(60):
        make_supporter(name=f"多数 {n:02d}", kana="たすう", email=f"m{n}@example.jp",
                       delivery="email")
    last = make_supporter(name="渡邉 最後", kana="んん さいご", email="last@example.jp",
                          delivery="email")
    login_staff(client, coordinator)
    url = issue(client, include_trainings="", stats_from="", stats_to="")
    page = page_text(client.get(url + "/preview", query_string={"q": "渡辺"}))
    assert "渡邉 最後" in page
    page = page_text(client.get(url + "/preview", query_string={"supporter": last.id}))
    assert "渡邉 最後 様" in page
    post(client, url + "/test")
    [test] = mails_to(mailbox, coordinator.email)
    body = text_of(test)
    assert str(test["Subject"]).startswith("[テスト]") and "調整 花子 様" in body
    assert "中部圏域の担当" in body  # the coordinator's own area
    assert str(test["Message-ID"]).endswith("@hotnet.example.jp>")
    assert test["List-Unsubscribe"]


# --- 8: mobile carrier addresses ----------------------------------------------------------------

def test_mobile_carrier_addresses_are_told_how_to_let_our_mail_in(client, geography, mailbox):
    response = post(client, "/apply", {"name": "携帯 花子", "kana": "けいたい はなこ",
                                       "email": "hanako@docomo.ne.jp", "delivery": "email",
                                       "district_id": "0", "consent": "y"}, follow_redirects=True)
    assert "ドメイン指定受信" in page_text(response) and "example.jp" in page_text(response)
    [welcome] = mails_to(mailbox, "hanako@docomo.ne.jp")
    assert "ドメイン指定受信" in text_of(welcome)
    post(client, "/apply", {"name": "普通 太郎", "kana": "ふつう たろう", "email": "taro@example.jp",
                            "delivery": "email", "district_id": "0", "consent": "y"})
    assert "ドメイン指定受信" not in text_of(mails_to(mailbox, "taro@example.jp")[0])


# --- 9: DKIM -------------------------------------------------------------------------------------

def test_messages_are_signed_with_dkim_and_the_signature_verifies(app, client, coordinator,
                                                                  geography, mailbox, tmp_path):
    import dkim
    runner = app.test_cli_runner()
    key = tmp_path / "dkim.key"
    result = runner.invoke(args=["hotnet", "dkim-keygen", "--domain", "example.jp",
                                 "--selector", "hn2026", "--out", str(key)])
    assert result.exit_code == 0, result.output
    record = re.search(r'"(v=DKIM1;[^"]+)"', result.output).group(1)
    assert "hn2026._domainkey.example.jp." in result.output
    app.config.update(HOTNET_DKIM_DOMAIN="example.jp", HOTNET_DKIM_SELECTOR="hn2026",
                      HOTNET_DKIM_KEY_FILE=str(key))
    make_supporter(email="signed@example.jp", delivery="email")
    login_staff(client, coordinator)
    url = issue(client, include_trainings="", stats_from="", stats_to="")
    post(client, url + "/send")
    run(until_idle=True)
    post(client, "/login/link", {"email": "signed@example.jp"})
    messages = mails_to(mailbox, "signed@example.jp")
    assert len(messages) == 2  # the newsletter and a sign-in link from the outbox
    dns = lambda name, timeout=5: record.encode() if name == b"hn2026._domainkey.example.jp." else None  # noqa: E731
    for message in messages:
        assert message["DKIM-Signature"] and "d=example.jp" in str(message["DKIM-Signature"])
        assert dkim.verify(message.raw, dnsfunc=dns)
        assert not dkim.verify(message.raw.replace(b"Subject:", b"Subject: X"), dnsfunc=dns)


# --- 7: bounces, parsed and acted on (the full path with Postfix and Dovecot is in
# tests/reliability/test_bounces.py) --------------------------------------------------------------

def dsn(to: str, status: str, action: str = "failed", recipient: str = "gone@example.jp") -> bytes:
    return (f"From: Mail Delivery System <MAILER-DAEMON@relay.test>\r\nTo: {to}\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{status}.{recipient}@relay>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
            "boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsorry\r\n--B\r\n"
            "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.test\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; 550 {status} User unknown\r\n\r\n--B--\r\n").encode()


def test_bounce_reports_hold_addresses_hard_at_once_soft_after_three(app, client, geography,
                                                                    mailbox):
    from app.newsletters.bounces import parse, record
    from app.outbox.mailauth import return_path
    app.config["HOTNET_BOUNCE_ADDRESS"] = "bounces@example.jp"
    gone = make_supporter(name="不達 一", kana="ふたつ", email="gone@example.jp", delivery="both")
    full = make_supporter(name="満杯 二", kana="まんぱい", email="full@example.jp", delivery="email")
    newsletter = services.save_draft(None, {"layout": "announcement", "number": "", "title": "号",
                                            "subject": "号", "body_md": "本文"},
                                     services.audiences.Audience(), None)
    services.start_send(newsletter.id, actor=None)
    rows = {d.supporter_id: d.id for d in db.session.scalars(select(Delivery))}
    report = parse(dsn(return_path("d", rows[gone.id]), "5.1.1"))
    assert report.kind == "hard" and report.source == ("d", rows[gone.id])
    assert record(report) is not None and record(report) is None  # once
    db.session.refresh(gone)
    assert gone.email_held_at is not None and gone.delivery == "post" and "5.1.1" in gone.email_hold_reason
    for n in range(3):
        soft = parse(dsn(return_path("d", rows[full.id]), f"4.2.{n}", "delayed", "full@example.jp"))
        assert soft.kind == "soft"
        record(soft)
        db.session.refresh(full)
        assert (full.email_held_at is not None) == (n == 2)
    # A forged return path proves nothing; a plain text bounce is still understood.
    forged = parse(dsn("bounces+d1-0000000000@example.jp", "5.1.1"))
    assert forged.source is None
    plain = parse(b"From: MAILER-DAEMON@x\r\nTo: bounces@example.jp\r\nMessage-ID: <p@x>\r\n"
                  b"Subject: failure\r\n\r\n<someone@example.jp>: 550 User unknown\r\n")
    assert plain.kind == "hard" and plain.address == "someone@example.jp"
    # Held addresses get no newsletter; staff see them, with the carrier count.
    second = services.save_draft(None, {"layout": "announcement", "number": "", "title": "次",
                                        "subject": "次", "body_md": "本文"},
                                 services.audiences.Audience(), None)
    services.start_send(second.id, actor=None)
    assert db.session.scalar(select(Delivery.id).where(Delivery.newsletter_id == second.id)) is None
    from app.accounts.services import create_staff
    from tests.conftest import PASSWORD  # noqa: F401
    office = create_staff("office@example.jp", "事務 局", "office-password-1", "admin", actor=None)
    login_staff(client, office, "office-password-1")
    page = page_text(client.get("/staff/mail/held"))
    assert "gone@example.jp" in page and "full@example.jp" in page and "5.1.1" in page


def test_a_held_supporter_confirms_an_address_at_sign_in(client, geography, mailbox):
    from app.supporters.services import hold_email
    person = make_supporter(email="back@example.jp", delivery="email")
    hold_email(person, "550 5.1.1 User unknown")
    db.session.commit()
    post(client, "/login/link", {"email": person.email})
    from tests.conftest import sign_in_link
    response = post(client, sign_in_link(mailbox, person.email))
    assert response.headers["Location"].endswith("/me/email")
    page = page_text(client.get("/me/email"))
    assert "届けられない" in page and "back@example.jp" in page
    response = post(client, "/me/email", {"email": "back@example.jp", "delivery": "email"})
    assert response.status_code == 302
    db.session.refresh(person)
    assert person.email_held_at is None and person.delivery == "email"

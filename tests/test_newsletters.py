"""Newsletters end to end against a real SMTP server: writing, audience, preview, the messages
and their headers, unsubscribing, the ledger under SMTP failures, pause/cancel/retry, scheduling."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.dbtypes import utcnow
from app.extensions import db
from app.newsletters import services
from app.newsletters.models import Delivery, Newsletter
from app.newsletters.sender import run
from app.supporters.models import Supporter
from tests.conftest import district, login_staff, make_supporter, page_text, post

BODY = "## 冬の研修\n\n寒くなりました。<script>alert(1)</script>\n\n- 12月の研修\n- [申込み](https://hotnet.test/trainings)\n"


def write(client, **changes) -> str:
    data = {"layout": "regular", "number": "第1号", "title": "冬の通信",
            "subject": "ほっとネット通信 第1号", "body_md": BODY, "area_id": "0",
            "district_id": "0", "kind": "", "category_id": "0"}
    data.update(changes)
    response = post(client, "/staff/newsletters/new", data)
    assert response.status_code == 302, page_text(response)
    return response.headers["Location"]


@pytest.fixture
def people(geography):
    return {
        "email": make_supporter(name="山田 太郎", kana="やまだ たろう", email="taro@example.jp",
                                delivery="email"),
        "both": make_supporter(name="青木 花子", kana="あおき はなこ", email="hanako@example.jp",
                               delivery="both", district_id=district("d11").id),
        "post": make_supporter(name="郵便 一郎", kana="ゆうびん いちろう", delivery="post"),
        "paused": make_supporter(name="休止 次郎", kana="きゅうし じろう", email="paused@example.jp",
                                 delivery="email", status="paused"),
        "none": make_supporter(name="不要 三郎", kana="ふよう さぶろう", email="none@example.jp",
                               delivery="none"),
    }


def by_recipient(mailbox) -> dict:
    found = {}
    for recipients, message in mailbox:
        for address in recipients:
            found.setdefault(address, []).append(message)
    return found


def test_writing_needs_title_subject_and_body_and_keeps_input(client, coordinator):
    login_staff(client, coordinator)
    response = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "第2号", "title": "", "subject": "", "body_md": "本文だけ",
        "area_id": "0", "district_id": "0", "kind": "", "category_id": "0"})
    body = page_text(response)
    assert "題名を入力してください。" in body and "メールの件名を入力してください。" in body
    assert "本文だけ" in body and 'value="第2号"' in body
    assert db.session.scalar(select(func.count(Newsletter.id))) == 0


def test_audience_counts_per_channel_before_sending(client, coordinator, people):
    login_staff(client, coordinator)
    url = write(client)
    assert "メールで 2 人、郵送で 2 人（両方で受け取る 1 人を含む。活動中の対象 4 人）" in page_text(client.get(url))
    hokutobu = district("d11").area_id
    url = write(client, area_id=str(hokutobu))
    assert "メールで 1 人、郵送で 1 人（両方で受け取る 1 人を含む。活動中の対象 1 人）" in page_text(client.get(url))


def test_preview_side_by_side_as_a_chosen_recipient_and_sanitised(client, coordinator, people):
    login_staff(client, coordinator)
    url = write(client)
    # 青木 lives in another area: a coordinator of 中部 previews only their own area's people.
    page = page_text(client.get(url + "/preview", query_string={"supporter": people["both"].id}))
    assert "青木 花子 様" not in page
    coordinator.all_areas = True
    db.session.commit()
    page = page_text(client.get(url + "/preview", query_string={"supporter": people["both"].id}))
    assert "青木 花子 様" in page  # the text version, as that recipient
    assert "HTML版" in page and "テキスト版" in page and "<iframe" in page
    html = page_text(client.get(url + "/preview.html",
                                query_string={"supporter": people["both"].id}))
    assert "青木 花子 様" in html and "<h2" in html and "北東部圏域の担当" in html
    assert "<script>" not in html and "alert(1)" in html  # shown as text, never run
    assert "style=" in html  # CSS inlined


def test_test_send_goes_to_my_address_only(client, coordinator, people, mailbox):
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/test")
    (recipients, message), = mailbox
    assert recipients == [coordinator.email] and message["Subject"].startswith("[テスト]")
    assert db.session.scalar(select(func.count(Delivery.id))) == 0
    # As a recipient's would read if sent now: dated today, with the coordinator's area.
    from app.formatting import format_date
    text = message.get_body(("plain",)).get_content()
    assert f"第1号　{format_date(utcnow())}" in text and "調整 花子" in text
    # Its unsubscribe link says it belongs to a test (not "this link cannot be used").
    link = message["List-Unsubscribe"].strip("<>")
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    for response in (client.get(path), client.post(path)):
        assert response.status_code == 200
        assert "これはテスト送信のメールのリンクです。何も変わっていません。" in page_text(response)
    assert all(s.unsubscribed_at is None for s in db.session.scalars(select(Supporter)))


def test_sent_messages_are_complete_and_personal(client, coordinator, people, mailbox):
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    report = run(until_idle=True)
    assert (report.sent, report.failed, report.deferred) == (2, 0, 0)
    received = by_recipient(mailbox)
    assert set(received) == {"taro@example.jp", "hanako@example.jp"}
    message = received["hanako@example.jp"][0]
    assert message["Subject"] == "ほっとネット通信 第1号"
    alternative = next(p for p in message.walk() if p.get_content_type() == "multipart/alternative")
    parts = [p.get_content_type() for p in alternative.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "青木 花子 様" in text and "青木 花子 様" in html
    assert "北東部圏域" in text and 'style="' in html and "<style" not in html
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://hotnet.test/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] and message["Message-ID"].startswith(
        f"<hotnet.{url.rsplit('/', 1)[1]}.{people['both'].id}@")
    assert unsubscribe in text and unsubscribe.replace("&", "&amp;") in html
    assert message.get_all("Message-ID") == [message["Message-ID"]]  # only one
    # Every body line as RFC 2045 wants it: base64 in lines of at most 76 characters, CRLF.
    body = message.raw.split(b"\r\n\r\n", 1)[1]
    assert body.endswith(b"--\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    newsletter = db.session.scalar(select(Newsletter))
    assert newsletter.status == "sent" and newsletter.post_count == 2
    for delivery in db.session.scalars(select(Delivery)):
        assert abs((utcnow() - delivery.sent_at).total_seconds()) < 60  # stored as UTC
        assert delivery.attempts == 1 and delivery.claimed_by == ""


def test_the_web_link_of_a_test_send_opens_for_staff_only(client, coordinator, people, mailbox):
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/test")
    (_recipients, message), = mailbox
    link = re.search(r"ウェブで読む: (\S+)", message.get_body(("plain",)).get_content()).group(1)
    path = link.replace("https://hotnet.test", "")
    response = client.get(path)
    assert response.status_code == 200 and "冬の通信" in page_text(response)
    assert "まだ送っていない号です。職員だけがこのページを見られます。" in page_text(response)
    assert "no-store" in response.headers["Cache-Control"]
    assert client.application.test_client().get(path).status_code == 404  # not public yet
    post(client, url + "/send")
    public = client.application.test_client().get(path)
    assert public.status_code == 200 and "まだ送っていない号です" not in page_text(public)


def test_a_long_japanese_subject_is_folded_with_crlf_as_every_line(client, coordinator, people,
                                                                     mailbox):
    """A subject long enough to be folded: no line of the message, header or body, may end in
    a bare LF (strict servers, e.g. Exchange Online, refuse such mail), in the test send too."""
    subject = "【ほっとネット】冬号のお知らせと研修のご案内（西東京市社会福祉協議会）"
    login_staff(client, coordinator)
    url = write(client, subject=subject)
    post(client, url + "/test")
    post(client, url + "/send")
    run(until_idle=True)
    assert len(mailbox) == 3
    for _recipients, message in mailbox:
        assert b"\n" not in message.raw.replace(b"\r\n", b""), message.raw.split(b"\r\n\r\n")[0]
        head = message.raw.split(b"\r\n\r\n", 1)[0]
        assert b"\r\n =?utf-8?" in head  # it was folded
        assert message["Subject"].endswith(subject)


def test_unsubscribe_get_asks_post_unsubscribes_even_one_click(client, coordinator, people,
                                                                mailbox):
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    run(until_idle=True)
    message = by_recipient(mailbox)["hanako@example.jp"][0]
    link = message["List-Unsubscribe"].strip("<>").replace("https://hotnet.test", "")
    anonymous = client.application.test_client()
    page = page_text(anonymous.get(link))
    assert "配信を停止する" in page
    db.session.refresh(people["both"])
    assert people["both"].delivery == "both"  # a GET never unsubscribes
    # RFC 8058: the mail client POSTs this body, without any form token or sign-in.
    response = anonymous.post(link, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "配信を停止しました" in page_text(response)
    db.session.refresh(people["both"])
    assert people["both"].delivery == "post" and people["both"].unsubscribed_at is not None
    assert anonymous.post(link).status_code == 200  # twice is fine
    # Opened again later, the link says it is done instead of asking again.
    again = page_text(anonymous.get(link))
    assert "メールでの通信の配信を停止しました。" in again and "配信を停止する" not in again
    assert '<a href="/me">マイページを開く（メールでログインします）</a>' in again  # to change it
    assert anonymous.get("/me").headers["Location"].endswith("/login/link?next=/me")  # way in
    counts = services.audiences.counts(services.audiences.Audience())
    assert counts["email"] == 1 and counts["post"] == 2
    assert anonymous.get("/u/forged-token").status_code == 404


def test_links_mailed_by_earlier_versions_still_unsubscribe(client, coordinator, people, mailbox):
    """Unsubscribe links never expire: one made as earlier versions made them (itsdangerous's
    URLSafeSerializer as it is) is the same link as today's, and it works."""
    from itsdangerous import URLSafeSerializer

    from app.newsletters.tokens import make_unsubscribe_token, read_unsubscribe_token
    login_staff(client, coordinator)
    post(client, write(client) + "/send")
    run(until_idle=True)
    newsletter = db.session.scalar(select(Newsletter))
    earlier = URLSafeSerializer(client.application.config["SECRET_KEY"],
                                salt="hotnet-unsubscribe")
    mailed = by_recipient(mailbox)["hanako@example.jp"][0]["List-Unsubscribe"].strip("<>")
    assert mailed.endswith("/u/" + earlier.dumps([people["both"].id, newsletter.id]))
    # Numbers zlib can shorten made a compressed token then: such a link is read as before.
    assert earlier.dumps([10**15, 10**15]).startswith(".")
    assert read_unsubscribe_token(earlier.dumps([10**15, 10**15])) == (10**15, 10**15)
    assert read_unsubscribe_token(make_unsubscribe_token(10**15, 7)) == (10**15, 7)
    anonymous = client.application.test_client()
    link = "/u/" + earlier.dumps([people["both"].id, 0])
    response = anonymous.post(link, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "配信を停止しました" in page_text(response)
    db.session.refresh(people["both"])
    assert people["both"].delivery == "post"


def test_withdrawn_and_unsubscribed_never_receive(client, coordinator, people, mailbox):
    from app.supporters.services import withdraw
    make_supporter(name="残る 人", kana="のこる ひと", email="stays@example.jp", delivery="email")
    withdraw(people["email"], actor=None)
    people["both"].unsubscribed_at = utcnow()
    db.session.commit()
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    run(until_idle=True)
    # The one who still reads e-mail got it; the withdrawn and the unsubscribed did not.
    assert set(by_recipient(mailbox)) == {"stays@example.jp"}


def test_starting_twice_queues_once(client, coordinator, people, mailbox):
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    response = post(client, url + "/send", follow_redirects=True)
    assert "すでに送信を始めています" in page_text(response)
    assert db.session.scalar(select(func.count(Delivery.id))) == 2
    run(until_idle=True)
    run(until_idle=True)
    assert sorted(len(v) for v in by_recipient(mailbox).values()) == [1, 1]
    # The same confirmation sent twice (a double click on 「N 人に送る」) shows what the first
    # did, once, and no error about the send it began.
    url = write(client, title="二度押し")
    confirm = page_text(client.get(url + "/send"))
    sent = {name: re.search(rf'name="{name}" value="([^"]+)"', confirm).group(1)
            for name in ("csrf_token", "submission_key")}
    client.post(url + "/send", data=sent)  # as a browser sends it twice: no page between
    page = page_text(client.post(url + "/send", data=sent, follow_redirects=True))
    assert "すでに送信を始めています" not in page and page.count("送信を始めました。") == 1
    assert db.session.scalar(select(func.count(Delivery.id))) == 4
    run(until_idle=True)
    assert sorted(len(v) for v in by_recipient(mailbox).values()) == [2, 2]  # each issue once


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_smtp_failures_defer_or_fail_and_nothing_is_lost(app, client, coordinator, geography,
                                                          mailbox, smtp_plan, smtp_server,
                                                          pipelining):
    smtp_server[1].pipelining = pipelining  # MAIL FROM, RCPT TO and DATA in one write or not
    app.config["HOTNET_SEND_MAX_ATTEMPTS"] = 3
    for name in ("temp", "busy", "drop", "gone", "never", "fine"):
        make_supporter(name=f"{name} 様子", kana="てすと", email=f"{name}@example.jp",
                       delivery="email", phone="")
    smtp_plan.update({
        "temp@example.jp": ["451"],            # 451 at RCPT: deferred, then delivered
        "busy@example.jp": ["421"],            # 421 after DATA: deferred, reconnect, delivered
        "drop@example.jp": ["drop"],           # connection dropped after DATA: deferred
        "gone@example.jp": ["550"],            # 550: failed at once with the server's reply
        "never@example.jp": ["451", "451", "451", "451"],  # gives up after 3 attempts
    })
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    for _ in range(5):
        run(until_idle=True)
    rows = {d.email: d for d in db.session.scalars(select(Delivery))}
    assert {e: rows[e].status for e in rows} == {
        "temp@example.jp": "sent", "busy@example.jp": "sent", "drop@example.jp": "sent",
        "fine@example.jp": "sent", "gone@example.jp": "failed", "never@example.jp": "failed"}
    assert "550" in rows["gone@example.jp"].last_error and rows["gone@example.jp"].attempts == 1
    assert rows["never@example.jp"].attempts == 3 and "451" in rows["never@example.jp"].last_error
    received = by_recipient(mailbox)
    assert set(received) == {"temp@example.jp", "busy@example.jp", "drop@example.jp",
                             "fine@example.jp"}
    assert all(len(v) == 1 for k, v in received.items() if k != "drop@example.jp")
    body = page_text(client.get(url))
    assert "gone@example.jp" in body and "550 5.1.1 No such user here" in body
    assert "失敗した宛先に再送" in body
    newsletter = db.session.scalar(select(Newsletter))
    assert newsletter.status == "sent"


def test_retry_keeps_the_message_id(client, coordinator, geography, mailbox, smtp_plan):
    make_supporter(name="再送 太郎", kana="さいそう たろう", email="again@example.jp",
                   delivery="email")
    smtp_plan["again@example.jp"] = ["550"]
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    run(until_idle=True)
    assert mailbox == []
    post(client, url + "/retry")
    run(until_idle=True)
    (recipients, message), = mailbox
    newsletter = db.session.scalar(select(Newsletter))
    supporter = db.session.scalar(select(Supporter))
    assert message["Message-ID"] == f"<hotnet.{newsletter.id}.{supporter.id}@hotnet.example.jp>"


def test_pause_resume_and_cancel(client, coordinator, people, mailbox):
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    post(client, url + "/pause")
    run(until_idle=True)
    assert mailbox == []
    assert "一時停止中" in page_text(client.get(url))
    post(client, url + "/resume")
    run(until_idle=True, max_batches=1)
    assert len(mailbox) == 2
    url2 = write(client, title="取り消す通信")
    post(client, url2 + "/send")
    post(client, url2 + "/cancel")
    run(until_idle=True)
    assert len(mailbox) == 2
    newsletter = db.session.get(Newsletter, int(url2.rsplit("/", 1)[1]))
    assert newsletter.status == "cancelled"
    assert services.progress(newsletter.id)["cancelled"] == 2


def test_progress_json(client, coordinator, people):
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    data = client.get(url + "/progress.json").get_json()
    assert data["status"] == "sending" and data["waiting"] == 2 and data["percent"] == 0
    run(until_idle=True)
    data = client.get(url + "/progress.json").get_json()
    assert data["status"] == "sent" and data["sent"] == 2 and data["percent"] == 100


def test_schedule_in_japan_time_and_start_when_due_once(client, coordinator, people, mailbox):
    login_staff(client, coordinator)
    url = write(client)
    response = post(client, url + "/schedule", {"send_date": "2020-01-01", "send_time": "09:00"},
                    follow_redirects=True)
    assert "これから先の日時にしてください" in page_text(response)
    response = post(client, url + "/schedule", {"send_date": "2099-12-05", "send_time": "09:30"},
                    follow_redirects=True)
    assert "2099年12月5日(土) 09:30（日本時間）に送信します。" in page_text(response)
    newsletter = db.session.scalar(select(Newsletter))
    assert newsletter.scheduled_at.hour == 0 and newsletter.scheduled_at.minute == 30  # UTC
    assert services.start_due() == []
    later = newsletter.scheduled_at + timedelta(minutes=1)
    assert services.start_due(later) == [newsletter.id]
    assert services.start_due(later) == []
    run(until_idle=True)
    assert len(mailbox) == 2


def test_public_archive_shows_sent_issues_without_anything_personal(client, coordinator, people):
    login_staff(client, coordinator)
    url = write(client)
    newsletter_id = int(url.rsplit("/", 1)[1])
    anonymous = client.application.test_client()
    assert anonymous.get(f"/newsletters/{newsletter_id}").status_code == 404  # not sent yet
    post(client, url + "/send")
    run(until_idle=True)
    page = page_text(anonymous.get(f"/newsletters/{newsletter_id}"))
    assert "冬の通信" in page and "冬の研修" in page
    assert "山田" not in page and "青木" not in page and "/u/" not in page
    assert "冬の通信" in page_text(anonymous.get("/newsletters"))


def test_coordinator_sees_figures_in_the_staff_archive(client, coordinator, people):
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    run(until_idle=True)
    page = page_text(client.get("/staff/newsletters"))
    assert "冬の通信" in page and "送信済み" in page and "2 / 2" in page


def test_postal_edition_and_address_labels(client, coordinator, geography):
    from app.audit.models import AuditEntry
    make_supporter(name="北 一郎", kana="きた いちろう", delivery="post", postal_code="2020013",
                   address="西東京市中町1-1")
    make_supporter(name="南 二郎", kana="みなみ じろう", delivery="both", email="m@example.jp",
                   postal_code="188-0012", address="西東京市南町2-2")
    make_supporter(kind="business", name="", kana="", business_name="ひばり不動産",
                   business_kana="ひばりふどうさん", contact_person="佐藤 様子", delivery="post",
                   postal_code="202-0001", address="西東京市ひばりが丘3-3")
    make_supporter(name="メール 三郎", kana="めーる さぶろう", delivery="email", email="e@example.jp")
    for n in range(20):
        make_supporter(name=f"郵送 {n}", kana="ゆうそう", delivery="post",
                       postal_code=f"188-00{n:02d}", address=f"西東京市田無町{n}")
    login_staff(client, coordinator)
    url = write(client)
    page = page_text(client.get(url + "/print"))
    assert "冬の通信" in page and "冬の研修" in page and "print.css" in page
    assert "郵送の対象は 23 人です" in page and "<script>" not in page
    labels = page_text(client.get(url + "/labels"))
    assert "宛名ラベル 23 枚（郵便番号順、A4 12 面、2 シート）" in labels
    order = [labels.index(z) for z in ("〒188-0000", "〒188-0012", "〒202-0001", "〒202-0013")]
    assert order == sorted(order)
    assert "ひばり不動産 佐藤 様子 様" in labels and "南 二郎 様" in labels
    assert "メール 三郎" not in labels
    assert labels.count('class="label"') == 23
    assert "A4 24 面、1 シート" in page_text(client.get(url + "/labels?per_sheet=24"))
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "newsletter.labels"))
    from app.audit.services import describe
    assert entry.staff_id == coordinator.id and describe(entry) == "23人"


def _jpeg_with_gps() -> bytes:
    import io

    from PIL import Image
    image = Image.new("RGB", (64, 48), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {1: "N", 2: (35.0, 44.0, 0.0)}  # GPS
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_picture_is_stripped_of_metadata_and_shown(app, client, coordinator, people, mailbox):
    import io

    from PIL import Image
    raw = _jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif()  # the upload does carry EXIF/GPS
    login_staff(client, coordinator)
    data = {"layout": "regular", "number": "", "title": "写真つき", "subject": "写真つき",
            "body_md": "本文", "area_id": "0", "district_id": "0", "kind": "", "category_id": "0",
            "csrf_token": None}
    from tests.conftest import csrf
    data["csrf_token"] = csrf(client)
    response = client.post("/staff/newsletters/new", content_type="multipart/form-data",
                           data=dict(data, image=(io.BytesIO(raw), "photo.jpg")))
    assert response.status_code == 302
    newsletter = db.session.scalar(select(Newsletter))
    stored = (services.image_folder() / newsletter.image).read_bytes()
    assert not Image.open(io.BytesIO(stored)).getexif()
    anonymous = client.application.test_client()
    assert anonymous.get(f"/newsletters/{newsletter.id}/image").status_code == 404  # a draft
    post(client, f"/staff/newsletters/{newsletter.id}/send")
    run(until_idle=True)
    html = mailbox[0][1].get_body(("html",)).get_content()
    assert f'src="https://hotnet.test/newsletters/{newsletter.id}/image"' in html
    picture = anonymous.get(f"/newsletters/{newsletter.id}/image")
    assert picture.status_code == 200 and picture.get_data() == stored


@pytest.mark.parametrize("payload,name,message", [
    (b"%PDF-1.4 not a picture", "photo.jpg", "画像として読み取れませんでした"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "anim.gif", "画像として読み取れませんでした"),
    (b"\xff\xd8\xff\xe0broken", "broken.jpg", "画像として読み取れませんでした"),
])
def test_bad_pictures_are_refused_and_the_text_is_kept(client, coordinator, geography,
                                                       payload, name, message):
    import io

    from tests.conftest import csrf
    login_staff(client, coordinator)
    response = client.post("/staff/newsletters/new", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "layout": "regular", "number": "第9号", "title": "残る題名",
        "subject": "残る件名", "body_md": "残る本文", "area_id": "0", "district_id": "0",
        "kind": "", "category_id": "0", "image": (io.BytesIO(payload), name)})
    body = page_text(response)
    assert message in body, body[:2000]
    assert 'value="残る題名"' in body and "残る本文" in body
    assert db.session.scalar(select(func.count(Newsletter.id))) == 0


def test_layouts_run_in_a_sandbox():
    from jinja2.exceptions import SecurityError

    from app.newsletters.rendering import _environment
    with pytest.raises(SecurityError):
        _environment().from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}").render()


def test_audience_by_kind_category_and_district(geography):
    from app.newsletters.audience import Audience, counts
    from app.supporters.services import list_categories
    shop = list_categories()[3]
    make_supporter(kind="business", name="", kana="", business_name="花屋", business_kana="はなや",
                   business_category_id=shop.id, email="shop@example.jp", delivery="email")
    make_supporter(kind="business", name="", kana="", business_name="工務店", business_kana="こうむてん",
                   email="build@example.jp", delivery="both", district_id=district("d05").id)
    make_supporter(email="p@example.jp", delivery="email", district_id=district("d05").id)
    assert counts(Audience(kind="business")) == {"email": 2, "post": 1, "total": 2, "both": 1}
    assert counts(Audience(category_id=shop.id)) == {"email": 1, "post": 0, "total": 1, "both": 0}
    assert counts(Audience(district_id=district("d05").id)) == {"email": 2, "post": 1, "total": 2, "both": 1}
    assert counts(Audience(kind="person", district_id=district("d05").id))["email"] == 1


def test_a_daily_cap_stops_the_send_and_the_rest_goes_the_next_day(client, app, coordinator,
                                                                   mailbox, geography):
    from datetime import timedelta

    from sqlalchemy import update

    from app.newsletters.models import Delivery
    from app.newsletters.sender import run
    for n in range(7):
        make_supporter(name=f"上限 {n}", kana="じょうげん", email=f"cap{n}@example.jp",
                       delivery="email")
    app.config.update(HOTNET_SEND_DAILY_CAP=4, HOTNET_SEND_BATCH=3)
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    report = run(until_idle=True)
    assert report.sent == 4 and report.capped
    assert len(by_recipient(mailbox)) == 4
    page = page_text(client.get(url))
    assert "きょう送れる上限（4通）に達しました" in page
    # Midnight passes (what was sent is now yesterday's): the rest goes, and nothing twice.
    db.session.execute(update(Delivery).where(Delivery.status == "sent")
                       .values(sent_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    assert run(until_idle=True).sent == 3
    assert sorted(len(v) for v in by_recipient(mailbox).values()) == [1] * 7


def test_addresses_that_no_longer_parse_are_set_aside_and_their_domains_neighbours_go(
        client, coordinator, geography, mailbox):
    """Addresses stored before today's checks: each is looked at as validate_email would (the
    sender checks a domain once and then only each address's own part), so a bad one beside
    good ones of the same domain is set aside with its reason and the good ones go."""
    good = ["sato@example.jp", "o'neil+news@example.jp", "suzuki@mail.example.jp"]
    bad = ["taro..yamada@example.jp", ".hanako@example.jp", "kato@example..jp",
           "ito@-example.jp", "kimura@localhost", "abe@"]
    for n, address in enumerate(good + bad):
        person = make_supporter(name=f"推進員 {n}", kana="すいしんいん", email=f"p{n}@example.jp",
                                delivery="email")
        person.email = address  # as an older version stored it
    db.session.commit()
    login_staff(client, coordinator)
    post(client, write(client) + "/send")
    run(until_idle=True)
    assert set(by_recipient(mailbox)) == set(good)
    rows = {d.email: d for d in db.session.scalars(select(Delivery))}
    for address in bad:
        assert rows[address].status == "skipped", address
        assert "does not parse" in rows[address].last_error, address


def test_an_address_mail_cannot_carry_is_set_aside_and_the_rest_go(client, coordinator, geography,
                                                                  mailbox):
    """山田@example.jp passed the old checks; SMTP without SMTPUTF8 cannot carry it. It must
    not stop the send (before, every run stopped at the same row and the issue never ended)."""
    make_supporter(name="前 一郎", kana="まえ いちろう", email="mae@example.jp", delivery="email")
    kanji = make_supporter(name="山田 花子", kana="やまだ はなこ", email="yamada@example.jp",
                           delivery="email")
    make_supporter(name="後 三郎", kana="あと さぶろう", email="ato@example.jp", delivery="email")
    kanji.email = "山田@example.jp"  # stored before the forms refused such addresses
    db.session.commit()
    login_staff(client, coordinator)
    url = write(client)
    post(client, url + "/send")
    run(until_idle=True)
    assert set(by_recipient(mailbox)) == {"mae@example.jp", "ato@example.jp"}
    rows = {d.email: d for d in db.session.scalars(select(Delivery))}
    assert rows["山田@example.jp"].status == "skipped" and "ASCII" in rows["山田@example.jp"].last_error
    assert db.session.scalar(select(Newsletter)).status == "sent"
    # The forms refuse such an address now, with the usual message.
    response = post(client, "/staff/supporters/new", {
        "kind": "person", "name": "山田 花子", "kana": "やまだ はなこ", "email": "山田@example.jp",
        "delivery": "email", "status": "active", "joined_via": "staff",
        "district_id": str(district("d01").id), "business_category_id": "0"})
    assert "メールアドレスの形式が正しくありません" in page_text(response)
    assert db.session.scalar(select(func.count(Supporter.id))) == 3


@pytest.mark.parametrize("pipelining", [True, False])
def test_each_message_is_accepted_only_once_the_one_before_it_is_marked_sent(
        app, client, coordinator, geography, smtp_server, mailbox, pipelining):
    """The mark of a message is committed while the next one goes out, but always before the
    server accepts that one: a crash at any moment repeats at most the last message."""
    from sqlalchemy import create_engine

    handler = smtp_server[1]
    handler.pipelining = pipelining
    for n in range(6):
        make_supporter(name=f"順番 {n}", kana="じゅんばん", email=f"order{n}@example.jp",
                       delivery="email")
    login_staff(client, coordinator)
    post(client, write(client) + "/send")
    ledger = create_engine(db.engine.url.render_as_string(hide_password=False))
    marked_when_accepted = []

    def count_marked():
        with ledger.connect() as conn:
            marked_when_accepted.append(conn.scalar(
                select(func.count(Delivery.id)).where(Delivery.status == "sent")))

    handler.on_accept = count_marked
    app.config.update(HOTNET_SEND_BATCH=4)  # the last mark of a batch is made at its end
    try:
        assert run(until_idle=True).sent == 6
    finally:
        handler.on_accept = None
        ledger.dispose()
    assert marked_when_accepted == [0, 1, 2, 3, 4, 5]
    assert len(mailbox) == 6


@pytest.mark.parametrize("data, payload", [
    (b".first\r\nplain. text ...\r\n..two\r\n.", b"..first\r\nplain. text ...\r\n...two\r\n..\r\n.\r\n"),
    (b"a.b\r\nc.\r\n", b"a.b\r\nc.\r\n.\r\n"),
    (b"no dot at all", b"no dot at all\r\n.\r\n"),
])
def test_lines_that_begin_with_a_dot_and_only_those_are_doubled_for_smtp(app, data, payload):
    from flask_mail import Message

    from app.outbox import ledger

    message = Message("件名", sender="hotnet@example.jp", recipients=["r@example.jp"], body="x")
    assert ledger.prepare(message, data, "o", 1).payload == payload


@pytest.mark.parametrize("marked", [
    "前文" * 40 + "NAME 様\n" + "本文 & <b>太字</b>。" * 60 + "LINK\n末尾 NAME",
    "NAMELINK" + "ab" * 100 + "LINK",
])
def test_a_part_in_base64_decodes_to_the_recipients_text_exactly(marked):
    """Each recipient's part, made from runs encoded once, is their own text in base64
    (strictly: no padding but at the end), in CRLF lines of at most 76 characters."""
    import base64

    from app.newsletters.mime import MarkedPart

    part = MarkedPart(marked, ["NAME", "LINK"])
    for name in ["", "a", "ab", "abc", "山", "山田 太郎", "㈱髙橋商店 御中", "x" * 100]:
        for link in ["", "h", "https://hotnet.test/u/WzEsMV0.KFs_4eBjcagb"]:
            values = {"NAME": name, "LINK": link}
            text = marked.replace("NAME", name).replace("LINK", link)
            assert part.fill(values) == text
            lines = part.base64(values)
            assert lines.endswith(b"\r\n")
            assert all(0 < len(line) <= 76 for line in lines.split(b"\r\n")[:-1])
            assert base64.b64decode(lines.replace(b"\r\n", b""), validate=True) == text.encode()


def test_ledger_marks_only_rows_held_and_leave_their_connection_as_they_found_it(
        client, coordinator, people):
    """A mark sets a row sent only while this sender holds it; a failed mark is raised where
    it is waited for; afterwards the pooled connection works in transactions as before."""
    from app.newsletters.sender import _MARK_SENT
    from app.outbox import ledger

    login_staff(client, coordinator)
    post(client, write(client) + "/send")
    mine, other = db.session.scalars(select(Delivery.id).order_by(Delivery.id)).all()
    db.session.execute(Delivery.__table__.update().values(status="sending", claimed_by="me"))
    db.session.execute(Delivery.__table__.update().where(Delivery.id == other)
                       .values(claimed_by="someone-else"))
    db.session.commit()
    with ledger.Marks(_MARK_SENT) as marks:
        marks.submit(mine, "me")
        with pytest.raises(RuntimeError):
            marks.submit(other, "me")  # one at a time: the first is not settled
        assert marks.settle() is True
        marks.submit(other, "me")
        assert marks.settle() is False
        assert marks.settle() is None
        marks.submit(2**40, "me")  # no such id: out of range of PostgreSQL's integer
        if db.engine.dialect.name == "postgresql":
            with pytest.raises(Exception, match="out of range"):
                marks.settle()
        else:
            assert marks.settle() is False
    db.session.rollback()  # the session holds no connection: the ledger's is next in the pool
    for _ in range(2):  # no autocommit left on it: a rollback undoes
        with db.engine.connect() as conn:
            conn.execute(Delivery.__table__.update().values(last_error="rolled back"))
            conn.rollback()
    assert {d.id: (d.status, d.claimed_by, d.last_error)
            for d in db.session.scalars(select(Delivery))} == {
        mine: ("sent", "", ""), other: ("sending", "someone-else", "")}
    assert db.session.get(Delivery, mine).sent_at > utcnow() - timedelta(minutes=1)

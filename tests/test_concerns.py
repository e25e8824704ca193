"""Concerns: the three ways in, photos, routing, the workflow, the reporter's view, the
digest, the audit log, retention and the newsletter statistics block (both databases,
real SMTP)."""
from __future__ import annotations

import html
import io
import re
from datetime import date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from app.audit.models import AuditEntry
from app.concerns import queue, rules, services
from app.concerns.digest import send_daily_digests
from app.concerns.models import Concern, ConcernCategory, DigestSent
from app.concerns.retention import purge_expired_concerns
from app.concerns.statistics import newsletter_statistics
from app.dbtypes import utcnow
from app.errors import InvalidInput, InvalidState
from app.extensions import db
from app.formatting import TOKYO
from app.outbox.models import OutboxMessage
from tests.conftest import (
    PASSWORD,
    csrf,
    district,
    login_staff,
    login_supporter,
    mails_to,
    make_supporter,
    page_text,
    post,
    text_of,
)

TEXT = "一人暮らしのおばあさんを最近見かけません。新聞がたまっています。"
REFERENCE = re.compile(r"HN-\d{4}-\d{6}")


def category(code: str = "watch") -> ConcernCategory:
    return db.session.scalar(select(ConcernCategory).where(ConcernCategory.code == code))


def form(**changes) -> dict:
    data = {"category_id": str(category().id), "body": TEXT, "district_id": str(district("d01").id),
            "place": "北原公園の近く", "address": "", "noticed_on": "", "urgency": "normal",
            "reporter_name": "", "reporter_email": "", "reporter_phone": ""}
    data.update(changes)
    return data


def send_report(client, url: str = "/report", files: dict | None = None, **changes):
    data = form(**changes)
    data["csrf_token"] = csrf(client, url)
    if files:
        data.update(files)
    return client.post(url, data=data, content_type="multipart/form-data")


def only_concern() -> Concern:
    return db.session.scalar(select(Concern))


@pytest.fixture
def other_coordinator(geography):
    from app.accounts.services import create_staff
    area = district("d20").area
    assert area.id != district("d01").area.id
    return create_staff("other@example.jp", "遠方 次郎", PASSWORD, "coordinator",
                        station_id=area.station_id, area_ids=[area.id], actor=None)


def concern_in(code: str, body: str = TEXT, **values) -> Concern:
    data = {"category_id": category().id, "body": body, "district_id": district(code).id,
            "urgency": "normal"}
    data.update(values)
    return services.submit_concern(data)


# --- ways in -------------------------------------------------------------------------------

def test_anonymous_report_gets_a_reference_and_stays_anonymous(client, geography, mailbox):
    response = send_report(client)
    assert response.status_code == 302
    thanks = page_text(client.get(response.headers["Location"]))
    concern = only_concern()
    assert concern.reference in thanks and REFERENCE.fullmatch(concern.reference)
    assert concern.channel == "web" and concern.reporter_supporter_id is None
    assert concern.reporter_name == "" and concern.status == "received"
    assert concern.area_id == district("d01").area_id
    assert mailbox == []  # nobody to send a receipt to


def test_visitor_with_an_address_gets_a_receipt_that_repeats_nothing(client, geography, mailbox):
    send_report(client, reporter_name="通りがかり 花子", reporter_email="hanako@example.jp",
                may_contact="y")
    concern = only_concern()
    [receipt] = mails_to(mailbox, "hanako@example.jp")
    body = text_of(receipt).replace("\r\n", "\n")
    assert concern.reference in receipt["Subject"] and concern.reference in body
    assert "新聞" not in body and "北原公園" not in body and "おばあさん" not in body
    assert body.startswith("通りがかり 花子 様\n\n気になることをお知らせいただき")
    # Without a name the receipt begins with its thanks, addressed to nobody.
    mailbox.clear()
    send_report(client, reporter_name="  ", reporter_email="anon@example.jp", may_contact="y")
    assert text_of(mails_to(mailbox, "anon@example.jp")[0]).startswith(
        "気になることをお知らせいただき")


def test_a_receipt_goes_to_an_address_typed_full_width(client, geography, mailbox):
    send_report(client, reporter_email="ｔｓｕｕｋａ＠ｅｘａｍｐｌｅ．ｊｐ", may_contact="y")
    assert only_concern().reporter_email == "tsuuka@example.jp"
    assert len(mails_to(mailbox, "tsuuka@example.jp")) == 1


def test_signed_in_supporter_reports_with_contact_prefilled(client, geography, mailbox):
    supporter = make_supporter(email="yamada@example.jp", phone="042-111-2222", delivery="email")
    login_supporter(client, supporter, mailbox)
    page = page_text(client.get("/report"))
    assert 'value="yamada@example.jp"' in page and 'value="042-111-2222"' in page
    mailbox.clear()
    send_report(client, reporter_email="yamada@example.jp", may_contact="y")
    concern = only_concern()
    assert concern.reporter_supporter_id == supporter.id
    [receipt] = mails_to(mailbox, "yamada@example.jp")
    assert text_of(receipt).startswith(f"{supporter.name} 様\r\n\r\n")
    mine = page_text(client.get("/me/reports"))
    assert concern.reference in mine and "受け付けました" in mine


def test_staff_take_a_report_on_behalf_and_the_channel_is_recorded(client, coordinator):
    login_staff(client, coordinator)
    response = send_report(client, "/staff/concerns/new", channel="phone",
                           reporter_name="電話 一郎", reporter_phone="042-333-4444", may_contact="y")
    assert response.status_code == 302
    concern = only_concern()
    assert concern.channel == "phone" and concern.taken_by_id == coordinator.id
    assert concern.reporter_name == "電話 一郎"
    detail = page_text(client.get(response.headers["Location"]))
    assert "電話" in detail and "調整 花子" in detail


def test_bad_input_keeps_what_was_typed_and_stores_nothing(client, geography):
    response = send_report(client, body="", place="駅前の商店街", reporter_email="not-an-address",
                           noticed_on="2999-01-01", may_contact="y")
    page = page_text(response)
    assert response.status_code == 200
    assert "気になったことを書いてください。" in page
    assert "メールアドレスの形式が正しくありません" in page
    assert "未来の日付" in page
    assert 'value="駅前の商店街"' in page and 'value="not-an-address"' in page
    assert db.session.scalar(select(func.count(Concern.id))) == 0


def test_the_public_cannot_pick_a_staff_channel(client, geography):
    send_report(client, channel="visit")
    assert only_concern().channel == "web"


def test_reference_numbers_count_up_within_the_year(app, geography):
    first, second = concern_in("d01"), concern_in("d02")
    year = datetime.now(TOKYO).year
    assert first.reference == f"HN-{year}-000001" and second.reference == f"HN-{year}-000002"


# --- urgency ----------------------------------------------------------------------------------

def test_urgent_warns_before_and_after_and_mails_the_areas_coordinators(
        client, coordinator, other_coordinator, mailbox):
    assert "119" in page_text(client.get("/report"))
    response = send_report(client, urgency="urgent")
    thanks = page_text(client.get(response.headers["Location"]))
    assert "119" in thanks and "110" in thanks
    concern = only_concern()
    [alert] = mails_to(mailbox, coordinator.email)
    assert concern.reference in alert["Subject"]
    assert f"/staff/concerns/{concern.id}" in text_of(alert)
    assert "新聞" not in text_of(alert)  # details stay behind the sign-in
    assert mails_to(mailbox, other_coordinator.email) == []


def test_normal_reports_send_no_alert(client, coordinator, mailbox):
    response = send_report(client, reporter_email="neighbour@example.jp")
    assert response.status_code == 302 and only_concern() is not None  # it was taken
    # Mail did go out (the reporter's receipt), only no alert to the coordinator.
    assert len(mails_to(mailbox, "neighbour@example.jp")) == 1
    assert mails_to(mailbox, coordinator.email) == []


# --- photos -------------------------------------------------------------------------------------

def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"
    exif[0x8825] = {1: "N", 2: (35.0, 44.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_photo_is_stored_without_exif_or_gps_and_only_staff_see_it(client, coordinator):
    raw = jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif() and b"SpyCam" in raw
    response = send_report(client, files={"photo": (io.BytesIO(raw), "garden.jpg")})
    assert response.status_code == 302
    concern = only_concern()
    stored = (services.photo_folder() / concern.photo).read_bytes()
    reread = Image.open(io.BytesIO(stored))
    assert reread.format == "JPEG" and reread.size == (64, 48)
    assert not reread.getexif() and b"SpyCam" not in stored
    assert client.get(f"/staff/concerns/{concern.id}/photo").status_code == 302  # to sign-in
    login_staff(client, coordinator)
    photo = client.get(f"/staff/concerns/{concern.id}/photo")
    assert photo.status_code == 200 and photo.data == stored


def _large_png() -> bytes:
    import os
    image = Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("name,make,message", [
    ("wrong type", lambda: _gif(), "JPEG か PNG の画像を選んでください。"),
    ("too large", lambda: _large_png(), "画像が大きすぎます（1 MBまで）。"),
    ("corrupt", lambda: jpeg_with_gps()[:200], "画像として読み取れませんでした"),
    ("renamed pdf", lambda: b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
     "画像として読み取れませんでした"),
])
def test_refused_uploads_keep_the_form(app, client, geography, name, make, message):
    app.config["HOTNET_CONCERN_PHOTO_MAX_MB"] = 1
    response = send_report(client, place="駅前の商店街",
                           files={"photo": (io.BytesIO(make()), "photo.jpg")})
    page = page_text(response)
    assert response.status_code == 200, name
    assert message in page
    assert TEXT in page and 'value="駅前の商店街"' in page
    assert db.session.scalar(select(func.count(Concern.id))) == 0
    assert not services.photo_folder().exists() or not any(services.photo_folder().iterdir())


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "GIF")
    return out.getvalue()


# --- routing and the queue ----------------------------------------------------------------

def test_routing_by_district_shows_my_areas_first(client, coordinator, other_coordinator):
    mine = concern_in("d01")
    theirs = concern_in("d20")
    assert mine.area_id == district("d01").area_id and theirs.area_id == district("d20").area_id
    login_staff(client, coordinator)
    queue = page_text(client.get("/staff/concerns"))
    assert mine.reference in queue and theirs.reference not in queue
    everything = page_text(client.get("/staff/concerns?area=all"))
    assert theirs.reference in everything
    assert theirs.reference in page_text(client.get(f"/staff/concerns?q={theirs.reference}&area=all"))
    # An area it does not know (an edited address) opens the list as it opens: my areas.
    for odd in ("abc", "99999999999999999999", "mine2"):
        queue = page_text(client.get(f"/staff/concerns?area={odd}"))
        assert mine.reference in queue and theirs.reference not in queue, odd
        assert '<option value="mine" selected>' in queue


def test_a_reference_number_finds_its_concern_whatever_its_state_and_area(
        client, coordinator, other_coordinator):
    closed, theirs, mine = concern_in("d01"), concern_in("d20"), concern_in("d01")
    db.session.execute(update(Concern).where(Concern.id == closed.id).values(status="closed"))
    db.session.commit()
    login_staff(client, coordinator)

    def listed(**query):
        # As the form sends a search: with every choice, those it opens on too.
        sent = {"area": "mine", "status": "open", "category": "", "urgency": "",
                "assignee": "", "overdue": ""} | query
        page = page_text(client.get("/staff/concerns", query_string=sent))
        return {c.reference for c in (closed, theirs, mine)
                if f'href="/staff/concerns/{c.id}"' in page}

    assert listed() == {mine.reference}
    assert listed(q=closed.reference) == {closed.reference}
    page = page_text(client.get("/staff/concerns", query_string={"q": closed.reference}))
    assert f'href="/staff/concerns/{closed.id}"' in page  # typed in the address, too
    # The page says it looked wider; the form keeps the list's own choices, so the next
    # search from it is an ordinary one again.
    assert "受付番号で探したので、完了したものや担当外の圏域のものも含めて探しました。" in page
    assert '<option value="mine" selected>' in page and '<option value="open" selected>' in page
    assert "受付番号で探したので" not in page_text(client.get("/staff/concerns", query_string={
        "q": "物音", "area": "mine", "status": "open"}))
    year, number = closed.reference.split("-")[1:]
    # As written, in lower case, full-width, or without the leading zeros.
    for typed in (closed.reference, closed.reference.lower(), f"ＨＮ－{year}－{number}",
                  f"HN-{year}-{int(number)}"):
        assert listed(q=typed) == {closed.reference}, typed
    # In another area: found, its details kept from the viewer (担当外).
    assert listed(q=theirs.reference) == {theirs.reference}
    assert "（担当外）" in page_text(client.get("/staff/concerns", query_string={
        "q": theirs.reference}))
    # Another state or area chosen than the list's own still counts; the page says only
    # what it looked in besides.
    assert listed(q=closed.reference, status="received") == set()
    assert listed(q=theirs.reference, area=district("d01").area_id) == set()
    only = {"area": ("受付番号で探したので、担当外の圏域のものも含めて探しました。",
                     {"q": theirs.reference, "area": "mine", "status": "all"}),
            "state": ("受付番号で探したので、完了したものも含めて探しました。",
                      {"q": closed.reference, "area": district("d01").area_id,
                       "status": "open"})}
    for notice, query in only.values():
        page = page_text(client.get("/staff/concerns", query_string=query))
        assert notice in page and "完了したものや担当外" not in page, notice
    # The tiles above go on counting the list's own areas (new ones: mine, not theirs too),
    # and lead to them.
    def tiles(page: str) -> str:
        return re.search(r'<ul class="tiles".*?</ul>', page, re.S).group(0)

    own = tiles(page_text(client.get("/staff/concerns")))
    assert tiles(page_text(client.get("/staff/concerns", query_string={
        "q": theirs.reference}))) == own
    assert 'area=mine&amp;status=received"><span class="tile-n">1</span>' in own
    # The start of a number lists those it begins.
    assert listed(q=f"HN-{year}-", area="all", status="all") == {
        closed.reference, theirs.reference, mine.reference}
    assert listed(q="HN-1999-", area="all", status="all") == set()
    # A number's start with a 0 (HN-2026-0, 2026-0) is no number (they count from 1): the
    # former lists those it begins, the latter is searched as words, in the list's own.
    assert listed(q=f"HN-{year}-0", area="all", status="all") == {
        closed.reference, theirs.reference, mine.reference}
    assert listed(q=f"{year}-0") == {mine.reference}
    # Said without its HN- (as it is read out on the telephone): found too, as written.
    assert listed(q=f"{year}-{int(number)}") == {closed.reference}
    assert listed(q=f"{year}-{number}") == {closed.reference}
    assert listed(q=f"{year}-{int(number)}", status="received") == set()


def test_searched_words_find_the_same_in_either_case_on_both_databases(
        client, coordinator, other_coordinator):
    wifi, other, theirs = (concern_in("d01", "集会所のWi-Fiがつながらない"), concern_in("d01"),
                           concern_in("d20", "公民館のWi-Fiが遅い"))
    login_staff(client, coordinator)

    def listed(q: str) -> set[str]:
        page = page_text(client.get("/staff/concerns", query_string={
            "q": q, "area": "all", "status": "all"}))
        return {c.reference for c in (wifi, other, theirs) if f'href="/staff/concerns/{c.id}"' in page}

    for typed in ("Wi-Fi", "wi-fi", "WI-FI"):
        # What the other area's concern says is not searched for this coordinator.
        assert listed(typed) == {wifi.reference}, typed
    # "hn" is in every reference number: in one case or the other, every one the coordinator
    # may search, on both databases.
    assert listed("hn") == listed("HN") == {wifi.reference, other.reference}
    # A year and number that belong to no concern finds nothing (and no error).
    assert listed("1999-1") == set()
    # Several words: the concerns that say each of them, wherever, however they are spaced.
    for typed in ("集会所 wi-fi", "wi-fi　つながらない", "つながらない\t集会所", " 集会所  Wi-Fi "):
        assert listed(typed) == {wifi.reference}, typed
    assert listed("集会所 公民館") == set()


def test_the_way_back_from_a_concern_keeps_the_lists_filters_search_and_page(
        client, coordinator, other_coordinator):
    mine, theirs = concern_in("d01"), concern_in("d20")
    login_staff(client, coordinator)

    def back_link(concern_id: int) -> str:
        page = client.get(f"/staff/concerns/{concern_id}").get_data(as_text=True)
        return html.unescape(re.search(r'<a href="([^"]*)">気になることの一覧へ</a>', page)[1])

    client.get(f"/staff/concerns?area=all&status=all&q={theirs.reference}&page=1&junk=x")
    back = back_link(mine.id)
    assert dict(parse_qsl(urlsplit(back).query)) == {
        "area": "all", "status": "all", "q": theirs.reference, "page": "1"}
    assert theirs.reference in page_text(client.get(back))
    assert mine.reference not in page_text(client.get(back))
    # After a form on the concern's page was sent, and on a colleague's concern's summary.
    post(client, f"/staff/concerns/{mine.id}/note", {"body": "電話で確認"})
    assert back_link(mine.id) == back
    assert back_link(theirs.id) == back
    client.get("/staff/concerns")  # the list opened as it opens: the way back is to that
    assert back_link(mine.id) == "/staff/concerns"


def test_assign_and_reassign_and_unassigned_filter(client, coordinator, other_coordinator):
    concern = concern_in("d01")
    login_staff(client, coordinator)
    assert concern.reference in page_text(client.get("/staff/concerns?assignee=none"))
    post(client, f"/staff/concerns/{concern.id}/assign", {"assignee_id": coordinator.id})
    assert concern.reference in page_text(client.get("/staff/concerns?assignee=me&area=all"))
    post(client, f"/staff/concerns/{concern.id}/assign", {"assignee_id": other_coordinator.id})
    db.session.refresh(concern)
    assert concern.assignee_id == other_coordinator.id
    assert concern.reference not in page_text(client.get("/staff/concerns?assignee=none"))
    events = [e.body for e in services.timeline(concern) if e.kind == "assigned"]
    assert events == ["調整 花子", "遠方 次郎"]


def test_each_filter_of_the_dashboard_takes_its_own_value_request_after_request(
        app, coordinator, other_coordinator):
    # The dashboard's statements are built once per form of filters and kept: the values
    # change from one request to the next, and so must what is listed.
    other_category = db.session.scalar(select(ConcernCategory).where(
        ConcernCategory.code != "watch").order_by(ConcernCategory.position))
    park = concern_in("d01", "公園のベンチで寝ている人がいます。")
    rubbish = concern_in("d01", "ごみ出しに困っている様子の方がいます。",
                         category_id=other_category.id, urgency="urgent")
    far = concern_in("d20", "公園の近くで転んだ方がいました。")

    def listed(client, **query):
        page = page_text(client.get("/staff/concerns", query_string=query))
        return {c.reference for c in (park, rubbish, far) if c.reference in page}

    mine, theirs = app.test_client(), app.test_client()
    login_staff(mine, coordinator)
    login_staff(theirs, other_coordinator)
    assert listed(mine, category=category().id) == {park.reference}
    assert listed(mine, category=other_category.id) == {rubbish.reference}
    assert listed(mine, area=district("d20").area.id) == {far.reference}
    assert listed(mine, area=district("d01").area.id) == {park.reference, rubbish.reference}
    assert listed(mine, urgency="urgent", area="all") == {rubbish.reference}
    assert listed(mine, urgency="normal", area="all") == {park.reference, far.reference}
    # Words are searched where the viewer may read them: each coordinator their own area.
    assert listed(mine, q="公園", area="all") == {park.reference}
    assert listed(theirs, q="公園", area="all") == {far.reference}
    assert listed(mine, q="ごみ", area="all") == {rubbish.reference}
    assert listed(theirs) == {far.reference}
    assert listed(mine) == {park.reference, rubbish.reference}
    late = db.session.get(Concern, park.id)
    late.created_at = utcnow() - timedelta(days=3)
    db.session.commit()
    assert listed(mine, overdue=1) == {park.reference}
    app.config["HOTNET_CONCERN_ACK_DAYS"] = 5
    assert listed(mine, overdue=1) == set()


def test_overdue_after_the_configured_days(app, client, coordinator):
    late, fresh = concern_in("d01"), concern_in("d01")
    late.created_at = utcnow() - timedelta(days=3)
    db.session.commit()
    assert rules.is_overdue(late) and not rules.is_overdue(fresh)
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns?overdue=1"))
    assert late.reference in page and fresh.reference not in page
    app.config["HOTNET_CONCERN_ACK_DAYS"] = 5
    assert not rules.is_overdue(late)


def test_dashboard_counts_and_chart_are_readable_without_colour(client, coordinator):
    concern_in("d01")
    concern_in("d01", category_id=category("housing").id)
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns"))
    assert "<svg" in page and "<title" in page  # a real chart with a text alternative
    month = f"{datetime.now(TOKYO).month}月"
    assert re.search(r'class="value">2</text>', page)  # the number is printed on the bar
    assert month in page and "住まい・ごみ" in page and "数値の表で見る" in page


# --- the workflow ---------------------------------------------------------------------------

def test_status_workflow_rules_and_who_and_when(client, coordinator):
    concern = concern_in("d01")
    login_staff(client, coordinator)
    with pytest.raises(InvalidState):
        services.change_status(concern, "closed", actor=None)  # received cannot jump to closed
    response = post(client, f"/staff/concerns/{concern.id}/status", {"status": "connected"})
    assert response.status_code == 400 and "つなぎ済にする前に" in page_text(response)
    post(client, f"/staff/concerns/{concern.id}/status", {"status": "acknowledged"})
    from app.partners.services import save_agency
    agency = save_agency(None, {"kind": "houkatsu", "name": "地域包括支援センター"}, actor=None)
    response = post(client, f"/staff/concerns/{concern.id}/referrals", {
        "agency_id": str(agency.id), "referred_on": date.today().isoformat(), "method": "phone",
        "consent": "consent", "passed_on": ""})
    assert response.status_code == 302
    post(client, f"/staff/concerns/{concern.id}/status", {"status": "connected"})
    # The referral is still open: closing asks first, then goes ahead when confirmed.
    asked = post(client, f"/staff/concerns/{concern.id}/status", {"status": "closed"})
    assert asked.status_code == 200 and "まだ終わっていないつなぎが 1 件" in page_text(asked)
    db.session.refresh(concern)
    assert concern.status == "connected"
    post(client, f"/staff/concerns/{concern.id}/status", {"status": "closed", "confirmed": "1"})
    db.session.refresh(concern)
    assert concern.status == "closed" and concern.connected_to == "地域包括支援センター"
    assert concern.acknowledged_at is not None and concern.closed_at is not None
    changes = [(e.status_from, e.status_to, e.actor) for e in services.timeline(concern)
               if e.kind == "status"]
    assert changes == [("received", "acknowledged", "調整 花子"),
                       ("acknowledged", "connected", "調整 花子"),
                       ("connected", "closed", "調整 花子")]
    post(client, f"/staff/concerns/{concern.id}/status", {"status": "in_progress"})  # reopen
    db.session.refresh(concern)
    assert concern.status == "in_progress" and concern.closed_at is None


def test_duplicate_links_to_the_original(client, coordinator):
    original, copy = concern_in("d01"), concern_in("d01")
    login_staff(client, coordinator)
    response = post(client, f"/staff/concerns/{copy.id}/status",
                    {"status": "duplicate", "duplicate_of": "HN-1999-000001"})
    assert response.status_code == 400 and "見つかりません" in page_text(response)
    response = post(client, f"/staff/concerns/{copy.id}/status",
                    {"status": "duplicate", "duplicate_of": " "})
    assert response.status_code == 400 and \
        "「重複」にするときは、元の記録の受付番号を入力してください（例: HN-2026-000123）。" in page_text(response)
    response = post(client, f"/staff/concerns/{copy.id}/link", {"reference": ""})
    assert "関連する記録の受付番号を入力してください（例: HN-2026-000123）。" in page_text(response)
    post(client, f"/staff/concerns/{copy.id}/status",
         {"status": "duplicate", "duplicate_of": original.reference.lower()})
    db.session.refresh(copy)
    assert copy.status == "duplicate" and copy.duplicate_of_id == original.id
    assert original in services.related(copy)
    with pytest.raises(InvalidInput):
        services.change_status(original, "duplicate", duplicate_of=original.reference, actor=None)


def test_reporter_sees_messages_never_internal_notes(client, coordinator, mailbox):
    supporter = make_supporter(email="yamada@example.jp", delivery="email")
    concern = services.submit_concern(
        {"category_id": category().id, "body": TEXT, "district_id": district("d01").id,
         "urgency": "normal", "may_contact": True}, reporter=supporter)
    login_staff(client, coordinator)
    post(client, f"/staff/concerns/{concern.id}/note", {"body": "長男と同居、認知症の疑い"})
    post(client, f"/staff/concerns/{concern.id}/status",
         {"status": "acknowledged", "note": "民生委員さんに確認済み"})
    post(client, f"/staff/concerns/{concern.id}/message", {"body": "担当者が確認しました。ありがとうございます。"})
    staff_page = page_text(client.get(f"/staff/concerns/{concern.id}"))
    assert "長男と同居" in staff_page and "民生委員さんに確認済み" in staff_page
    client.post("/logout", data={"csrf_token": csrf(client)})

    login_supporter(client, supporter, mailbox)
    page = page_text(client.get(f"/me/reports/{concern.reference}"))
    assert "担当者が確認しました。" in page and "担当の職員が確認しました" in page
    assert "長男" not in page and "民生委員さん" not in page and "調整 花子" not in page
    everything_mailed = "".join(text_of(m) for _r, m in mailbox)
    assert "担当者が確認しました。" in everything_mailed
    assert "長男" not in everything_mailed and "民生委員さん" not in everything_mailed
    [message] = [m for _r, m in mailbox if "担当者が確認しました。" in text_of(m)]
    assert text_of(message).startswith(f"{supporter.name} 様\r\n\r\n")  # addressed to them


def test_a_note_or_message_sent_again_after_going_back_is_kept_once(client, coordinator, mailbox):
    """Back, then the button again: the page comes back with a new one-time key and the
    browser puts the text back. The same words by the same person within ten minutes are the
    first note or message (shown and mailed once); other words, or later, are new ones."""
    from app.concerns.models import ConcernEvent
    supporter = make_supporter(email="yamada@example.jp", delivery="email")
    concern = services.submit_concern(
        {"category_id": category().id, "body": TEXT, "district_id": district("d01").id,
         "urgency": "normal", "may_contact": True}, reporter=supporter)
    login_staff(client, coordinator)

    def entries(kind: str) -> list[str]:
        return list(db.session.scalars(select(ConcernEvent.body).where(
            ConcernEvent.concern_id == concern.id, ConcernEvent.kind == kind)
            .order_by(ConcernEvent.id)))
    for _again in range(2):
        assert post(client, f"/staff/concerns/{concern.id}/note",
                    {"body": "明日訪問する"}).status_code == 302
        assert post(client, f"/staff/concerns/{concern.id}/message",
                    {"body": "担当者が確認しました。"}).status_code == 302
    assert entries("note") == ["明日訪問する"] and entries("message") == ["担当者が確認しました。"]
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "concern_message")) == 1
    post(client, f"/staff/concerns/{concern.id}/note", {"body": "訪問した"})
    db.session.execute(update(ConcernEvent).where(ConcernEvent.concern_id == concern.id)
                       .values(at=utcnow() - timedelta(minutes=11)))
    db.session.commit()
    post(client, f"/staff/concerns/{concern.id}/note", {"body": "訪問した"})
    assert entries("note") == ["明日訪問する", "訪問した", "訪問した"]


def test_reports_are_private(client, coordinator, mailbox):
    owner = make_supporter(email="owner@example.jp", delivery="email")
    other = make_supporter(name="鈴木 一", kana="すずき はじめ", email="other@example.jp",
                           delivery="email")
    concern = services.submit_concern({"category_id": category().id, "body": TEXT,
                                       "district_id": None, "urgency": "normal"}, reporter=owner)
    login_supporter(client, other, mailbox)
    assert client.get(f"/me/reports/{concern.reference}").status_code == 404
    assert concern.reference not in page_text(client.get("/me/reports"))
    assert client.get(f"/staff/concerns/{concern.id}").status_code == 403
    assert client.get("/staff/concerns/export.csv").status_code == 403


def test_related_and_possible_duplicates(client, coordinator):
    first = concern_in("d01", "北原公園の近くのお宅で、一人暮らしのおばあさんを見かけません。")
    similar = concern_in("d01", "北原公園の近くのお宅のおばあさんを、最近見かけません。")
    elsewhere = concern_in("d02", "北原公園の近くのお宅で、一人暮らしのおばあさんを見かけません。")
    unlike = concern_in("d01", "空き家の草が伸びて道をふさいでいます。")
    suggested = [c for c, _score in services.possible_duplicates(similar)]
    assert first in suggested and elsewhere not in suggested and unlike not in suggested
    login_staff(client, coordinator)
    page = page_text(client.get(f"/staff/concerns/{similar.id}"))
    assert first.reference in page and "同じ件かもしれない記録" in page
    post(client, f"/staff/concerns/{similar.id}/link", {"reference": unlike.reference})
    assert unlike in services.related(similar) and similar in services.related(unlike)


# --- digest, audit, retention ------------------------------------------------------------------

def test_daily_digest_is_sent_once_per_day(app, coordinator, other_coordinator, mailbox):
    new = concern_in("d01")
    late = concern_in("d01")
    late.created_at = utcnow() - timedelta(days=3)
    db.session.commit()
    nine = datetime.now(TOKYO).replace(hour=9, minute=0, second=0, microsecond=0)
    assert send_daily_digests(nine.replace(hour=6)) == 0  # before the digest hour
    assert send_daily_digests(nine) == 1
    assert send_daily_digests(nine + timedelta(hours=2)) == 0  # a restart, same day
    [digest] = mails_to(mailbox, coordinator.email)
    body = text_of(digest)
    assert new.reference in body and late.reference in body and "新聞" not in body
    assert mails_to(mailbox, other_coordinator.email) == []  # nothing in their areas
    assert db.session.scalar(select(func.count(DigestSent.id))) == 1


def test_views_and_exports_are_audited(client, coordinator, admin):
    concern = concern_in("d01", place="北原公園の近く")
    login_staff(client, coordinator)
    client.get(f"/staff/concerns/{concern.id}")
    response = client.get("/staff/concerns/export.csv?area=all")
    rows = response.get_data(as_text=True)
    assert response.status_code == 200 and concern.reference in rows and TEXT in rows
    actions = {(e.action, e.staff_id) for e in db.session.scalars(select(AuditEntry))}
    assert ("concern.view", coordinator.id) in actions and ("concern.export", coordinator.id) in actions
    client.post("/logout", data={"csrf_token": csrf(client)})
    login_staff(client, admin)
    log = page_text(client.get("/admin/audit"))
    assert "concern.view" in log and "concern.export" in log


def test_retention_erases_personal_details_and_keeps_counts(app, coordinator):
    old = concern_in("d01", reporter_name="報告 太郎", reporter_email="taro@example.jp",
                     address="西東京市南町1-1-1")
    services.change_status(old, "acknowledged", actor=None)
    services.add_note(old, "家族の事情についてのメモ", actor=None)
    services.change_status(old, "closed", actor=None)
    recent = concern_in("d01")
    services.change_status(recent, "acknowledged", actor=None)
    services.change_status(recent, "closed", actor=None)
    old.closed_at = datetime(2021, 3, 31, 12, tzinfo=TOKYO)  # fiscal 2020
    recent.closed_at = datetime(2021, 4, 1, 12, tzinfo=TOKYO)  # fiscal 2021
    db.session.commit()
    before = newsletter_statistics(date(2020, 1, 1), date(2030, 12, 31)).total

    assert purge_expired_concerns(today=date(2026, 4, 1)) == 1
    db.session.refresh(old)
    db.session.refresh(recent)
    assert old.erased_at is not None and old.body == "" and old.reporter_email == ""
    assert old.address == "" and old.reporter_name == ""
    assert all(e.body == "" for e in services.timeline(old) if e.kind == "note")
    assert recent.erased_at is None and recent.body == TEXT
    assert newsletter_statistics(date(2020, 1, 1), date(2030, 12, 31)).total == before
    assert purge_expired_concerns(today=date(2026, 4, 1)) == 0
    with pytest.raises(InvalidState):
        services.add_note(old, "もう書けない", actor=None)


# --- admin categories and the newsletter block ---------------------------------------------------

def test_admin_edits_the_category_list(client, admin):
    login_staff(client, admin)
    post(client, "/admin/concern-categories", {"name": "防災", "name_en": "Disaster"})
    assert "防災" in page_text(client.get("/staff/concerns/new"))
    watch = category("watch")
    post(client, "/admin/concern-categories", {"category_id": watch.id, "name": watch.name})
    assert "見守り・安否" not in page_text(client.get("/staff/concerns/new"))  # off the form
    response = post(client, "/admin/concern-categories", {"name": ""})
    assert "分類名を入力してください。" in page_text(response)


def test_category_names_are_kept_as_typed_and_not_repeated_in_another_width(client, admin):
    """Names of things keep their full-width brackets (as staff typed them), for concern
    categories and business categories alike; one that differs from another only by width
    or case is refused as the same name."""
    from app.supporters.models import BusinessCategory
    login_staff(client, admin)
    for url, model, taken in (("/admin/concern-categories", ConcernCategory, "同じ名前の分類がすでにあります。"),
                              ("/admin/categories", BusinessCategory, "同じ名前の業種があります。")):
        post(client, url, {"name": "防災（地震・水害）", "name_en": ""})
        saved = db.session.scalar(select(model).where(model.name.like("防災%")))
        assert saved is not None and saved.name == "防災（地震・水害）", url
        response = post(client, url, {"name": "防災(地震・水害)", "name_en": ""})
        assert taken in page_text(response), url
        assert db.session.scalar(select(func.count()).select_from(model).where(
            model.name.like("防災%"))) == 1, url


def test_newsletter_statistics_block_has_counts_only(client, coordinator, mailbox):
    for _ in range(3):
        concern_in("d01", place="北原公園の近く")
    concern_in("d01", category_id=category("housing").id, reporter_name="報告 太郎")
    make_supporter(email="reader@example.jp", delivery="email")
    login_staff(client, coordinator)
    today = datetime.now(TOKYO).date()
    response = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "第2号", "title": "冬の通信", "subject": "冬の通信",
        "body_md": "本文", "area_id": "0", "district_id": "0", "kind": "", "category_id": "0",
        "stats_from": (today - timedelta(days=40)).isoformat(), "stats_to": today.isoformat()})
    assert response.status_code == 302
    newsletter_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    post(client, f"/staff/newsletters/{newsletter_id}/send")
    from app.newsletters.sender import run
    run(until_idle=True)
    [message] = mails_to(mailbox, "reader@example.jp")
    text = text_of(message)
    html = message.get_body(("html",)).get_content()
    assert "合計 4〜5 件" in text and "見守り・安否 3" in text and "住まい・ごみ 1〜2" in text
    assert "気になること" in html and "1〜2" in html
    for private in ("北原公園", "報告 太郎", "新聞", "HN-"):
        assert private not in text and private not in html


def test_newsletter_statistics_period_needs_both_ends(client, coordinator):
    login_staff(client, coordinator)
    response = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "", "title": "t", "subject": "s", "body_md": "b",
        "area_id": "0", "district_id": "0", "kind": "", "category_id": "0",
        "stats_from": "2026-10-01", "stats_to": ""})
    assert response.status_code == 200
    assert "集計期間は「から」と「まで」の両方を入れてください。" in page_text(response)


def test_waiting_tiles_and_a_capped_total(client, coordinator, monkeypatch):
    late = concern_in("d01")
    late.created_at = utcnow() - timedelta(days=3)
    db.session.commit()
    mine = concern_in("d01")
    services.assign(mine, coordinator.id, actor=None)
    services.change_status(mine, "acknowledged", actor=None)
    concern_in("d01")
    counts = queue.waiting_counts([district("d01").area_id], coordinator)
    assert counts == {"new": 2, "overdue": 1, "unassigned": 2, "mine": 1}
    monkeypatch.setattr(queue, "COUNT_CAP", 2)
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns"))
    assert "該当 2 件以上" in page and "条件で絞り込んでください" in page


def test_a_digest_the_mail_server_refused_is_tried_again(app, coordinator, mailbox, smtp_plan):
    concern_in("d01")
    nine = datetime.now(TOKYO).replace(hour=9, minute=0, second=0, microsecond=0)
    smtp_plan[coordinator.email] = ["451"]
    app.config["HOTNET_SEND_RETRY_SECONDS"] = 600
    assert send_daily_digests(nine) == 1
    assert mails_to(mailbox, coordinator.email) == []  # the server said 451: deferred
    digest = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "concern_digest"))
    assert digest.status == "deferred" and "451" in digest.last_error
    assert send_daily_digests(nine + timedelta(minutes=10)) == 0  # queued once a day
    digest.next_attempt_at = utcnow()  # the back-off has passed
    db.session.commit()
    assert len(mails_to(mailbox, coordinator.email)) == 1
    assert send_daily_digests(nine + timedelta(minutes=20)) == 0
    assert len(mails_to(mailbox, coordinator.email)) == 1


def test_the_timeline_is_stored_as_codes_and_read_in_the_readers_language(
        client, coordinator, mailbox):
    send_report(client)
    concern = only_concern()
    services.assign(concern, None, actor=coordinator)  # already nobody's: nothing happens
    services.assign(concern, coordinator.id, actor=None)
    services.assign(concern, None, actor=coordinator)
    created = services.timeline(concern)[0]
    # Stored: codes and data, in no one's language.
    assert (created.kind, created.body, created.actor_kind, created.actor) == (
        "created", "web", "reporter", "")
    login_staff(client, coordinator)
    japanese = page_text(client.get(f"/staff/concerns/{concern.id}"))
    assert "ウェブで受け付けました。" in japanese and "報告者" in japanese
    assert "担当者なし" in japanese and "中部圏域" in japanese
    post(client, "/language", {"lang": "en", "next": "/"})
    english = page_text(client.get(f"/staff/concerns/{concern.id}"))
    assert "Received by Web." in english and "Reporter" in english
    assert "Nobody" in english and "System (automatic)" in english
    assert "Central area" in english and "中部圏域" not in english
    assert coordinator.name in english  # staff names are data, shown as written


def test_the_area_filter_names_each_area_in_the_readers_language(client, coordinator):
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns"))
    assert re.search(r'<option value="\d+" >中部圏域</option>', page), "area names in the filter"
    post(client, "/language", {"lang": "en", "next": "/"})
    page = page_text(client.get("/staff/concerns"))
    assert re.search(r'<option value="\d+" >Central area</option>', page)

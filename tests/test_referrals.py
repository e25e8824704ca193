"""つなぎ (issue 15): the partner directory, referrals with their consent basis, the referral
sheet, follow-up — and that nobody outside the concern's area ever reads a referral."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from sqlalchemy import select

from app.audit.models import AuditEntry
from app.concerns import services as concerns
from app.concerns.digest import send_daily_digests
from app.concerns.models import Referral
from app.extensions import db
from app.partners import services as partners
from app.partners.models import Agency
from tests.conftest import (
    PASSWORD,
    district,
    login_staff,
    login_supporter,
    mails_to,
    make_supporter,
    page_text,
    post,
    text_of,
)

TODAY = date.today()


def agency(name: str, kind: str = "houkatsu", **values) -> Agency:
    return partners.save_agency(None, {"kind": kind, "name": name, **values}, actor=None)


def concern_in(code: str = "d01", reporter=None):
    category = concerns.list_categories()[0]
    return concerns.submit_concern({"category_id": category.id, "body": "新聞がたまっている",
                                    "district_id": district(code).id, "urgency": "normal",
                                    "place": "北原公園の東", "address": "西東京市北原町1-2-3"},
                                   reporter=reporter)


def refer(client, concern, agency_id: int, consent: str = "consent", **values):
    return post(client, f"/staff/concerns/{concern.id}/referrals", {
        "agency_id": str(agency_id), "referred_on": TODAY.isoformat(), "method": "phone",
        "consent": consent, "passed_on": "訪問をお願いしました", "follow_up_on": "", **values})


# --- the directory ------------------------------------------------------------------------

def test_admins_keep_the_directory_and_staff_search_it(client, admin, coordinator):
    login_staff(client, admin)
    bad = post(client, "/admin/partners/new", {"kind": "", "name": "南部地域包括支援センター",
                                               "phone": "12", "email": "not-an-address"})
    page = page_text(bad)
    assert bad.status_code == 400 and "種類を選んでください。" in page
    assert "電話番号は市外局番から" in page and 'value="南部地域包括支援センター"' in page
    area = district("d06").area
    done = post(client, "/admin/partners/new", {
        "kind": "houkatsu", "name": "南部地域包括支援センター", "kana": "なんぶほうかつ",
        "phone": "042-000-1234", "area_ids": str(area.id), "active": "y"})
    assert done.status_code == 302
    post(client, "/logout")
    login_staff(client, coordinator)
    assert client.get("/admin/partners/new").status_code == 403  # staff read, admins edit
    listing = page_text(client.get("/staff/partners?q=ナンブ"))
    assert "南部地域包括支援センター" in listing and "042-000-1234" in listing
    assert "南部地域包括支援センター" not in page_text(client.get("/staff/partners?kind=minsei"))


def test_csv_round_trip_and_a_bad_file_saves_nothing(client, admin, geography):
    agency("=HYPERLINK(\"http://evil\")", kind="other", notes="@SUM(1)")
    agency("中部地域包括支援センター", area_ids=[district("d01").area_id], phone="042-000-1111")
    login_staff(client, admin)
    exported = client.get("/staff/partners/export.csv").get_data()
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert rows[0][:2] == ["種類", "名称"] and "'=HYPERLINK(\"http://evil\")" in rows[1] + rows[2]
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "partner.export"))
    # Changed in Excel and brought back: same names are updated, new ones added.
    text = exported.decode("utf-8-sig").replace("042-000-1111", "042-000-2222")
    text += "保健所,多摩地域保健所,,042-000-3333,,,,,,,,,,,はい\r\n"
    response = client.post("/admin/partners/import", data={
        "csrf_token": _csrf(client, "/admin/partners/import"),
        "file": (io.BytesIO(text.encode("cp932", "replace")), "partners.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    centre = db.session.scalar(select(Agency).where(Agency.name == "中部地域包括支援センター"))
    assert centre.phone == "042-000-2222" and centre.areas[0].id == district("d01").area_id
    assert db.session.scalar(select(Agency).where(Agency.name == "多摩地域保健所")).kind == "health_center"
    # Categories travel by name, both ways; a name the app does not know is refused.
    centre.category_codes = ["elderly"]
    db.session.commit()
    exported = client.get("/staff/partners/export.csv").get_data(as_text=True)
    assert "高齢・介護" in exported and ",elderly," not in exported
    unknown = "種類,名称,受ける分類\r\n保健所,多摩地域保健所,ないもの\r\n"
    response = client.post("/admin/partners/import", data={
        "csrf_token": _csrf(client, "/admin/partners/import"),
        "file": (io.BytesIO(unknown.encode()), "unknown.csv")}, content_type="multipart/form-data")
    assert response.status_code == 400 and "分類が見つかりません: ないもの" in page_text(response)
    before = len(partners.list_agencies())
    bad = "種類,名称,電話番号\r\n地域包括支援センター,新しいセンター,042-000-4444\r\nなぞ,,12\r\n"
    response = client.post("/admin/partners/import", data={
        "csrf_token": _csrf(client, "/admin/partners/import"),
        "file": (io.BytesIO(bad.encode()), "bad.csv")}, content_type="multipart/form-data")
    page = page_text(response)
    assert response.status_code == 400 and "3行目" in page and "種類を選んでください。" in page
    assert len(partners.list_agencies()) == before  # all or nothing
    # A NUL in a cell (a database would cut the text there, or refuse it): said, not saved.
    nul = "種類,名称,メモ\r\n保健所,多摩地域保健所,前\x00後\r\n"
    response = client.post("/admin/partners/import", data={
        "csrf_token": _csrf(client, "/admin/partners/import"),
        "file": (io.BytesIO(nul.encode()), "nul.csv")}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "2行目: メモに使えない文字（制御文字）が含まれています。" in page_text(response)
    assert len(partners.list_agencies()) == before


def _csrf(client, url: str) -> str:
    import re
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page_text(client.get(url))).group(1)


# --- referrals ------------------------------------------------------------------------------

def test_suggestions_put_the_districts_own_agency_first(client, coordinator):
    town = agency("生活サポート相談窓口", kind="life_support")
    far = agency("西部地域包括支援センター", area_ids=[district("d16").area_id])
    near = agency("中部地域包括支援センター", area_ids=[district("d01").area_id])
    suggested = concerns.suggested_agencies(concern_in("d01"))
    assert suggested[0] == near and town in suggested and far not in suggested
    login_staff(client, coordinator)
    page = page_text(client.get(f"/staff/concerns/{concern_in('d01').id}"))
    assert f"★ {near.name}" in page and f"★ {far.name}" not in page


def test_a_referral_needs_its_consent_basis_and_is_followed_to_its_end(client, coordinator):
    centre = agency("中部地域包括支援センター", area_ids=[district("d01").area_id])
    concern = concern_in("d01")
    login_staff(client, coordinator)
    missing = refer(client, concern, centre.id, consent="")
    page = page_text(missing)
    assert missing.status_code == 400 and "本人の同意など、情報を伝えた根拠を選んでください。" in page
    assert "訪問をお願いしました" in page  # what was typed stays
    assert refer(client, concern, centre.id, consent="vital").status_code == 302
    referral = db.session.scalar(select(Referral))
    assert (referral.status, referral.consent, referral.staff_name) == (
        "requested", "vital", coordinator.name)
    detail = page_text(client.get(f"/staff/concerns/{concern.id}"))
    assert "本人同意なし（生命・身体の保護のため）" in detail and "依頼中" in detail
    for status in ("accepted", "in_progress", "done"):
        response = post(client, f"/staff/concerns/{concern.id}/referrals/{referral.id}",
                        {"status": status, "on": TODAY.isoformat(), "note": ""})
        assert response.status_code == 302, status
    db.session.refresh(referral)
    assert (referral.status, referral.accepted_on, referral.closed_on) == ("done", TODAY, TODAY)
    steps = [(e.status_from, e.status_to) for e in concerns.timeline(concern) if e.kind == "referral"]
    assert steps == [("", "requested"), ("requested", "accepted"), ("accepted", "in_progress"),
                     ("in_progress", "done")]
    # A step that does not follow is refused, and a date in the future too.
    response = post(client, f"/staff/concerns/{concern.id}/referrals/{referral.id}",
                    {"status": "accepted", "on": TODAY.isoformat()})
    assert response.status_code == 400


def test_a_referral_moves_the_concern_to_connected_when_left_ticked(client, coordinator):
    """The form offers つなぎ済 as the next status, ticked: one step instead of two, and the
    concern is no longer waiting (nor overdue). Unticked, the status stays as it was."""
    centre = agency("中部地域包括支援センター", area_ids=[district("d01").area_id])
    first, second = concern_in(), concern_in()
    login_staff(client, coordinator)
    form = client.get(f"/staff/concerns/{first.id}").get_data(as_text=True)
    assert '<input checked id="ref-connect" name="connect" type="checkbox" value="y">' in form
    assert refer(client, first, centre.id, connect="y").status_code == 302
    assert refer(client, second, centre.id).status_code == 302  # the box unticked
    db.session.expire_all()
    assert (first.status, first.connected_to) == ("connected", "中部地域包括支援センター")
    assert first.acknowledged_at is not None and second.status == "received"
    assert [(e.kind, e.status_to) for e in concerns.timeline(first)][-2:] == [
        ("referral", "requested"), ("status", "connected")]
    # Already つなぎ済: the box is not offered, and a second referral keeps the status.
    page = client.get(f"/staff/concerns/{first.id}").get_data(as_text=True)
    assert 'id="ref-connect"' not in page
    other = agency("西東京市社会福祉協議会 生活支援", kind="life_support")
    assert refer(client, first, other.id, connect="y").status_code == 302
    db.session.expire_all()
    assert first.status == "connected" and first.connected_to.endswith(other.name)


def test_nobody_outside_the_area_nor_the_reporter_reads_a_referral(client, coordinator, mailbox,
                                                                     admin):
    from app.accounts.services import create_staff
    reporter = make_supporter(email="reporter@example.jp", delivery="email")
    centre = agency("中部地域包括支援センター", area_ids=[district("d01").area_id])
    concern = concern_in("d01", reporter=reporter)
    concerns.record_referral(concern, {"agency_id": centre.id, "referred_on": TODAY,
                                       "method": "phone", "consent": "consent",
                                       "passed_on": "秘密の事情"}, actor=coordinator)
    concerns.change_status(concern, "acknowledged", actor=coordinator)
    concerns.change_status(concern, "connected", actor=coordinator)
    far = create_staff("far@example.jp", "遠方 三郎", PASSWORD, "coordinator",
                       area_ids=[district("d16").area_id], actor=None)
    login_staff(client, far)
    summary = page_text(client.get(f"/staff/concerns/{concern.id}"))
    assert concern.reference in summary
    for secret in ("中部地域包括支援センター", "本人同意あり", "秘密の事情"):
        assert secret not in summary
    referral = db.session.scalar(select(Referral))
    assert client.get(f"/staff/concerns/{concern.id}/referrals/{referral.id}/sheet").status_code == 403
    assert "中部地域包括支援センター" not in page_text(client.get("/staff/referrals"))
    post(client, "/logout")
    login_supporter(client, reporter, mailbox)
    mine = page_text(client.get(f"/me/reports/{concern.reference}"))
    assert "専門の窓口におつなぎしました" in mine
    for secret in ("中部地域包括支援センター", "本人同意あり", "秘密の事情"):
        assert secret not in mine


def test_the_sheet_carries_only_what_the_consent_allows(client, coordinator):
    centre = agency("中部地域包括支援センター", fax="042-000-9999")
    concern = concern_in("d01")
    login_staff(client, coordinator)
    refer(client, concern, centre.id, consent="consent")
    refer(client, concern, centre.id, consent="anonymous", passed_on="地域で見守りの相談")
    full, anonymous = db.session.scalars(select(Referral).order_by(Referral.id)).all()
    page = page_text(client.get(f"/staff/concerns/{concern.id}/referrals/{full.id}/sheet"))
    assert "西東京市北原町1-2-3" in page and "新聞がたまっている" in page and "042-000-9999" in page
    page = page_text(client.get(f"/staff/concerns/{concern.id}/referrals/{anonymous.id}/sheet"))
    assert "地域で見守りの相談" in page and "個人が分からない形で相談" in page
    for identifying in ("西東京市北原町1-2-3", "新聞がたまっている", "北原公園の東"):
        assert identifying not in page
    printed = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.sheet")).all()
    assert len(printed) == 2 and all(e.staff_id == coordinator.id for e in printed)


def test_follow_ups_come_due_on_the_list_and_in_the_digest(client, app, coordinator, mailbox):
    centre = agency("中部地域包括支援センター")
    due_concern, later_concern = concern_in("d01"), concern_in("d01")
    for concern, follow_up in ((due_concern, TODAY), (later_concern, TODAY + timedelta(days=5))):
        concerns.record_referral(concern, {"agency_id": centre.id, "referred_on": TODAY,
                                           "method": "fax", "consent": "consent",
                                           "follow_up_on": follow_up}, actor=coordinator)
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/referrals"))
    assert page.index(due_concern.reference) < page.index(later_concern.reference)
    assert page.count("確かめる日を過ぎています") == 1 and "本人同意あり" in page
    referral = db.session.scalar(select(Referral).where(Referral.concern_id == due_concern.id))
    response = post(client, f"/staff/concerns/{due_concern.id}/referrals/{referral.id}",
                    {"status": "accepted", "on": TODAY.isoformat(), "back": "follow_ups"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/referrals")
    db.session.refresh(referral)
    assert referral.status == "accepted" and referral.follow_up_on is None
    # The digest names what is due (the later one is not yet).
    later = db.session.scalar(select(Referral).where(Referral.concern_id == later_concern.id))
    later.follow_up_on = TODAY
    db.session.commit()
    app.config["HOTNET_DIGEST_HOUR"] = 0
    mailbox.clear()
    assert send_daily_digests() == 1
    [digest] = mails_to(mailbox, coordinator.email)
    body = text_of(digest)
    assert "つなぎの様子を確かめる日が来たもの: 1件" in body and later_concern.reference in body
    assert "本人同意あり" in body  # the consent basis goes wherever the referral does



def test_figures_by_kind_and_area_hide_small_counts_and_match_the_csv(client, coordinator):
    from app.concerns.statistics import referral_figures
    centre = agency("中部地域包括支援センター", area_ids=[district("d01").area_id])
    desk = agency("生活サポート相談窓口", kind="life_support")
    for n in range(4):
        concern = concern_in("d01")
        referral = concerns.record_referral(concern, {
            "agency_id": (centre if n < 3 else desk).id, "referred_on": TODAY - timedelta(days=3),
            "method": "phone", "consent": "consent"}, actor=coordinator)
        if n < 3:
            concerns.update_referral(referral, "accepted", on=TODAY - timedelta(days=3 - n),
                                     actor=coordinator)
    figures = referral_figures(None)
    area = district("d01").area.label
    assert str(figures.cells[("houkatsu", area)]) == "3"
    assert str(figures.cells[("life_support", area)]) == "1〜2"   # small: a range
    assert str(figures.area_total(area)) == "4〜5"                 # a range whenever one is
    assert figures.days_to_accept == 1.0 and str(figures.outcomes["accepted"]) == "3"
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns"))
    assert "つなぎと協力のお願い" in page and "1〜2" in page
    rows = list(csv.reader(io.StringIO(client.get("/staff/concerns/referrals.csv")
                                       .get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[1][0] == "地域包括支援センター" and "3" in rows[1]
    assert any(row and row[0] == "受理までの日数（中央値）" and row[1] == "1" for row in rows)
    month = f"{TODAY - timedelta(days=3):%Y-%m} のつなぎ"
    assert [row[1] for row in rows if row and row[0] == month] == ["4"]
    assert "月ごとのつなぎの件数" in page
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "referral.figures"))


def test_a_referral_sent_again_after_going_back_is_recorded_once(client, coordinator):
    """Back, then つなぎを記録する again (a new one-time key, the same words): the first
    referral, once; a different agency or words the same day is a new referral."""
    centre = agency("中部地域包括支援センター", area_ids=[district("d01").area_id])
    other = agency("西東京市社会福祉協議会 生活支援", kind="life_support")
    concern = concern_in()
    login_staff(client, coordinator)
    for _again in range(2):
        response = refer(client, concern, centre.id, connect="y")
        assert response.status_code == 302 and response.headers["Location"].endswith("#referrals")
    assert [r.agency_id for r in db.session.scalars(select(Referral))] == [centre.id]
    db.session.expire_all()
    assert concern.status == "connected"
    refer(client, concern, other.id)
    refer(client, concern, centre.id, passed_on="書類を届けました")
    assert [(r.agency_id, r.passed_on) for r in db.session.scalars(
        select(Referral).order_by(Referral.id))] == [
        (centre.id, "訪問をお願いしました"), (other.id, "訪問をお願いしました"),
        (centre.id, "書類を届けました")]


def test_a_double_click_records_a_referral_note_message_and_agency_once(client, admin, mailbox):
    """Staff forms that add something carry a one-time key: the same form sent twice (a
    double click, a reload of the result) shows the first result and adds nothing more."""
    from app.concerns.models import ConcernEvent
    concern = concern_in("d01")
    concerns.assign(concern, admin.id, actor=admin)
    target = agency("西部地域包括支援センター")
    login_staff(client, admin)
    key = "k" * 20
    for _ in range(2):
        response = refer(client, concern, target.id, submission_key=key)
        assert response.status_code == 302 and response.headers["Location"].endswith("#referrals")
    assert len(db.session.scalars(select(Referral)).all()) == 1
    for path, body in (("note", "玄関に新聞が三日分"), ("message", "包括支援センターにつなぎました")):
        for _ in range(2):
            assert post(client, f"/staff/concerns/{concern.id}/{path}",
                        {"body": body, "submission_key": f"{path}-" + "x" * 20}).status_code == 302
        events = db.session.scalars(select(ConcernEvent).where(
            ConcernEvent.concern_id == concern.id, ConcernEvent.body == body)).all()
        assert len(events) == 1, path
    # Without a key (an old page, or Back and the page's new key) the same words sent again
    # within ten minutes are still the first note; other words are never lost.
    for body in ("鍵なし", "鍵なし", "鍵なし（続き）"):
        post(client, f"/staff/concerns/{concern.id}/note", {"body": body})
    assert db.session.scalars(select(ConcernEvent.body).where(
        ConcernEvent.body.like("鍵なし%")).order_by(ConcernEvent.id)).all() == ["鍵なし", "鍵なし（続き）"]
    first = post(client, "/admin/partners/new", {"kind": "houkatsu", "name": "北部地域包括支援センター",
                                                 "submission_key": "a" * 20})
    again = post(client, "/admin/partners/new", {"kind": "houkatsu", "name": "北部地域包括支援センター",
                                                 "submission_key": "a" * 20})
    assert first.status_code == again.status_code == 302
    assert first.headers["Location"] == again.headers["Location"]
    assert len(db.session.scalars(select(Agency).where(Agency.name == "北部地域包括支援センター")).all()) == 1

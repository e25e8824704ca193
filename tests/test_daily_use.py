"""What people trying Hot-Net tripped over (issue 11), each as they would notice it."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.supporters.models import Supporter
from tests.conftest import csrf, district, login_staff, make_supporter, page_text, post


def staff_create(client, **values):
    data = {"kind": "person", "name": "山田 太郎", "kana": "やまだ たろう", "delivery": "none",
            "status": "active", "joined_via": "staff", "district_id": str(district("d01").id),
            "business_category_id": "0"}
    data.update(values)
    return post(client, "/staff/supporters/new", data)


# --- 5, 6: what people typed is kept; postal codes ----------------------------------------------

def test_names_and_addresses_are_kept_as_typed(client, coordinator):
    login_staff(client, coordinator)
    response = staff_create(client, kind="business", name="", kana="",
                            business_name="㈱西東京クリーン", business_kana="にしとうきょうくりーん",
                            contact_person="德永 ①郎", address="西東京市南町①-2 メゾン３～５",
                            postal_code="〒188－0011", phone="０４２－１２３－４５６７",
                            delivery="post")
    assert response.status_code == 302, page_text(response)
    s = db.session.scalar(select(Supporter))
    assert s.business_name == "㈱西東京クリーン" and s.contact_person == "德永 ①郎"
    assert s.address == "西東京市南町①-2 メゾン３～５"
    assert s.phone == "042-123-4567" and s.postal_code == "1880011"
    page = page_text(client.get(f"/staff/supporters/{s.id}"))
    assert "〒188-0011" in page and "〒〒" not in page and "㈱西東京クリーン" in page


@pytest.mark.parametrize("typed, stored", [("1880012", "1880012"), ("188-0012", "1880012"),
                                           ("〒１８８－００１２", "1880012")])
def test_postal_codes_are_stored_as_seven_digits(client, coordinator, typed, stored):
    login_staff(client, coordinator)
    response = staff_create(client, postal_code=typed, address="西東京市南町1-1", delivery="post")
    assert response.status_code == 302
    s = db.session.scalar(select(Supporter))
    assert s.postal_code == stored
    assert "〒188-0012" in page_text(client.get(f"/staff/supporters/{s.id}"))


@pytest.mark.parametrize("typed", ["18800123", "188-001", "abcdefg", "〒"])
def test_a_postal_code_that_is_not_seven_digits_is_refused(client, coordinator, typed):
    login_staff(client, coordinator)
    response = staff_create(client, postal_code=typed, address="西東京市南町1-1", delivery="post")
    assert response.status_code == 200 and "7桁の数字" in page_text(response)


# --- 7: variant kanji -------------------------------------------------------------------------------

@pytest.mark.parametrize("stored, typed", [("髙橋 一郎", "高橋"), ("山﨑 花子", "山崎"),
                                           ("渡邊 次郎", "渡辺"), ("渡邉 三郎", "渡辺"),
                                           ("齋藤 四郎", "斉藤"), ("齊藤 五郎", "斎藤"),
                                           ("澤田 六郎", "沢田"), ("櫻井 七子", "桜井"),
                                           ("高橋 八郎", "髙橋")])
def test_search_finds_variant_kanji(client, coordinator, stored, typed):
    make_supporter(name=stored, kana="てすと")
    make_supporter(name="無関係 人", kana="むかんけい")
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/supporters", query_string={"q": typed}))
    assert stored in page and "無関係 人" not in page


# --- 8: 五十音 order -------------------------------------------------------------------------------

def test_the_registry_sorts_as_a_japanese_dictionary(client, coordinator):
    for name, kana in (("近藤 一", "コンドウ ハジメ"), ("後藤 二", "ゴトウ ジ"), ("古藤 三", "コトウ サン"),
                       ("加藤 四", "かとう し"), ("吉川 五", "きっかわ ご"), ("菊池 六", "キクチ ロク")):
        make_supporter(name=name, kana=kana)
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/supporters"))
    order = [n for n in ("加藤 四", "菊池 六", "吉川 五", "古藤 三", "後藤 二", "近藤 一")]
    positions = [page.index(n) for n in order]
    assert positions == sorted(positions)


# --- 10: businesses are addressed 御中 --------------------------------------------------------------

def test_a_business_is_addressed_onchu_and_its_contact_sama(app, geography, mailbox):
    from app.supporters.models import salutation
    with app.test_request_context():
        assert salutation("business", "", "㈱西東京クリーン", "") == "㈱西東京クリーン 御中"
        assert salutation("business", "", "㈱西東京クリーン", "山田") == "㈱西東京クリーン 山田 様"
        assert salutation("person", "西東 花子") == "西東 花子 様"


# --- 4: the import takes good rows, previews them and says how it read the file ------------------

def test_import_without_a_delivery_column_chooses_from_what_the_row_has(client, coordinator):
    from tests.test_import_export import decide, upload
    login_staff(client, coordinator)
    content = ("氏名,ふりがな,電話番号,メールアドレス,郵便番号,住所,地区\r\n"
               "斎藤 一,さいとう はじめ,042-111-2222,,,,田無小地区\r\n"
               "鈴木 二,すずき じ,,suzuki@example.jp,,,田無小地区\r\n"
               "佐藤 三,さとう さん,,,188-0011,西東京市田無町1-1,田無小地区\r\n").encode("cp932")
    review = upload(client, content)
    body = page_text(review)
    assert "登録できる行は 3 行" in body and "Shift_JIS" in body
    for name in ("斎藤 一", "鈴木 二", "佐藤 三"):
        assert name in body  # the preview lists the rows that will be imported
    assert "列が空のため自動" in body
    assert decide(client, review, "import").status_code == 302
    got = {s.name: s.delivery for s in db.session.scalars(select(Supporter))}
    assert got == {"斎藤 一": "none", "鈴木 二": "email", "佐藤 三": "post"}
    assert "通信の受け取り方" in page_text(client.get("/staff/supporters/import"))


# --- 2: a double click, a reload, Back and send again ------------------------------------------------

def report_form(client, **changes):
    from app.concerns.models import ConcernCategory
    from tests.conftest import csrf
    page = client.get("/report").get_data(as_text=True)
    key = re.search(r'name="submission_key"[^>]*value="([^"]+)"', page).group(1)
    category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
    data = {"csrf_token": csrf(client, "/report"), "submission_key": key,
            "category_id": str(category.id), "body": "郵便受けがあふれています", "urgency": "normal",
            "district_id": "0"}
    data.update(changes)
    return data


def test_a_report_sent_twice_is_stored_once(client, geography):
    from app.concerns.models import Concern
    data = report_form(client)
    first = client.post("/report", data=data)
    second = client.post("/report", data=data)  # a double click: the same key
    assert first.status_code == second.status_code == 302
    thanks = client.get("/report/thanks").get_data(as_text=True)
    # Back: a new page (a new key), the browser fills in what was typed, send again.
    again = client.post("/report", data=report_form(client))
    assert again.status_code == 302
    assert db.session.scalar(select(func.count(Concern.id))) == 1
    reference = db.session.scalar(select(Concern.reference))
    assert reference in thanks and reference in client.get("/report/thanks").get_data(as_text=True)
    # Something else to report is a new report.
    assert client.post("/report", data=report_form(client, body="別の件です")).status_code == 302
    assert db.session.scalar(select(func.count(Concern.id))) == 2


def test_applications_and_visitor_sign_ups_sent_twice_are_stored_once(client, geography):
    from app.trainings.models import Registration
    from tests.test_trainings import make_session
    person = {"name": "二度 押し", "kana": "にど おし", "delivery": "none", "district_id": "0",
              "consent": "y"}
    for _ in range(3):
        assert post(client, "/apply", person).status_code == 302
    session = make_session(kind="registration")
    visitor = dict(person, name="来訪 一人", kana="らいほう ひとり", email="v@example.jp",
                   delivery="email")
    for _ in range(3):
        assert post(client, f"/trainings/{session.id}/visitor", visitor).status_code == 302
    names = list(db.session.scalars(select(Supporter.name)))
    assert sorted(names) == ["二度 押し", "来訪 一人"]
    assert db.session.scalar(select(func.count(Registration.id))) == 1


# --- 9, 10: the registry list --------------------------------------------------------------------

def test_station_filter_and_a_district_outside_the_area_is_explained(app, client, admin):
    tanashi = make_supporter(name="田無 住人", kana="たなし じゅうにん", district_id=district("d01").id)
    hoya = make_supporter(name="保谷 住人", kana="ほうや じゅうにん", district_id=district("d20").id)
    login_staff(client, admin)
    station = district("d01").area.station
    page = page_text(client.get("/staff/supporters", query_string={"station": station.id}))
    assert tanashi.name in page and hoya.name not in page
    other_area = district("d20").area_id
    page = page_text(client.get("/staff/supporters", query_string={
        "area": other_area, "district": district("d01").id}))
    assert "地区「" in page and "ではなく" in page and "選び直してください" in page
    # The district list follows the chosen area.
    page = page_text(client.get("/staff/supporters", query_string={"area": district("d01").area_id}))
    select_html = page.split('id="district"')[1].split("</select>")[0]
    assert district("d01").name in select_html and district("d20").name not in select_html


def test_sort_by_column_jump_to_a_page_and_print_everyone(app, client, admin):
    app.config["HOTNET_PAGE_SIZE"] = 2
    for n, code in enumerate(("d20", "d01", "d11", "d05", "d15")):
        make_supporter(name=f"並び {n}", kana=f"ならび {'あいうえお'[n]}", district_id=district(code).id,
                       phone=f"042-555-000{n}")
    login_staff(client, admin)
    page = page_text(client.get("/staff/supporters", query_string={"sort": "district"}))
    assert 'aria-sort="ascending"' in page
    assert 'name="page"' in page and "ページを指定" in page
    assert "並び 1" in page  # d01 comes first by district
    assert page_text(client.get("/staff/supporters?page=3")).count("並び") >= 1
    printed = page_text(client.get("/staff/supporters/print"))
    assert all(f"並び {n}" in printed for n in range(5)) and "042-555-0004" in printed
    from app.audit.models import AuditEntry
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "supporter.print"))


def test_withdrawn_and_declined_rows_are_named_for_what_they_are(client, admin):
    from app.supporters import services
    gone = make_supporter(name="退会 する", kana="たいかい する")
    services.withdraw(gone, actor=None)
    applicant = make_supporter(name="見送り 予定", kana="みおくり よてい", status="applied")
    services.decline(applicant, actor=None)
    login_staff(client, admin)
    page = page_text(client.get("/staff/supporters?status=withdrawn"))
    assert f"（退会済み #{gone.id}）" in page
    assert f"（見送り済み #{applicant.id}）" in page_text(client.get(f"/staff/supporters/{applicant.id}"))


# --- 12, 13: trainings -------------------------------------------------------------------------

def test_a_capacity_change_tells_nobody_that_the_date_changed(client, coordinator, mailbox):
    from app.trainings import services
    from app.trainings.services import session_form_values
    from tests.test_trainings import mails_to, make_session, person
    session = make_session(capacity=1)
    first, second = person(1), person(2)
    services.sign_up(session.id, first, actor=None)
    services.sign_up(session.id, second, actor=None)
    mailbox.clear()
    values = session_form_values(session)
    login_staff(client, coordinator)
    response = post(client, f"/staff/trainings/sessions/{session.id}/edit", {
        "day": values["day"].isoformat(), "start_time": values["start_time"].strftime("%H:%M"),
        "end_time": values["end_time"].strftime("%H:%M"), "station_id": "0",
        "venue_name": values["venue_name"], "venue_address": values["venue_address"],
        "capacity": "2", "signup_deadline": values["signup_deadline"].isoformat(),
        "cancel_deadline": values["cancel_deadline"].isoformat(), "notes": values["notes"]},
        follow_redirects=True)
    page = page_text(response)
    assert "回を変更しました" in page and "日時・会場の変更" not in page and "繰り上がりました" in page
    assert mails_to(mailbox, first.email) == []
    [promoted] = mails_to(mailbox, second.email)
    assert "変わりました" not in str(promoted["Subject"])


def test_becoming_active_at_the_registration_training_brings_a_welcome(client, coordinator, mailbox):
    from app.trainings import services
    from tests.test_trainings import held, mails_to, make_session, person
    session = make_session(kind="registration")
    newcomer = person(7, status="applied")
    registration = services.sign_up(session.id, newcomer, actor=None)
    held(session)
    mailbox.clear()
    services.mark_attendance(registration.id, "attended", actor=None)
    [welcome] = mails_to(mailbox, newcomer.email)
    assert "登録しました" in str(welcome["Subject"])


# --- 14-17: concerns --------------------------------------------------------------------------------

def concern(code="d01", **values):
    from app.concerns import services
    from app.concerns.models import ConcernCategory
    category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
    data = {"category_id": category.id, "body": "新聞がたまっています", "urgency": "normal",
            "district_id": district(code).id}
    data.update(values)
    return services.submit_concern(data)


def test_a_finished_concern_offers_to_reopen_it_by_name_not_a_list_set_to_reopen(
        client, coordinator):
    """A closed concern can only go back to 対応中: the page says it is closed and offers a
    button that says so; adding a note (its own form) leaves it closed."""
    from app.concerns import services
    done = concern(body="片付いた件")
    services.change_status(done, "acknowledged", actor=None)
    services.change_status(done, "closed", actor=None)
    login_staff(client, coordinator)
    url = f"/staff/concerns/{done.id}"
    page = page_text(client.get(url))
    form = page.split('action="' + url + '/status"')[1].split("</form>")[0]
    assert "この件は「完了」です。" in form and "「対応中」に戻す" in form
    assert "戻す理由（任意）" in form and "内部メモ（任意）" not in form  # not a note box that reopens
    assert "<select" not in form and "重複元の受付番号" not in form
    assert '<input type="hidden" name="status" value="in_progress">' in form
    note_form = page.split('action="' + url + '/note"')[1].split("</form>")[0]
    key = re.search(r'name="submission_key"[^>]*value="([^"]+)"', note_form).group(1)
    form = {"body": "後日、お元気な様子を確認", "submission_key": key, "csrf_token": csrf(client)}
    for _twice in range(2):  # a double click: one note, and one message saying so
        noted = client.post(url + "/note", data=form)
    db.session.expire_all()
    assert noted.status_code == 302 and done.status == "closed"
    page = page_text(client.get(url))
    assert page.count("後日、お元気な様子を確認") == 1 and page.count("内部メモを残しました。") == 1
    # An open one still chooses among its next steps, the duplicate's number among them.
    fresh = concern(body="新しい件")
    page = page_text(client.get(f"/staff/concerns/{fresh.id}"))
    assert '<select id="status-status" name="status"' in page and "重複元の受付番号" in page
    assert "状態を変える" in page
    response = post(client, url + "/status", {"status": "in_progress", "note": ""})
    db.session.expire_all()
    assert response.status_code == 302 and done.status == "in_progress"


def test_the_queue_opens_on_live_concerns_with_urgent_ones_first(client, coordinator):
    from app.concerns import services
    done = concern(body="片付いた件")
    services.change_status(done, "acknowledged", actor=None)
    services.change_status(done, "closed", actor=None)
    routine = concern(body="いつもの件", place="駅前公園")
    urgent = concern(body="倒れているかもしれない", urgency="urgent")
    for _ in range(3):
        concern(body="あとから来た件")
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns"))
    assert done.reference not in page and routine.reference in page
    assert page.index(urgent.reference) < page.index("あとから来た件")  # pinned above newer ones
    assert "駅前公園 いつもの件" in page  # a one-line summary
    assert "自分の担当（完了・重複以外）" in page
    assert done.reference in page_text(client.get("/staff/concerns?status=all"))
    # An address it does not know opens the queue as it opens, never an error page.
    for odd in ("status=bogus", "area=%C2%B2", "area=99999999999999999999", "area=-1"):
        response = client.get("/staff/concerns?" + odd)
        assert response.status_code == 200, odd
        if odd.startswith("status"):
            assert done.reference not in page_text(response) and routine.reference in page_text(response)


def test_the_pinned_urgent_ones_and_the_page_each_hold_their_own_concerns(client, coordinator,
                                                                          app):
    """The pinned list and the page are read together: each keeps its own rows and order, the
    pinned ones stay on the first page only, and the count is the list's."""
    from app.concerns import services
    app.config["HOTNET_PAGE_SIZE"] = 2
    closed_urgent = concern(body="片付いた急ぎの件", urgency="urgent")
    services.change_status(closed_urgent, "acknowledged", actor=None)
    services.change_status(closed_urgent, "closed", actor=None)
    elsewhere = concern("d06", body="よその急ぎの件", urgency="urgent")  # another area
    urgent = concern(body="倒れているかもしれない", urgency="urgent")
    for n in range(3):
        concern(body=f"いつもの件 {n}")
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns"))
    pinned, listed = page.split("緊急（完了していないもの）")[1].split("該当 4 件")
    assert urgent.reference in pinned and "倒れているかもしれない" in pinned
    assert closed_urgent.reference not in pinned and elsewhere.reference not in pinned
    assert "いつもの件" not in pinned
    assert listed.index("いつもの件 2") < listed.index("いつもの件 1")
    assert "いつもの件 0" not in listed and urgent.reference not in listed
    second = page_text(client.get("/staff/concerns", query_string={"page": 2}))
    assert "緊急（完了していないもの）" not in second and "該当 4 件" in second
    assert "いつもの件 0" in second and urgent.reference in second
    assert "いつもの件 2" not in second
    # The pinned ones are among what the filters choose: none above a list of closed ones,
    # and a search pins only the urgent ones it finds.
    closed = page_text(client.get("/staff/concerns", query_string={"status": "closed"}))
    assert "緊急（完了していないもの）" not in closed and closed_urgent.reference in closed
    found = page_text(client.get("/staff/concerns", query_string={"q": "いつもの件"}))
    assert "緊急（完了していないもの）" not in found and urgent.reference not in found
    found = page_text(client.get("/staff/concerns", query_string={"q": "倒れて"}))
    assert found.split("緊急（完了していないもの）")[1].count(urgent.reference) == 2  # pinned, listed


def test_a_queue_page_past_the_last_says_where_the_list_ends(client, coordinator, app):
    app.config["HOTNET_PAGE_SIZE"] = 2
    for n in range(3):
        concern(body=f"件 {n}")
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns", query_string={"page": 9}))
    assert "そのページはありません（全 3 件、2 ページまで）。" in page
    assert "該当する記録はありません" not in page
    last = re.search(r'href="([^"]*page=2[^"]*)">最後のページへ', page).group(1)
    assert "件 0" in page_text(client.get(last.replace("&amp;", "&")))


def test_the_digest_counts_what_waits_and_says_each_status(app, coordinator, mailbox):
    from datetime import datetime

    from app.concerns import services
    from app.concerns.digest import send_daily_digests
    from app.formatting import TOKYO
    from tests.conftest import mails_to, text_of
    concern(), concern()  # two still waiting
    closed = concern(body="もう片付いた")
    services.change_status(closed, "acknowledged", actor=None)
    services.change_status(closed, "closed", actor=None)
    nine = datetime.now(TOKYO).replace(hour=9, minute=0)
    assert send_daily_digests(nine) == 1
    [digest] = mails_to(mailbox, coordinator.email)
    assert "受付のまま2件" in str(digest["Subject"])
    body = text_of(digest)
    assert f"{closed.reference}" in body and "〔完了〕" in body and "〔受付〕" in body


def test_a_new_assignee_is_told_but_not_someone_taking_it_themselves(client, coordinator, mailbox):
    from app.accounts.services import create_staff
    from tests.conftest import PASSWORD, mails_to
    colleague = create_staff("colleague@example.jp", "同僚 二人", PASSWORD, "coordinator",
                             area_ids=[district("d01").area_id], actor=None)
    item = concern()
    mailbox.clear()
    login_staff(client, coordinator)
    post(client, f"/staff/concerns/{item.id}/assign", {"assignee_id": str(colleague.id)})
    [told] = mails_to(mailbox, colleague.email)
    assert item.reference in str(told["Subject"]) and "新聞" not in told.get_body(("plain",)).get_content()
    post(client, f"/staff/concerns/{item.id}/assign", {"assignee_id": str(coordinator.id)})
    assert mails_to(mailbox, coordinator.email) == []


def test_staff_intake_records_when_the_call_came_in(client, coordinator):
    from app.concerns.models import Concern, ConcernCategory
    from app.formatting import today_tokyo
    from tests.conftest import csrf
    login_staff(client, coordinator)
    page = page_text(client.get("/staff/concerns/new"))
    assert 'name="reported_on"' in page and 'name="reported_time"' in page
    category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
    day = today_tokyo() - timedelta(days=1)  # 00:05 of today may not have come yet
    response = client.post("/staff/concerns/new", data={
        "csrf_token": csrf(client, "/staff/concerns/new"), "channel": "phone",
        "category_id": str(category.id), "body": "電話で聞いた話", "urgency": "normal",
        "district_id": "0", "reported_on": day.isoformat(), "reported_time": "00:05"})
    assert response.status_code == 302
    stored = db.session.scalar(select(Concern))
    assert stored.reported_at is not None and stored.reported_at < stored.created_at
    assert "00:05" in page_text(client.get(response.headers["Location"]))


@pytest.mark.parametrize("typed", ["0006-02-02", "1999-12-31"])
def test_an_impossible_noticed_date_is_refused(client, geography, typed):
    from app.concerns.models import ConcernCategory
    from tests.conftest import csrf
    category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
    response = client.post("/report", data={
        "csrf_token": csrf(client, "/report"), "category_id": str(category.id),
        "body": "昔のこと", "urgency": "normal", "district_id": "0", "noticed_on": typed})
    assert response.status_code == 200 and "2000 年以降" in page_text(response)
    assert "昔のこと" in page_text(response)


# --- 18: the audit log reads as Japanese ---------------------------------------------------------

def test_the_audit_log_reads_in_japanese_and_filters_every_kind(client, coordinator, admin):
    from app.concerns import services
    from app.concerns.digest import send_daily_digests  # noqa: F401 - the log also has system entries
    item = concern()
    services.change_status(item, "duplicate", duplicate_of=concern().reference, actor=None)
    login_staff(client, coordinator)
    client.get("/staff/concerns/export.csv?assignee=me")
    client.get(f"/staff/concerns/{item.id}")
    post(client, "/logout")
    login_staff(client, admin)
    page = page_text(client.get("/admin/audit"))
    assert "受付 → 重複" in page and "気になることをCSVに書き出した" in page
    assert "条件: 圏域: 中部圏域、担当者: 自分、状態: 完了・重複以外、地区不明のものも含む: はい" in page
    assert "Filters(" not in page and "received -> duplicate" not in page
    assert "システム（自動の処理）" in page  # the status change made outside a request
    options = page.split('id="action"')[1].split("</select>")[0]
    assert "気になることの状態を変えた" in options and "通信の送信を始めた" in options
    only = page_text(client.get("/admin/audit?action=concern.status"))
    assert "受付 → 重複" in only and "CSVに書き出した" not in only.split("</select>")[1]


# --- 1: every export with every filter --------------------------------------------------------------

def test_every_export_answers_with_every_filter(client, coordinator):
    import itertools

    from app.concerns import services
    mine = concern()
    services.assign(mine, coordinator.id, actor=None)
    concern(code="d20", urgency="urgent")
    make_supporter(name="書出 太郎", kana="かきだし たろう")
    login_staff(client, coordinator)
    concern_filters = itertools.product(
        ["", "mine", "all", "none", str(district("d01").area_id)],
        ["", "all", "open", "received", "closed"], ["", "me", "none"], ["", "1"], ["", "urgent"])
    for area, status, assignee, overdue, urgency in concern_filters:
        query = {k: v for k, v in {"area": area, "status": status, "assignee": assignee,
                                   "overdue": overdue, "urgency": urgency}.items() if v}
        response = client.get("/staff/concerns/export.csv", query_string=query)
        assert response.status_code == 200, query
        text = response.get_data(as_text=True)
        assert text.startswith("\ufeff受付番号"), query
        if assignee == "me" and area in ("", "mine", "all") and not urgency and not overdue \
                and status in ("", "all", "open", "received"):
            assert mine.reference in text, query
    for query in ({}, {"status": "withdrawn"}, {"kind": "business"}, {"delivery": "post"},
                  {"q": "書出"}, {"area": district("d01").area_id, "district": district("d01").id},
                  {"station": district("d01").area.station_id, "sort": "district", "desc": "1"}):
        response = client.get("/staff/supporters/export.csv", query_string=query)
        assert response.status_code == 200 and response.get_data(as_text=True).startswith("\ufeff種別"), query


# --- 3: asking before what cannot be undone -------------------------------------------------------

def test_declining_asks_first_and_says_what_is_erased(client, coordinator):
    applicant = make_supporter(name="見送り 候補", kana="みおくり こうほ", status="applied",
                               email="maybe@example.jp", delivery="email")
    login_staff(client, coordinator)
    detail = page_text(client.get(f"/staff/supporters/{applicant.id}"))
    assert f"/staff/supporters/{applicant.id}/decline" in detail
    assert 'action="/staff/supporters/%d/decline"' % applicant.id not in detail  # no one-click
    page = page_text(client.get(f"/staff/supporters/{applicant.id}/decline"))
    assert "見送り 候補" in page and "消去" in page and "元に戻せません" in page
    assert "maybe@example.jp" in page
    db.session.refresh(applicant)
    assert applicant.status == "applied"  # asking changed nothing
    assert post(client, f"/staff/supporters/{applicant.id}/decline").status_code == 302
    db.session.refresh(applicant)
    assert applicant.status == "declined" and applicant.name == ""


def test_cancelling_a_roster_place_names_who_moves_up(client, coordinator):
    from app.trainings import services
    from tests.test_trainings import make_session, person
    session = make_session(capacity=1)
    sitting, next_one = person(1), person(2)
    seat = services.sign_up(session.id, sitting, actor=None)
    services.sign_up(session.id, next_one, actor=None)
    login_staff(client, coordinator)
    roster = page_text(client.get(f"/staff/trainings/sessions/{session.id}"))
    assert f'action="/staff/trainings/registrations/{seat.id}/cancel"' not in roster
    page = page_text(client.get(f"/staff/trainings/registrations/{seat.id}/cancel"))
    assert sitting.name in page and next_one.name in page and "繰り上がり" in page
    db.session.refresh(seat)
    assert seat.status == "confirmed"
    assert post(client, f"/staff/trainings/registrations/{seat.id}/cancel").status_code == 302
    db.session.refresh(seat)
    assert seat.status == "cancelled"


def test_sending_and_cancelling_a_newsletter_ask_first_with_the_numbers(client, coordinator):
    from app.newsletters.models import Newsletter
    for n in range(3):
        make_supporter(name=f"読者 {n}", kana="どくしゃ", email=f"reader{n}@example.jp",
                       delivery="email")
    make_supporter(name="郵送 読者", kana="ゆうそう どくしゃ", delivery="post",
                   postal_code="188-0012", address="西東京市南町1-1")
    login_staff(client, coordinator)
    url = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "", "title": "確認つき", "subject": "件名",
        "body_md": "本文", "area_id": "0", "district_id": "0", "kind": "", "category_id": "0",
        "training_id": "0"}).headers["Location"]
    show = page_text(client.get(url))
    assert url + "/send" in show and f'action="{url}/send"' not in show
    confirm = page_text(client.get(url + "/send"))
    assert "3 人にメールで送ります" in confirm and "郵送の 1 人分" in confirm and "取り消せません" in confirm
    assert db.session.scalar(select(Newsletter.status)) == "draft"
    assert post(client, url + "/send").status_code == 302
    confirm = page_text(client.get(url + "/cancel"))
    assert "まだ送っていない 3 人には送りません" in confirm
    assert post(client, url + "/cancel").status_code == 302
    assert db.session.scalar(select(Newsletter.status)) == "cancelled"


# --- 11: sign-in link pages say the configured time -------------------------------------------------

def test_the_link_pages_say_how_long_a_link_lasts(app, client, geography):
    app.config["HOTNET_LOGIN_LINK_MINUTES"] = 45
    assert "45分間" in page_text(client.get("/login/link"))
    response = post(client, "/login/link", {"email": "nobody@example.jp"}, follow_redirects=True)
    assert "45分間" in page_text(response) and "30分" not in page_text(response)


def _key_of(client, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="submission_key"[^>]*value="([^"]+)"', page).group(1)


def test_staff_forms_that_add_something_add_it_once_when_sent_twice(client, admin, geography):
    """A double click on 登録する / 保存する sends the same form twice: the supporter, staff
    account, training, session and newsletter draft are each added once, and the repeat
    shows the first (not a second record, nor an error about the first)."""
    from app.accounts.models import StaffUser
    from app.newsletters.models import Newsletter
    from app.trainings.models import Training, TrainingSession
    login_staff(client, admin)
    forms = {
        "/staff/supporters/new": {
            "kind": "person", "name": "二度 押子", "kana": "にど おしこ", "delivery": "none",
            "status": "active", "district_id": str(district("d01").id),
            "postal_code": "188-0012", "address": "西東京市南町1-1-1",
            "business_category_id": "0"},
        "/admin/staff/new": {
            "email": "twice@example.jp", "name": "二度 職員", "password": "twice-password-2026",
            "role": "coordinator", "station_id": "0"},
        "/staff/trainings/new": {"title": "二度押しの研修", "kind": "communication",
                                 "description": "", "published": "y"},
        "/staff/newsletters/new": {
            "layout": "regular", "number": "", "title": "二度押しの通信", "subject": "二度押し",
            "body_md": "本文", "area_id": "0", "district_id": "0", "kind": "",
            "category_id": "0"},
    }
    counted = {"/staff/supporters/new": (Supporter, Supporter.name == "二度 押子"),
               "/admin/staff/new": (StaffUser, StaffUser.email == "twice@example.jp"),
               "/staff/trainings/new": (Training, Training.title == "二度押しの研修"),
               "/staff/newsletters/new": (Newsletter, Newsletter.title == "二度押しの通信")}
    for url, data in forms.items():
        data = dict(data, submission_key=_key_of(client, url))
        first = post(client, url, data)
        second = post(client, url, data)
        assert first.status_code == second.status_code == 302, url
        assert second.headers["Location"] == first.headers["Location"] or \
            url == "/admin/staff/new", url
        model, where = counted[url]
        assert db.session.scalar(select(func.count()).select_from(model).where(where)) == 1, url
    training = db.session.scalar(select(Training).where(Training.title == "二度押しの研修"))
    url = f"/staff/trainings/{training.id}"
    session = {"day": "2030-01-15", "start_time": "13:30", "end_time": "15:00", "capacity": "20",
               "station_id": "0", "venue_name": "公民館", "venue_address": "西東京市南町1-1-1",
               "submission_key": _key_of(client, url)}
    assert post(client, url, session).status_code == post(client, url, session).status_code == 302
    assert db.session.scalar(select(func.count(TrainingSession.id)).where(
        TrainingSession.training_id == training.id)) == 1
    # Sent again after Back (a new page, so a new key): that is a second one on purpose.
    again = dict(forms["/staff/trainings/new"], submission_key=_key_of(client, "/staff/trainings/new"))
    assert post(client, "/staff/trainings/new", again).status_code == 302
    assert db.session.scalar(select(func.count(Training.id)).where(
        Training.title == "二度押しの研修")) == 2


def test_a_reporters_phone_typed_with_the_long_vowel_mark_is_kept_with_hyphens(client, geography):
    from app.concerns.models import Concern
    refused = client.post("/report", data=report_form(
        client, reporter_name="報告 花子", reporter_phone="090-1234-5678（夜）", may_contact="y"))
    assert refused.status_code == 200  # the form again, with the reason beside the field
    assert "電話番号は数字とハイフン（-）だけで入力してください（例: 042-123-4567）。" in page_text(refused)
    assert 'value="090-1234-5678（夜）"' in page_text(refused)
    sent = client.post("/report", data=report_form(
        client, reporter_name="報告 花子", reporter_phone="０９０ー１２３４ー５６７８", may_contact="y"))
    assert sent.status_code == 302
    assert db.session.scalar(select(Concern.reporter_phone)) == "090-1234-5678"

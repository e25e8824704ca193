"""Concerns in a real browser: the report form on a phone, and a coordinator's day at a
desktop with JavaScript off."""
import os

from PIL import Image
from sqlalchemy import select

from app.concerns.models import Concern
from app.extensions import db
from tests.conftest import PASSWORD


def in_view(page, locator) -> bool:
    """Whether the element is within the window as the page opened (not scrolled past)."""
    box = locator.bounding_box()
    return box is not None and 0 <= box["y"] and box["y"] + box["height"] <= page.viewport_size["height"]


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_report_on_a_phone_with_a_photo_keeps_input_and_warns_about_119(
        live_server, phone, coordinator, tmp_path):
    page = phone
    page.goto(live_server + "/report")
    assert no_sideways_scroll(page)
    assert page.get_by_text("119（救急・火事）").is_visible()
    page.get_by_label("どんなことですか").select_option(label="見守り・安否")
    page.get_by_label("場所や目印（○○公園の近く、など）").fill("北原公園の近く")
    page.get_by_label("緊急").check()
    page.get_by_role("button", name="送る").click()
    assert page.locator("#body-error").inner_text().endswith("気になったことを書いてください。")
    assert page.get_by_label("場所や目印（○○公園の近く、など）").input_value() == "北原公園の近く"
    assert page.get_by_label("緊急").is_checked()
    assert no_sideways_scroll(page)

    picture = tmp_path / "garden.jpg"
    Image.new("RGB", (320, 240), (90, 140, 60)).save(picture, "JPEG")
    page.get_by_label("気になったこと").fill("お宅の前に新聞がたまっています。")
    page.get_by_label("写真（任意・JPEG か PNG）").set_input_files(str(picture))
    page.get_by_role("button", name="送る").click()
    page.wait_for_url("**/report/thanks")
    text = page.content()
    db.session.rollback()
    concern = db.session.scalar(select(Concern))
    assert concern.reference in text and "110（警察）" in text
    assert concern.photo and concern.urgency == "urgent"
    assert no_sideways_scroll(page)


def test_coordinator_triages_without_javascript(live_server, desktop_without_js, coordinator,
                                                tmp_path):
    from app.concerns.services import submit_concern
    from tests.test_concerns import category, district

    concern = submit_concern({"category_id": category().id, "body": "ごみがたまっています。",
                              "district_id": district("d01").id, "urgency": "soon"})
    page = desktop_without_js
    page.goto(live_server + "/login")
    page.get_by_label("メールアドレス").fill(coordinator.email)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.goto(live_server + "/staff/concerns")
    assert page.locator("svg.bars").count() >= 2
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    page.get_by_role("link", name=concern.reference).click()
    page.get_by_label("新しい状態").select_option(label="確認済")
    page.get_by_label("内部メモ（任意）").fill("明日訪問する")
    page.get_by_role("button", name="状態を変える").click()
    page.get_by_label("担当者").select_option(label=coordinator.name)
    page.get_by_role("button", name="担当者を決める").click()
    # The page opens at the record, and says there what was done (not above, out of sight).
    done = page.get_by_role("status").filter(has_text="担当者を")
    assert done.count() == 1 and done.is_visible() and in_view(page, done)
    timeline = page.locator("#timeline ~ ol").inner_text()
    assert "受付 → 確認済" in timeline and "明日訪問する" in timeline and coordinator.name in timeline
    if os.environ.get("HOTNET_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["HOTNET_SCREENSHOTS"], "concern.png"),
                        full_page=True)


def test_supporter_signs_up_for_a_training_on_a_phone(live_server, phone, geography, mailbox):
    from tests.conftest import make_supporter, sign_in_link
    from tests.test_trainings import make_session

    make_session(capacity=1)
    supporter = make_supporter(email="phone@example.jp", delivery="email")
    page = phone
    page.goto(live_server + "/login/link")
    page.get_by_label("メールアドレス").fill("phone@example.jp")
    page.get_by_role("button", name="リンクを送る").click()
    page.wait_for_url("**/login/link/sent")
    page.goto(live_server + sign_in_link(mailbox, supporter.email))
    page.get_by_role("button", name="ログインする").click()
    page.wait_for_url("**/me")
    page.goto(live_server + "/trainings")
    assert no_sideways_scroll(page)
    page.get_by_role("link", name="コミュニケーション研修（冬）").click()
    page.get_by_role("button", name="この回に申し込む").click()
    assert "お申込みを受け付けました。" in page.content()
    assert "お申込み済みです" in page.content() and no_sideways_scroll(page)


def test_coordinator_refers_a_concern_and_follows_it_up_on_a_phone(live_server, phone, coordinator,
                                                                   tmp_path):
    """つなぎ at 360 px: record a referral with its consent basis, print the sheet, mark it
    つなぎ済, close it (asked first: one referral is still open), follow it up."""
    from app.concerns.models import Referral
    from app.concerns.services import submit_concern
    from app.partners.services import save_agency
    from tests.test_concerns import category, district

    centre = save_agency(None, {"kind": "houkatsu", "name": "中部地域包括支援センター",
                                "fax": "042-000-9999",
                                "area_ids": [district("d01").area_id]}, actor=None)
    save_agency(None, {"kind": "life_support", "name": "生活サポート相談窓口"}, actor=None)
    concern = submit_concern({"category_id": category().id, "body": "郵便受けがいっぱいです。",
                              "district_id": district("d01").id, "urgency": "normal",
                              "address": "西東京市北原町1-2-3"})
    page = phone
    page.goto(live_server + "/login")
    page.get_by_label("メールアドレス").fill(coordinator.email)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.goto(f"{live_server}/staff/concerns/{concern.id}")
    # Without a consent basis the referral is refused; what was typed stays.
    page.get_by_label("つなぎ先").select_option(label=f"★ {centre.name}（地域包括支援センター）")
    page.get_by_label("電話").check()
    page.get_by_label("伝えたこと").fill("訪問をお願いしました。")
    page.get_by_role("button", name="つなぎを記録する").click()
    assert "情報を伝えた根拠を選んでください" in page.locator("#referrals").inner_text()
    assert page.get_by_label("伝えたこと").input_value() == "訪問をお願いしました。"
    assert no_sideways_scroll(page)
    page.get_by_label("個人が分からない形で相談").check()
    page.get_by_role("button", name="つなぎを記録する").click()
    referrals = page.locator("#referrals").inner_text()
    assert "中部地域包括支援センター" in referrals and "個人が分からない形で相談" in referrals
    done = page.get_by_role("status").filter(has_text="つなぎを記録しました。")
    assert done.count() == 1 and in_view(page, done)  # said where the page opens, on a phone
    # 「つなぎ済にする」 was left ticked: the concern moved on with the referral.
    assert page.locator("h1 .badge").first.inner_text() == "つなぎ済"
    assert no_sideways_scroll(page)
    page.screenshot(path=str(tmp_path / "referral-360.png"), full_page=True)
    # The FAX sheet leaves out what would identify the person.
    page.get_by_role("link", name="連絡票（FAX用）を開く").click()
    sheet = page.locator("main").inner_text()
    assert "042-000-9999" in sheet and "西東京市北原町1-2-3" not in sheet
    page.go_back()
    page.get_by_label("新しい状態").select_option(label="完了")
    page.get_by_role("button", name="状態を変える").click()
    assert "まだ終わっていないつなぎが 1 件" in page.locator("main").inner_text()
    page.get_by_role("link", name="やめて、つなぎの経過を記録する").click()
    # Follow-up: one click records today's step.
    page.goto(live_server + "/staff/referrals")
    page.get_by_label("経過").select_option(label="受理")
    page.get_by_role("button", name="きょうの経過として記録する").click()
    assert "受理" in page.locator(".flash").inner_text()
    assert no_sideways_scroll(page)
    db.session.rollback()
    assert db.session.scalar(select(Referral)).status == "accepted"
    if os.environ.get("HOTNET_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["HOTNET_SCREENSHOTS"], "follow-ups-360.png"),
                        full_page=True)

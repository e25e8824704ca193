"""What a person sees in a real browser: a phone-sized application form, keyboard use,
and the staff registry without JavaScript."""
from sqlalchemy import select

from app.extensions import db
from app.supporters.models import Supporter
from tests.conftest import PASSWORD, district, make_supporter


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_application_on_a_phone_keeps_input_and_shows_errors(live_server, phone, geography):
    page = phone
    page.goto(live_server + "/apply")
    assert no_sideways_scroll(page)
    page.get_by_label("氏名").fill("西東 花子")
    page.get_by_label("ふりがな").fill("Hanako")
    page.get_by_label("電話番号").fill("042-400-1234")
    page.get_by_role("button", name="申し込む").click()
    error = page.locator("#kana-error")
    assert error.inner_text().endswith("ふりがなは、ひらがなかカタカナで入力してください。")
    assert page.get_by_label("氏名").input_value() == "西東 花子"
    assert page.get_by_label("電話番号").input_value() == "042-400-1234"
    assert no_sideways_scroll(page)
    page.get_by_label("ふりがな").fill("にしとう はなこ")
    page.get_by_label("郵便番号").fill("188-0012")
    page.get_by_label("住所").fill("西東京市南町1-2-3")
    page.get_by_label("お住まいの地区").select_option(label="田無小地区（例）（中部圏域）")
    page.get_by_label("個人情報の取扱いについて読み、同意します").check()
    page.get_by_role("button", name="申し込む").click()
    page.wait_for_url("**/apply/thanks")
    assert "お申込みを受け付けました" in page.content()
    db.session.rollback()
    supporter = db.session.scalar(select(Supporter))
    assert supporter.status == "applied" and supporter.district_id == district("d01").id


def test_keyboard_reaches_the_skip_link_and_fields_with_visible_focus(live_server, phone,
                                                                     geography):
    page = phone
    page.goto(live_server + "/apply")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "本文へ移動"
    page.keyboard.press("Enter")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "name":
            break
    assert page.evaluate("document.activeElement.id") == "name"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def search_the_registry(page, base, user, typed: str) -> None:
    """Sign in as staff (the registry opens) and search it as a person does."""
    page.goto(base + "/login")
    page.get_by_label("メールアドレス").fill(user.email)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url("**/staff/supporters")
    page.get_by_label("検索（氏名・ふりがな・事業所名・電話番号・メールアドレス）").fill(typed)
    page.get_by_role("button", name="検索", exact=True).click()


def test_staff_search_without_javascript(live_server, desktop_without_js, admin, tmp_path):
    make_supporter(name="山田 太郎", kana="ヤマダ タロウ", phone="042-461-1234")
    make_supporter(name="青木 一郎", kana="あおき いちろう")
    page = desktop_without_js
    search_the_registry(page, live_server, admin, "ﾔﾏﾀﾞ")
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "山田 太郎" in rows.first.inner_text()
    # The filters wait folded under their summary; opened (no script needed), they narrow.
    assert not page.locator("#status").is_visible()
    page.get_by_text("絞り込み・並び順（圏域・地区・状態など）").click()
    page.select_option("#status", label="活動中")
    page.get_by_role("button", name="絞り込む").click()
    assert page.locator("#status").is_visible() and rows.count() == 1
    page.screenshot(path=str(tmp_path / "registry.png"), full_page=True)
    page.get_by_role("link", name="山田 太郎").click()
    assert "ヤマダ タロウ" in page.content() and "変更の記録" in page.content()


def test_english_switch_in_the_browser(live_server, phone, geography):
    page = phone
    page.goto(live_server + "/")
    page.get_by_role("button", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Become a supporter" in page.content()


def test_a_search_on_a_phone_shows_the_first_person_found_on_the_first_screen(
        live_server, phone, coordinator):
    """On a 360 px phone a coordinator's search box, its button, the count and the first
    person found all fit the first screen; registering is a link there too, and what acts on
    the whole list (CSV, printing) follows the list."""
    given = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほ"
    for letter in given:
        make_supporter(name=f"山田 {letter}", kana=f"やまだ {letter}")
    page = phone
    search_the_registry(page, live_server, coordinator, "やまだ")
    page.wait_for_url("**q=*")
    height = page.viewport_size["height"]
    first = page.locator("tbody tr").first.get_by_role("link")
    assert first.inner_text() == "山田 あ"
    assert first.bounding_box()["y"] + first.bounding_box()["height"] <= height
    assert page.get_by_role("heading", name="該当 30 件").bounding_box()["y"] < height
    register = page.get_by_role("link", name="推進員を登録する").first
    assert register.bounding_box()["y"] < height
    export = page.get_by_role("link", name="この条件でCSVに書き出す")
    assert export.bounding_box()["y"] > page.locator("tbody tr").last.bounding_box()["y"]
    assert no_sideways_scroll(page)
    # Narrowed with the filters (open above the list), or sorted, or on to the next page:
    # the page opens at the list, not at the top of the filters two screens up.
    page.get_by_text("絞り込み・並び順（圏域・地区・状態など）").click()
    page.select_option("#status", label="活動中")
    page.get_by_role("button", name="絞り込む").click()
    page.wait_for_url("**status=active*")
    def on_screen(locator) -> bool:
        box = locator.bounding_box()
        return box["y"] + box["height"] > 0 and box["y"] < height

    assert on_screen(page.get_by_role("heading", name="該当 30 件"))
    assert page.locator("#status").is_visible()  # scrolled past, not folded away
    page.get_by_role("link", name="次へ").click()
    page.wait_for_url("**page=2*")
    assert on_screen(page.get_by_role("heading", name="該当 30 件"))
    assert page.locator("tbody tr").first.get_by_role("link").inner_text() != "山田 あ"

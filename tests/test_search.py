"""The staff search: kana-, width- and space-insensitive, filtered, in 五十音 order, paginated."""
import re

import pytest

from tests.conftest import district, login_staff, make_supporter, page_text


@pytest.fixture
def people(geography):
    return {
        "yamada": make_supporter(name="山田 太郎", kana="ヤマダ タロウ", phone="042-461-1234",
                                 email="taro@example.jp", delivery="both"),
        "yamaguchi": make_supporter(name="山口 花子", kana="やまぐち はなこ", phone="042-461-5678",
                                    district_id=district("d11").id),
        "aoki": make_supporter(name="青木 一郎", kana="あおき いちろう", phone="0424619999",
                               district_id=district("d16").id, status="paused"),
        "fudosan": make_supporter(kind="business", name="", kana="", business_name="ひばり不動産",
                                  business_kana="ひばりふどうさん", contact_person="佐藤 次郎",
                                  phone="042-400-0001", district_id=district("d11").id),
    }


def names(response) -> list[str]:
    return names_in(page_text(response))


def names_in(body: str) -> list[str]:
    return re.findall(r'/staff/supporters/\d+">([^<]+)</a>', body)


def test_two_cells_pasted_from_a_spreadsheet_search_as_words(client, admin, people):
    """A tab or line break pasted into a search box is a space, on every list with one; the
    box shows it so; other control characters are still refused."""
    login_staff(client, admin)
    response = client.get("/staff/supporters", query_string={"q": "山田\t太郎\r\n"})
    assert response.status_code == 200 and names(response) == ["山田 太郎"]
    assert 'value="山田 太郎"' in page_text(response)
    for url in ("/staff/concerns", "/staff/partners"):
        assert client.get(url, query_string={"q": "青木\t一郎"}).status_code == 200, url
    refused = client.get("/staff/supporters", query_string={"q": "山田\x1b[31m"})
    assert refused.status_code == 400
    # Only a search box's text: a line break anywhere else is refused as before (it would
    # split a header where the value is followed after signing in).
    assert client.get("/login", query_string={"next": "/staff/concerns\r\nX-Evil: 1"}
                      ).status_code == 400
    assert client.get("/staff/supporters", query_string={"area": "1\t"}).status_code == 400


def test_the_filters_are_folded_until_one_is_used(client, admin, people):
    """A name typed in the box is the usual search: the eight filters wait under a summary
    (on a phone the list starts on the first screen); any filter set opens them. An order
    (a column's header clicked) leaves them folded, and the summary says which it is."""
    login_staff(client, admin)
    folded = page_text(client.get("/staff/supporters", query_string={"q": "山田"}))
    assert '<details class="more-filters">' in folded and "山田 太郎" in folded
    assert "並び順: " not in folded
    for args in ({"status": "paused"}, {"area": people["yamada"].district.area_id},
                 {"q": "山田", "kind": "person"}):
        page = page_text(client.get("/staff/supporters", query_string=args))
        assert '<details class="more-filters" open>' in page, args
    for args, said in (({"sort": "joined"}, "並び順: 登録日順</span>"),
                       ({"desc": "1"}, "並び順: 五十音順（逆の順）</span>"),
                       ({"q": "山田", "sort": "district", "desc": "1"}, "並び順: 地区順（逆の順）")):
        page = page_text(client.get("/staff/supporters", query_string=args))
        assert '<details class="more-filters">' in page and said in page, args


def test_a_search_longer_than_the_box_takes_says_it_was_cut(client, admin, people):
    """Every search box stops at 100 characters; a longer text (an address typed or pasted by
    hand) is searched by its first 100, and the page says so instead of cutting it silently."""
    login_staff(client, admin)
    for url in ("/staff/supporters", "/staff/concerns", "/staff/partners"):
        page = page_text(client.get(url))
        assert re.search(r'<input type="search" id="q" name="q" value="[^"]*" maxlength="100"',
                         page), url
        assert "文字で探しました" not in page
    response = client.get("/staff/supporters", query_string={"q": "山田" + "あ" * 200})
    page = page_text(response)
    assert response.status_code == 200
    assert "検索する言葉が長すぎるため、最初の 100 文字で探しました。" in page
    assert 'value="山田' + "あ" * 98 + '"' in page
    short = page_text(client.get("/staff/supporters", query_string={"q": "山田"}))
    assert "文字で探しました" not in short and "山田 太郎" in short


@pytest.mark.parametrize("query", ["やまだ", "ヤマダ", "ﾔﾏﾀﾞ", "山田", "山田太郎", "山田　太郎",
                                   "ｔａｒｏ", "TARO@EXAMPLE.JP", "たろう", "太郎"])
def test_every_way_of_typing_finds_yamada(client, admin, people, query):
    login_staff(client, admin)
    found = names(client.get("/staff/supporters", query_string={"q": query}))
    assert found == ["山田 太郎"], query


@pytest.mark.parametrize("query,expected", [
    ("042-461-1234", ["山田 太郎"]),
    ("０４２４６１１２３４", ["山田 太郎"]),
    ("5678", ["山口 花子"]),
    ("不動産", ["ひばり不動産"]),
    ("フドウサン", ["ひばり不動産"]),
    ("佐藤", ["ひばり不動産"]),
    ("やま", ["山口 花子", "山田 太郎"]),
    ("田", ["山田 太郎"]),
    ("example.jp", ["山田 太郎"]),
    ("@example.jp", ["山田 太郎"]),          # the domain as people write it
    ("461-1234", ["山田 太郎"]),             # the number without its area code
    ("4611234", ["山田 太郎"]),
    ("61-1234", []),                        # (not any tail of it: that is the last four)
    ("山田\u200b太郎", ["山田 太郎"]),       # a name pasted with an invisible space
    ("存在しない名前", []),
])
def test_search_by_phone_business_and_part_of_a_name(client, admin, people, query, expected):
    login_staff(client, admin)
    assert names(client.get("/staff/supporters", query_string={"q": query})) == expected


@pytest.mark.parametrize("query,expected", [
    ("o'brien", ["O'Brien & \"Sons\" \\ (Ltd.)"]),
    ('"sons"', ["O'Brien & \"Sons\" \\ (Ltd.)"]),
    ("\\(ltd", ["O'Brien & \"Sons\" \\ (Ltd.)"]),
    ("&", ["O'Brien & \"Sons\" \\ (Ltd.)"]),
    ("o'b", ["O'Brien & \"Sons\" \\ (Ltd.)"]),
    ("brien", ["O'Brien & \"Sons\" \\ (Ltd.)"]),  # a suffix, as of any name
    ("'", ["O'Brien & \"Sons\" \\ (Ltd.)"]),
    ("O'Brien OR 山田", []),    # the search index's own words are only text
    ("山* NEAR(", []),
    ("!:*|&", []),
    ("*", []),
])
def test_punctuation_typed_is_looked_for_as_it_is(client, admin, people, query, expected):
    """Quotes, brackets, backslashes and the index's own operators are searched for as
    characters of a name (on both databases' text indexes), never as a query's syntax."""
    make_supporter(kind="business", name="", kana="", business_name="O'Brien & \"Sons\" \\ (Ltd.)",
                   business_kana="おぶらいえん", phone="042-400-0002")
    login_staff(client, admin)
    response = client.get("/staff/supporters", query_string={"q": query})
    assert response.status_code == 200
    assert [n.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")
            for n in names(response)] == expected, query


def test_list_is_in_gojuon_order_of_the_reading(client, admin, people):
    login_staff(client, admin)
    assert names(client.get("/staff/supporters")) == [
        "青木 一郎", "ひばり不動産", "山口 花子", "山田 太郎"]


def test_filters(client, admin, people):
    login_staff(client, admin)
    from app.extensions import db
    from app.geography.models import Area
    hokutobu = db.session.scalar(db.select(Area).where(Area.code == "hokutobu"))
    assert names(client.get("/staff/supporters", query_string={"area": hokutobu.id})) == [
        "ひばり不動産", "山口 花子"]
    assert names(client.get("/staff/supporters", query_string={"kind": "business"})) == [
        "ひばり不動産"]
    assert names(client.get("/staff/supporters", query_string={"status": "paused"})) == ["青木 一郎"]
    assert names(client.get("/staff/supporters", query_string={"delivery": "both"})) == ["山田 太郎"]
    assert names(client.get("/staff/supporters",
                            query_string={"district": district("d16").id})) == ["青木 一郎"]
    category = people["fudosan"].business_category_id
    assert category is None
    assert names(client.get("/staff/supporters",
                            query_string={"q": "やま", "area": hokutobu.id})) == ["山口 花子"]


def test_category_filter(client, admin, geography):
    from app.supporters.services import list_categories
    real_estate = list_categories()[0]
    make_supporter(kind="business", business_name="西東京不動産", business_kana="にしとうきょうふどうさん",
                   business_category_id=real_estate.id)
    make_supporter(kind="business", business_name="花屋", business_kana="はなや",
                   business_category_id=list_categories()[3].id)
    login_staff(client, admin)
    assert names(client.get("/staff/supporters", query_string={"category": real_estate.id})) == [
        "西東京不動産"]


def test_totals_per_area_and_total(client, admin, people):
    login_staff(client, admin)
    body = page_text(client.get("/staff/supporters"))
    assert "該当 4 件" in body
    assert "北東部圏域: <strong>2</strong>" in body
    assert "中部圏域: <strong>1</strong>" in body
    assert "西部圏域: <strong>1</strong>" in body
    assert "南部圏域: <strong>0</strong>" in body


def test_pagination(client, admin, geography, app):
    app.config["HOTNET_PAGE_SIZE"] = 2
    for kana in ("あ", "い", "う", "え", "お"):
        make_supporter(name=f"{kana}野 太郎", kana=f"{kana}の たろう", phone="")
    login_staff(client, admin)
    first = client.get("/staff/supporters")
    assert names(first) == ["あ野 太郎", "い野 太郎"] and "1 / 3 ページ" in page_text(first)
    third = client.get("/staff/supporters", query_string={"page": 3})
    assert names(third) == ["お野 太郎"]
    # A page past the end says so, however far past (a huge number is not read as page 1).
    for far in ("4", "999999", "9" * 30):
        body = page_text(client.get("/staff/supporters", query_string={"page": far}))
        assert "そのページはありません（全 5 件、3 ページまで）" in body and names_in(body) == []
        assert "100000" not in body  # not a page number nobody asked for
    for nonsense in ("0", "-3", "abc", "２"):
        assert names(client.get("/staff/supporters", query_string={"page": nonsense})) == [
            "あ野 太郎", "い野 太郎"]


def test_withdrawn_are_not_listed_by_default(client, admin, people):
    from app.supporters.services import withdraw
    withdraw(people["aoki"], actor=None)
    login_staff(client, admin)
    assert "青木" not in page_text(client.get("/staff/supporters"))
    assert names(client.get("/staff/supporters", query_string={"q": "あおき",
                                                                "status": "withdrawn"})) == []


@pytest.mark.parametrize("kind", ["", "person"], ids=["typed-only", "with-a-filter"])
@pytest.mark.parametrize("one_pass_limit", [2000, 1], ids=["one-pass", "counted-by-database"])
@pytest.mark.parametrize("sort,desc,expected", [
    ("kana", "", ["やまぐち はなこ", "やまだ たろう", "やまね じろう"]),
    ("district", "1", ["やまね じろう", "やまぐち はなこ", "やまだ たろう"]),
])
def test_a_search_pages_sorts_and_counts_alike_however_many_it_finds(
        client, admin, geography, app, monkeypatch, one_pass_limit, kind, sort, desc, expected):
    """A typed search is counted and paged in one pass when it finds few, by the database when
    it finds many: the same pages, order and totals either way."""
    from app.supporters import search
    monkeypatch.setattr(search, "ONE_PASS_LIMIT", one_pass_limit)
    app.config["HOTNET_PAGE_SIZE"] = 2
    make_supporter(name="山田 太郎", kana="やまだ たろう", district_id=district("d01").id)
    make_supporter(name="山口 花子", kana="やまぐち はなこ", district_id=district("d11").id)
    make_supporter(name="山根 次郎", kana="やまね じろう", district_id=district("d16").id)
    make_supporter(name="青木 一郎", kana="あおき いちろう", district_id=district("d16").id)
    login_staff(client, admin)
    pages = [client.get("/staff/supporters", query_string={"q": "やま", "sort": sort, "kind": kind,
                                                           "desc": desc, "page": n})
             for n in (1, 2)]
    readings = {"山田 太郎": "やまだ たろう", "山口 花子": "やまぐち はなこ", "山根 次郎": "やまね じろう"}
    assert [readings[n] for p in pages for n in names(p)] == expected
    body = page_text(pages[0])
    # The form says the order too (where the table's headers are not shown: a narrow screen),
    # and keeps it for the next search.
    assert f'<option value="{sort}" selected>' in body
    assert ('id="desc" name="desc" value="1" checked' in body) == (desc == "1")
    assert "該当 3 件" in body and "1 / 2 ページ" in body
    assert "中部圏域: <strong>1</strong>" in body and "西部圏域: <strong>1</strong>" in body
    assert "南部圏域: <strong>0</strong>" in body


def test_the_way_back_from_a_supporter_is_the_list_as_it_was_left(client, admin, people):
    """「名簿に戻る」 returns to the search, order and page last seen (it went to the whole
    registry), at the list; with nothing searched, to the registry's top."""
    login_staff(client, admin)
    yamada = people["yamada"]
    plain = page_text(client.get(f"/staff/supporters/{yamada.id}"))
    assert '<a href="/staff/supporters">名簿に戻る</a>' in plain
    client.get("/staff/supporters", query_string={"q": "やま", "sort": "joined", "desc": "1"})
    page = page_text(client.get(f"/staff/supporters/{yamada.id}"))
    back = re.search(r'<a href="([^"]+)">名簿に戻る</a>', page).group(1).replace("&amp;", "&")
    assert back.startswith("/staff/supporters?") and back.endswith("#results")
    assert {"q=%E3%82%84%E3%81%BE", "sort=joined", "desc=1"} <= set(back[:-8].split("?")[1].split("&"))
    assert names(client.get(back[:-8])) == names(client.get(
        "/staff/supporters", query_string={"q": "やま", "sort": "joined", "desc": "1"}))


def test_a_place_no_longer_there_is_said_not_shown_as_an_empty_list(client, admin, people):
    """An old bookmark or an edited address with an area, district or station id that no
    place has: the page says so, instead of 該当 0 件 under 「すべて」."""
    login_staff(client, admin)
    for args in ({"area": "99999"}, {"district": "99999"}, {"station": "99999"}):
        page = page_text(client.get("/staff/supporters", query_string=args))
        assert "は見つかりません（なくなったか、アドレスが違います）。選び直してください。" in page, args
    assert "見つかりません" not in page_text(client.get("/staff/supporters"))

"""CSV import with a dry run (UTF-8 with/without BOM, Shift_JIS) and the audited CSV export."""
import csv
import io
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.extensions import db
from app.supporters.models import Supporter, SupporterImport
from tests.conftest import district, login_staff, make_supporter, page_text, post

HEADER = "種別,氏名,ふりがな,メールアドレス,電話番号,郵便番号,住所,地区,通信の受け取り方,状態,登録日\r\n"
GOOD = [
    "個人,田無 一郎,たなし いちろう,ichiro@example.jp,042-401-0001,188-0011,西東京市田無町1-1,田無小地区（例）,メール,活動中,2024/04/01",
    "個人,保谷 二郎,ホウヤ ジロウ,,042-401-0002,202-0002,西東京市保谷町2-2,保谷小地区,郵送,活動中,",
]


def count() -> int:
    return db.session.scalar(select(func.count(Supporter.id)))


def upload(client, content: bytes, filename: str = "meibo.csv"):
    response = post(client, "/staff/supporters/import",
                    {"file": (io.BytesIO(content), filename)}, content_type="multipart/form-data")
    if response.status_code == 302:  # the dry run is a page of its own (a reload re-sends nothing)
        response = client.get(response.headers["Location"])
    return response


def decision_form(response) -> tuple[str, str]:
    """The review page's form: its address and the token naming the file it shows."""
    page = page_text(response)
    return (re.search(r"/staff/supporters/import/\d+", page).group(0),
            re.search(r'name="import_token" value="([0-9a-f]+)"', page).group(1))


def decide(client, response, decision: str):
    url, token = decision_form(response)
    return post(client, url, {"decision": decision, "import_token": token})


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp932"])
def test_import_in_every_encoding_excel_writes(client, coordinator, encoding):
    login_staff(client, coordinator)
    content = (HEADER + "\r\n".join(GOOD) + "\r\n").encode(encoding)
    review = upload(client, content)
    body = page_text(review)
    assert "全 2 行のうち、登録できる行は 2 行、問題のある行は 0 行です。" in body
    assert count() == 0  # the dry run writes nothing
    response = decide(client, review, "import")
    assert response.status_code == 302
    people = {s.name: s for s in db.session.scalars(select(Supporter))}
    assert set(people) == {"田無 一郎", "保谷 二郎"}
    assert people["田無 一郎"].district.code == "d01" and people["田無 一郎"].delivery == "email"
    assert people["田無 一郎"].joined_on.isoformat() == "2024-04-01"
    assert people["保谷 二郎"].district.code == "d11" and people["保谷 二郎"].email is None
    assert db.session.scalar(select(func.count(SupporterImport.id))) == 0  # file forgotten
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "supporter.import"))


def test_dry_run_lists_every_problem_in_japanese(client, coordinator):
    make_supporter(name="既存 花子", kana="きぞん はなこ", email="taken@example.jp",
                   delivery="email", phone="042-409-0000")
    login_staff(client, coordinator)
    rows = GOOD + [
        "個人,,,,042-401-0003,188-0011,住所,田無小地区,郵送,活動中,",                          # 4: no name
        "個人,名前 あり,なまえ あり,not-an-email,,,,田無小地区,送付しない,活動中,",             # 5: bad e-mail
        "個人,地区 なし,ちく なし,,,,,どこにもない地区,送付しない,活動中,",                    # 6: district
        "個人,別人 三郎,べつじん さぶろう,TAKEN@example.jp,,,,田無小地区,メール,活動中,",       # 7: dup e-mail
        "個人,既存 花子,きぞん はなこ,,042-409-0000,188-0011,住所,田無小地区,郵送,活動中,",    # 8: name+phone
        "個人,田無 一郎,たなし いちろう,ichiro@example.jp,,,,田無小地区,メール,活動中,",        # 9: dup of row 2
        "個人,日付 へん,ひづけ へん,,,,,田無小地区,送付しない,活動中,2024/13/45",              # 10: date
    ]
    review = upload(client, (HEADER + "\r\n".join(rows)).encode("cp932"))
    body = page_text(review)
    assert "全 9 行のうち、登録できる行は 2 行、問題のある行は 7 行です。" in body
    for expected in ("4行目", "氏名を入力してください。",
                     "5行目", "メールアドレスの形式が正しくありません",
                     "6行目", "地区「どこにもない地区」が見つかりません。",
                     "7行目", "メールアドレスが登録済みの推進員（既存 花子）と同じです。",
                     "8行目", "氏名と電話番号が登録済みの推進員（既存 花子）と同じです。",
                     "9行目", "メールアドレスが2行目と同じです。",
                     "10行目", "登録日「2024/13/45」は日付として読めません"):
        assert expected in body, expected
    assert count() == 1


def test_choosing_none_imports_nothing(client, coordinator):
    login_staff(client, coordinator)
    review = upload(client, (HEADER + "\r\n".join(GOOD)).encode("utf-8"))
    response = decide(client, review, "discard")
    assert response.status_code == 302
    assert count() == 0
    assert db.session.scalar(select(func.count(SupporterImport.id))) == 0


def test_missing_headers_and_unreadable_files_are_explained(client, coordinator):
    login_staff(client, coordinator)
    response = upload(client, "名前,電話\r\nx,y\r\n".encode("utf-8"))
    assert response.status_code == 400  # said on the upload page: nothing to review
    assert "必要な列の見出しがありません: 氏名、地区。1行目に、下の「列の見出し」のとおり" in page_text(response)
    assert db.session.scalar(select(func.count(SupporterImport.id))) == 0
    body = page_text(upload(client, "氏名,地区\r\n".encode("utf-8") + b"\x81\x20\xe3\x81"))
    assert "文字コードを読み取れませんでした" in body
    body = page_text(upload(client, b"PK\x03\x04\x14\x00\x06\x00", "meibo.xlsx"))
    assert "CSVファイルではないようです" in body
    body = page_text(post(client, "/staff/supporters/import", {}))
    assert "CSVファイルを選んでください。" in body
    assert count() == 0


def test_columns_the_registry_has_no_place_for_are_named_before_anything_is_imported(
        client, coordinator):
    login_staff(client, coordinator)
    content = ("氏名,ふりがな,生年月日,地区,備考,,職員メモ\r\n"
               "山田 花子,やまだ はなこ,1950-01-01,田無小地区,鍵は隣に,,メモ\r\n").encode("cp932")
    body = page_text(upload(client, content))
    assert "次の列は名簿にない項目のため、取り込みません: 生年月日、備考。" in body
    assert "「職員メモ」の列に移してから" in body
    # A file with only the registry's columns says nothing of the kind.
    body = page_text(upload(client, "氏名,地区\r\n山田 一郎,田無小地区\r\n".encode("cp932")))
    assert "名簿にない項目" not in body


def test_an_address_typed_full_width_in_the_file_is_imported_as_the_address_it_is(
        client, coordinator):
    login_staff(client, coordinator)
    content = ("氏名,ふりがな,メールアドレス,地区,通信の受け取り方\r\n"
               "全角 花子,ぜんかく はなこ,ｚｅｎｋａｋｕ＠ｅｘａｍｐｌｅ．ｊｐ,田無小地区,メール\r\n"
               ).encode("cp932")
    review = upload(client, content)
    assert "登録できる行は 1 行" in page_text(review)
    decide(client, review, "import")
    assert db.session.scalar(select(Supporter.email)) == "zenkaku@example.jp"
    # Found again by that address however it is typed: a second file is told it is there.
    again = page_text(upload(client, content.replace("全角 花子".encode("cp932"),
                                                     "別人 花子".encode("cp932"))))
    assert "登録できる行は 0 行" in again


def test_cells_with_control_characters_too_long_or_a_business_are_shown_as_they_will_be(
        client, coordinator):
    """A NUL or an escape in a cell is refused (a database would cut the text at a NUL), a
    problem names its column, and a business is listed by its name, as the registry does."""
    login_staff(client, coordinator)
    header = "種別,氏名,ふりがな,事業所名,電話番号,郵便番号,住所,地区,通信の受け取り方,職員メモ\r\n"
    rows = [
        "個人,良い 一,よい,,042-405-0001,188-0012,南町1,田無小地区,郵送,メモ",
        "個人,良い 二,よい,,042-405-0002,188-0012,南町2,田無小地区,郵送,前\x00後",
        "個人,制御\x1b 三,せいぎょ,,042-405-0003,188-0012,南町3,田無小地区,郵送,",
        "事業所,佐藤 次郎,たかのしょうじ,㈱髙野商事①,042-405-0004,188-0012,南町4,田無小地区,郵送,",
        "個人,長い 五,ながい,,042-405-0005,188-0012," + "長" * 301 + ",田無小地区,郵送,",
    ]
    content = (header + "\r\n".join(rows)).encode("cp932")
    review = upload(client, content, "meibo\x00.csv")
    body = page_text(review)
    assert review.status_code == 200
    assert "全 5 行のうち、登録できる行は 2 行、問題のある行は 3 行です。" in body
    assert re.search(r"3行目</td><td[^>]*>良い 二</td>\s*<td[^>]*><ul><li>職員メモに使えない文字（制御文字）"
                     r"が含まれています。", body)
    assert re.search(r"4行目</td><td[^>]*>制御 三</td>\s*<td[^>]*><ul><li>氏名に使えない文字", body)
    assert "住所：300文字以内で入力してください。" in body
    assert re.search(r"<td[^>]*>㈱髙野商事①</td>", body) and "佐藤 次郎" not in body
    assert "\x00" not in body and "\x1b" not in body
    decide(client, review, "import")
    assert {s.display_name for s in db.session.scalars(select(Supporter))} == {
        "良い 一", "㈱髙野商事①"}
    # Saved as Excel's 「Unicode テキスト」 (UTF-16): said so, not taken for a binary file.
    response = upload(client, (header + rows[0]).encode("utf-16"))
    assert response.status_code == 400
    assert "UTF-16（Unicode テキスト）のファイルは読み込めません。" in page_text(response)


def test_rows_in_districts_outside_ones_areas_are_pointed_out_before_importing(
        client, coordinator, admin):
    """A coordinator may import people of another area (they then belong to that area's
    staff, and leave the coordinator's list): the review says how many and which areas, as
    the form does when one such supporter is saved. An administrator serves every area."""
    rows = [
        "個人,中部 一,ちゅうぶ,,042-406-0001,188-0012,南町1,田無小地区,郵送,活動中,",
        "個人,南部 二,なんぶ,,042-406-0002,188-0012,南町2,向台小地区,郵送,活動中,",
        "個人,南部 三,なんぶ,,042-406-0003,188-0012,南町3,本町小地区,郵送,活動中,",
        "個人,北東 四,ほくとう,,042-406-0004,188-0012,南町4,保谷小地区,郵送,活動中,",
        "個人,北東 五,ほくとう,bad-address,,,,保谷小地区,メール,活動中,",  # not imported
        "個人,南部 二,なんぶ,,042-406-0002,188-0012,南町2,向台小地区,郵送,活動中,",  # again
    ]
    content = (HEADER + "\r\n".join(rows)).encode("utf-8")
    login_staff(client, coordinator)
    south, north_east = district("d06").area.label, district("d11").area.label
    review = upload(client, content)
    assert (f"このうち 3 行は、あなたの担当の圏域の外（{south}、{north_east}）の地区です。"
            "取り込むと、その圏域の担当者が扱います（あなたの名簿には出ません）。") in page_text(review)
    decide(client, review, "discard")
    login_staff(client, admin)
    assert "担当の圏域の外" not in page_text(upload(client, content))


def test_export_opens_in_excel_and_is_audited(client, coordinator):
    make_supporter(name="書出 一子", kana="かきだし かずこ", email="k@example.jp", delivery="both",
                   phone="042-400-1111")
    login_staff(client, coordinator)
    response = client.get("/staff/supporters/export.csv")
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM so that Excel reads Japanese correctly
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0]["氏名"] == "書出 一子" and rows[0]["通信の受け取り方"] == "メールと郵送"
    assert rows[0]["圏域"] == "中部圏域"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "supporter.export"))
    from app.audit.services import describe
    assert entry.staff_id == coordinator.id and describe(entry).startswith("1人")


def test_exported_file_imports_back_and_is_seen_as_duplicate(client, coordinator):
    make_supporter(name="往復 太郎", kana="おうふく たろう", email="rt@example.jp", delivery="email",
                   phone="042-400-3333")
    login_staff(client, coordinator)
    raw = client.get("/staff/supporters/export.csv").get_data()
    body = page_text(upload(client, raw))
    assert "登録できる行は 0 行、問題のある行は 1 行です。" in body
    assert "メールアドレスが登録済みの推進員（往復 太郎）と同じです。" in body


def test_an_import_is_found_at_once_and_leaves_no_search_terms_waiting(client, coordinator,
                                                                         backend):
    """Imported supporters are in the search index as soon as the import ends; on PostgreSQL,
    whose GIN index keeps new entries in a pending list that every search reads until VACUUM,
    the import files its thousands at once (SQLite's FTS5 has no such list)."""
    from sqlalchemy import text

    from app.supporters.search import where_matches
    login_staff(client, coordinator)
    rows = [f"個人,索引 {n},さくいん,,042-403-{n:04d},188-0012,西東京市南町1-1-1,田無小地区,郵送,活動中,"
            for n in range(300)]
    decide(client, upload(client, (HEADER + "\r\n".join(rows)).encode("utf-8")), "import")
    assert count() == 300
    for typed in ("サクイン", "索引", "403-0299", "0299"):
        assert len(db.session.scalars(where_matches(select(Supporter.id), typed)).all()) == (
            300 if typed in ("サクイン", "索引") else 1), typed
    if backend == "postgresql":
        waiting = db.session.execute(text(
            "SELECT gin_clean_pending_list('ix_supporter_search_terms'::regclass)")).scalar()
        assert waiting == 0


def test_an_imported_supporter_is_the_same_record_as_one_entered_by_hand(client, coordinator):
    """The import writes many rows at once; what it writes must be what the form writes."""
    from app.supporters.models import SupporterChange
    from app.supporters.services import search_terms_for, sort_key_for
    login_staff(client, coordinator)
    content = (HEADER + "\r\n".join(GOOD) + "\r\n").encode("cp932")
    decide(client, upload(client, content), "import")
    by_hand = make_supporter(name="保谷 二郎", kana="ホウヤ ジロウ", phone="042-401-0009",
                             postal_code="202-0002", address="西東京市保谷町2-2")
    imported = db.session.scalar(select(Supporter).where(Supporter.phone == "042-401-0002"))
    assert imported.sort_key == sort_key_for(imported) == by_hand.sort_key
    terms = set(imported.search_terms.split())
    assert terms == search_terms_for(imported) and "ほうやじろう" in terms and "0002" in terms
    ichiro = db.session.scalar(select(Supporter).where(Supporter.email == "ichiro@example.jp"))
    assert ichiro.email_key == "ichiro@example.jp" and ichiro.status == "active"
    [entry] = db.session.scalars(select(SupporterChange).where(
        SupporterChange.supporter_id == imported.id))
    assert entry.action == "imported" and entry.staff_id == coordinator.id
    assert imported.joined_on == by_hand.joined_on  # today, Japan time: no date in the file
    # Found by the registry search like anyone else: by reading, name and phone.
    for query in ("たなし", "タナシ", "一郎", "0001", "ichiro@"):
        assert "田無 一郎" in page_text(client.get(f"/staff/supporters?q={query}")), query


def test_an_import_in_many_chunks_keeps_every_good_row_its_order_values_and_history(
        client, coordinator, monkeypatch):
    """The import writes a chunk of lines at a time, from records that leave out what is a
    column's default: across chunks with bad rows and a blank line between, every good row
    arrives once, in the file's order, with what it said and what it left to the defaults."""
    from app.supporters import csvio
    from app.supporters.models import SupporterChange
    monkeypatch.setattr(csvio, "CHUNK", 7)
    login_staff(client, coordinator)
    rows = []
    for n in range(30):
        if n % 3 == 2:  # a district nobody has: left out
            rows.append(f"個人,不可 {n},ふか,,,,,どこにもない地区,送付しない,活動中,")
        else:
            rows.append(f"個人,分割 {n:02d},ぶんかつ,,042-404-{n:04d},188-0012,南町{n},田無小地区,"
                        f"郵送,{'休止中' if n == 4 else '活動中'},")
    rows[10:10] = [""]  # a blank line: skipped, the lines after it keep their numbers
    rows[0] = rows[0].replace(",,042-404-0000", ",zero@example.jp,042-404-0000").replace(
        "郵送", "メールと郵送")
    body = page_text(upload(client, (HEADER + "\r\n".join(rows)).encode("cp932")))
    assert "全 30 行のうち、登録できる行は 20 行、問題のある行は 10 行です。" in body
    # (header 1, rows 0-9 on lines 2-11, the blank line 12: row 11 is on line 14)
    assert re.search(r"14行目</td><td[^>]*>不可 11</td>", body)
    decide(client, upload(client, (HEADER + "\r\n".join(rows)).encode("cp932")), "import")
    imported = list(db.session.scalars(select(Supporter).order_by(Supporter.id)))
    assert [s.name for s in imported] == [f"分割 {n:02d}" for n in range(30) if n % 3 != 2]
    first = imported[0]
    assert (first.email, first.email_key, first.delivery) == (
        "zero@example.jp", "zero@example.jp", "both")
    paused = next(s for s in imported if s.name == "分割 04")
    assert (paused.status, paused.delivery, paused.joined_via) == ("paused", "post", "staff")
    assert paused.can_help == [] and paused.notes == "" and paused.business_name == ""
    assert paused.soft_bounces == 0 and paused.postal_code == "1880012"
    assert paused.joined_on is None  # only an active supporter joins on the day
    assert all(s.joined_on is not None for s in imported if s.status == "active")
    entries = db.session.execute(select(SupporterChange.supporter_id, func.count())
                                 .group_by(SupporterChange.supporter_id)).all()
    assert sorted(entries) == [(s.id, 1) for s in imported]


def test_joining_dates_written_in_the_japanese_era_are_read_and_wrong_ones_named(
        client, coordinator):
    """令和8年4月1日, R8.4.1 as a spreadsheet shows it, 平成元年 … are dates; 平成31年5月1日
    (the first day of 令和) is none, and the row says so."""
    login_staff(client, coordinator)
    written = {"和暦 一": "令和6年4月1日", "和暦 二": "R5.10.2", "和暦 三": "平成元年1月8日",
               "和暦 四": "２０２３年１２月１日", "和暦 五": "平成31年5月1日"}
    rows = [f"個人,{name},われき,,,188-0012,南町1,田無小地区,郵送,活動中,{day}"
            for name, day in written.items()]
    review = upload(client, (HEADER + "\r\n".join(rows) + "\r\n").encode("cp932"))
    body = page_text(review)
    assert "登録できる行は 4 行、問題のある行は 1 行です。" in body
    assert "登録日「平成31年5月1日」は日付として読めません（例: 2026/04/01、令和8年4月1日）。" in body
    decide(client, review, "import")
    assert {s.name: s.joined_on.isoformat() for s in db.session.scalars(select(Supporter))} == {
        "和暦 一": "2024-04-01", "和暦 二": "2023-10-02", "和暦 三": "1989-01-08",
        "和暦 四": "2023-12-01"}


def test_a_joining_date_in_the_future_is_refused_by_the_import_and_the_form(client, coordinator):
    """2030/01/01 for 2020/01/01: a year mistyped is shown for correcting, not kept."""
    login_staff(client, coordinator)
    rows = [GOOD[0], "個人,未来 太郎,みらい たろう,,042-401-0009,188-0012,西東京市南町1-1,田無小地区,郵送,申込中,2030/01/01"]
    body = page_text(upload(client, (HEADER + "\r\n".join(rows) + "\r\n").encode("utf-8")))
    assert "登録できる行は 1 行、問題のある行は 1 行です。" in body
    assert "登録日が先の日付（2030年1月1日(火)）になっています。" in body
    response = post(client, "/staff/supporters/new", {
        "kind": "person", "name": "未来 太郎", "kana": "みらい たろう", "delivery": "post",
        "postal_code": "188-0012", "address": "西東京市南町1-1", "status": "active",
        "joined_via": "staff", "joined_on": "2030-01-01", "district_id": "0",
        "business_category_id": "0"})
    assert response.status_code == 200 and "登録日が先の日付" in page_text(response)
    assert "未来 太郎" in page_text(response)  # what was typed stays
    assert count() == 0


def test_a_long_file_shows_its_first_rows_and_counts_the_rest(client, coordinator):
    login_staff(client, coordinator)
    rows = [f"個人,問題 {n},もんだい,,,,,どこにもない地区,送付しない,活動中," for n in range(230)]
    rows += [f"個人,良い {n},よい,,042-402-{n:04d},,,田無小地区,送付しない,活動中," for n in range(205)]
    body = page_text(upload(client, (HEADER + "\r\n".join(rows)).encode("utf-8")))
    assert "全 435 行のうち、登録できる行は 205 行、問題のある行は 230 行です。" in body
    assert body.count("どこにもない地区") == 200 and "（最初の 200 行を表示）" in body
    assert "良い 199" in body and "良い 200" not in body
    response = decide(client, upload(client, (HEADER + "\r\n".join(rows)).encode("utf-8")),
                      "import")
    assert response.status_code == 302 and count() == 205


def test_someone_registered_after_the_dry_run_is_not_imported_twice(client, coordinator):
    login_staff(client, coordinator)
    review = upload(client, (HEADER + "\r\n".join(GOOD)).encode("utf-8"))
    assert "登録できる行は 2 行" in page_text(review)
    make_supporter(name="田無 一郎", kana="たなし いちろう", email="ichiro@example.jp",
                   delivery="email")  # a colleague typed him in meanwhile
    response = decide(client, review, "import")
    page = page_text(client.get(response.headers["Location"]))
    assert "1件を取り込みました。" in page
    assert "1件は、確認のあとに別の取込みや入力ですでに登録されていたため、取り込みませんでした。" in page
    assert count() == 2


def test_someone_typed_in_by_name_and_phone_after_the_dry_run_is_not_imported_twice(
        client, coordinator):
    login_staff(client, coordinator)
    review = upload(client, (HEADER + "\r\n".join(GOOD)).encode("utf-8"))
    # The same person as the second row, typed in full-width without the space meanwhile.
    make_supporter(name="保谷二郎", kana="ほうや じろう", phone="０４２－４０１－０００２",
                   delivery="post")
    response = decide(client, review, "import")
    assert "1件を取り込みました。" in page_text(client.get(response.headers["Location"]))
    assert count() == 2
    assert db.session.scalar(select(func.count(Supporter.id)).where(
        Supporter.email == "ichiro@example.jp")) == 1


def test_a_file_staged_by_the_previous_version_can_still_be_imported(client, coordinator):
    """Before 0014 a staged import kept the file's text; it is checked when next opened."""
    login_staff(client, coordinator)
    pending = SupporterImport(staff_id=coordinator.id, filename="old.csv", encoding="utf-8-sig",
                              content=HEADER + "\r\n".join(GOOD) + "\r\n")
    db.session.add(pending)
    db.session.commit()
    review = client.get(f"/staff/supporters/import/{pending.id}")
    assert "全 2 行のうち、登録できる行は 2 行" in page_text(review)
    decide(client, review, "import")
    assert count() == 2


def test_files_that_cannot_be_imported_say_why_and_keep_nothing(client, coordinator):
    login_staff(client, coordinator)
    body = page_text(upload(client, HEADER.encode("utf-8")))
    assert "見出しの行のほかに、取り込む行がありません。" in body
    huge = HEADER + "個人," + "あ" * 140_000 + ",あ,,,,,田無小地区,送付しない,活動中,\r\n"
    response = upload(client, huge.encode("utf-8"))
    assert response.status_code == 400 and "CSVファイルではないようです" in page_text(response)
    too_long = HEADER + "個人," + "長" * 120 + ",なが,,,,,田無小地区,送付しない,活動中,\r\n"
    body = page_text(upload(client, too_long.encode("utf-8")))
    assert "登録できる行は 0 行" in body and "100文字以内で入力してください。" in body
    kanji_mail = HEADER + "個人,山田 花子,やまだ はなこ,山田@example.jp,,,,田無小地区,メール,活動中,\r\n"
    body = page_text(upload(client, kanji_mail.encode("utf-8")))
    assert "登録できる行は 0 行" in body and "メールアドレスの形式が正しくありません" in body
    assert count() == 0
    assert db.session.scalar(select(func.count(SupporterImport.id))) == 2  # the two reviews shown


def test_an_import_is_seen_and_decided_only_by_who_uploaded_it(client, app, coordinator, admin):
    """The review names registered supporters, who may live outside a colleague's areas."""
    from app.accounts.services import create_staff
    from tests.conftest import PASSWORD
    colleague = create_staff("colleague@example.jp", "同僚 一人", PASSWORD, "coordinator",
                             area_ids=[coordinator.areas[0].id], actor=None)
    login_staff(client, coordinator)
    review = upload(client, (HEADER + "\r\n".join(GOOD)).encode("utf-8"))
    url, token = decision_form(review)
    other = app.test_client()
    login_staff(other, colleague)
    assert other.get(url).status_code == 302  # "already finished or cancelled"
    assert post(other, url, {"decision": "import", "import_token": token}).status_code == 302
    assert count() == 0
    boss = app.test_client()
    login_staff(boss, admin)
    assert boss.get(url).status_code == 200


def test_a_decision_left_open_in_another_tab_never_takes_a_newer_file(client, coordinator):
    """A finished import's number can come again for the next upload (SQLite reuses it): the
    review page's form names its own file, and an old one decides nothing about a new one."""
    login_staff(client, coordinator)
    first = upload(client, (HEADER + GOOD[0]).encode("utf-8"))
    old_url, old_token = decision_form(first)
    decide(client, first, "import")
    second = upload(client, (HEADER + GOOD[1]).encode("utf-8"))
    for decision in ("import", "discard"):  # the first file's page, still open in a tab
        gone = post(client, old_url, {"decision": decision, "import_token": old_token})
        assert "この取込みはすでに終わっているか" in page_text(client.get(gone.headers["Location"]))
    assert count() == 1
    done = decide(client, second, "import")  # its own page still decides it
    assert "1件を取り込みました。" in page_text(client.get(done.headers["Location"]))
    assert count() == 2


def test_import_pressed_twice_imports_once(client, coordinator):
    login_staff(client, coordinator)
    review = upload(client, (HEADER + "\r\n".join(GOOD)).encode("utf-8"))
    decide(client, review, "import")
    again = decide(client, review, "import")  # the page's button, sent a second time
    assert "この取込みはすでに終わっているか" in page_text(client.get(again.headers["Location"]))
    assert count() == 2


def test_an_undecided_import_is_forgotten_after_a_day(client, coordinator):
    from datetime import timedelta

    from app.dbtypes import utcnow
    from app.supporters.csvio import purge_stale_imports
    from app.supporters.models import SupporterImportRow
    login_staff(client, coordinator)
    upload(client, (HEADER + "\r\n".join(GOOD)).encode("utf-8"))
    upload(client, (HEADER + "\r\n".join(GOOD)).encode("utf-8"))
    first = db.session.scalar(select(SupporterImport).order_by(SupporterImport.id))
    first.created_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    assert purge_stale_imports(hours=24) == 1
    assert db.session.scalar(select(func.count(SupporterImport.id))) == 1
    assert db.session.scalar(select(func.count(SupporterImportRow.id))) == 2  # the other's rows


def test_the_review_shows_the_status_address_and_date_each_row_will_be_saved_with(
        client, coordinator):
    """What the preview says is what the import writes: an active supporter with no date
    joins today, one who has only applied (申込中) keeps no date, a date given is kept."""
    from app.formatting import format_date
    from app.supporters.records import today_tokyo
    login_staff(client, coordinator)
    rows = GOOD + ["個人,申込 三子,もうしこみ みつこ,,042-401-0003,188-0012,西東京市南町3-3,田無小地区,郵送,申込中,"]
    review = upload(client, (HEADER + "\r\n".join(rows) + "\r\n").encode("cp932"))
    page = page_text(review)

    def cells(name: str) -> list[str]:
        row = re.search(r"<tr>(?:(?!</tr>).)*" + name + r".*?</tr>", page, re.S).group(0)
        return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells("田無 一郎")[-2:] == ["活動中", format_date(date(2024, 4, 1))]
    assert cells("保谷 二郎")[-2:] == ["活動中", format_date(today_tokyo())]
    assert cells("申込 三子")[-2:] == ["申込中", "なし"]
    assert "〒188-0012 西東京市南町3-3" in cells("申込 三子")
    assert "ほかの状態なら登録日なしで登録します" in page
    decide(client, review, "import")
    saved = {s.name: s for s in db.session.scalars(select(Supporter))}
    assert saved["保谷 二郎"].joined_on == today_tokyo() and saved["申込 三子"].joined_on is None
    assert saved["申込 三子"].status == "applied" and saved["田無 一郎"].joined_on == date(2024, 4, 1)

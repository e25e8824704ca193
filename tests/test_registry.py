"""Applications, approval, staff edits with history, the supporter's own page, withdrawal."""
import pytest
from sqlalchemy import func, select

from app import actors
from app.audit.models import AuditEntry
from app.extensions import db
from app.supporters.models import Supporter, SupporterChange
from app.supporters.search import where_matches
from tests.conftest import district, login_staff, login_supporter, make_supporter, page_text, post

APPLICATION = {
    "name": "西東 花子", "kana": "にしとう はなこ", "email": "hanako@example.jp",
    "phone": "042-400-1234", "postal_code": "188-0012", "address": "西東京市南町1-2-3",
    "delivery": "both", "consent": "y",
}


def _apply(client, **changes):
    data = dict(APPLICATION, district_id=str(district("d02").id))
    data.update(changes)
    return post(client, "/apply", data)


def test_application_lands_as_applied_and_is_acknowledged(client, geography, mailbox):
    response = _apply(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/apply/thanks")
    supporter = db.session.scalar(select(Supporter))
    assert (supporter.status, supporter.joined_via, supporter.kind) == ("applied", "application",
                                                                      "person")
    assert supporter.consent_at is not None and supporter.consent_version
    assert [m["Subject"] for _r, m in mailbox] == ["ほっとネット推進員のお申込みを受け付けました"]


def test_application_errors_are_in_japanese_next_to_the_field_and_keep_input(client, geography):
    response = _apply(client, kana="Hanako", email="not-an-address", consent="")
    body = page_text(response)
    assert response.status_code == 200
    assert "ふりがなは、ひらがなかカタカナで入力してください。" in body
    assert "同意いただける場合はチェックしてください。" in body
    assert 'value="西東 花子"' in body and 'value="042-400-1234"' in body
    assert 'value="西東京市南町1-2-3"' in body
    assert db.session.scalar(select(func.count(Supporter.id))) == 0
    response = _apply(client, email="not-an-address")
    body = page_text(response)
    assert "メールアドレスの形式が正しくありません" in body
    assert 'id="email-error"' in body and 'aria-describedby="email-hint email-error"' in body


def test_an_address_typed_full_width_is_taken_as_the_address_it_is(client, geography, mailbox):
    """ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ, as a Japanese keyboard may type it, is hanako@example.jp;
    a name in kanji before the @ is still refused."""
    response = _apply(client, email="　ＨＡＮＡＫＯ＿１２＠ｅｘａｍｐｌｅ．ｊｐ ")
    assert response.status_code == 302
    assert db.session.scalar(select(Supporter.email)) == "HANAKO_12@example.jp"
    assert [r for r, _m in mailbox] == [["HANAKO_12@example.jp"]]
    body = page_text(_apply(client, email="花子＠example.jp", name="二人目 花子"))
    assert "メールアドレスの形式が正しくありません" in body


def test_email_delivery_needs_an_address(client, geography):
    body = page_text(_apply(client, email="", delivery="email"))
    assert "メールで受け取るには、メールアドレスが必要です。" in body


def test_business_application(client, geography, mailbox):
    from app.supporters.services import list_categories
    category = list_categories()[1]
    response = post(client, "/apply/business", {
        "business_name": "ひばりクリーン", "business_kana": "ひばりくりーん",
        "business_category_id": str(category.id), "contact_person": "清掃 一郎",
        "phone": "042-400-2222", "postal_code": "202-0001", "address": "西東京市ひばりが丘1-1",
        "district_id": str(district("d11").id), "delivery": "post", "consent": "y"})
    assert response.status_code == 302
    supporter = db.session.scalar(select(Supporter))
    assert (supporter.kind, supporter.business_name, supporter.business_category_id) == (
        "business", "ひばりクリーン", category.id)
    assert mailbox == []  # no address given, no mail


def test_staff_approve_and_the_applicant_is_told(client, admin, mailbox):
    _apply(client)
    supporter = db.session.scalar(select(Supporter))
    login_staff(client, admin)
    mailbox.clear()
    response = post(client, f"/staff/supporters/{supporter.id}/approve")
    assert response.status_code == 302
    db.session.refresh(supporter)
    assert supporter.status == "active" and supporter.joined_on is not None
    (recipients, message), = mailbox
    assert recipients == ["hanako@example.jp"]
    assert message["Subject"] == "ほっとネット推進員に登録しました"
    assert "西東 花子 様" in message.get_body(("plain",)).get_content()
    body = page_text(client.get(f"/staff/supporters/{supporter.id}"))
    assert "承認" in body and "申込中 → 活動中" in body


def test_staff_decline_tells_the_applicant_and_erases_the_application(client, admin, mailbox):
    _apply(client)
    supporter = db.session.scalar(select(Supporter))
    login_staff(client, admin)
    mailbox.clear()
    post(client, f"/staff/supporters/{supporter.id}/decline")
    (recipients, message), = mailbox
    assert recipients == ["hanako@example.jp"] and "見送" in message.get_body(("plain",)).get_content()
    db.session.refresh(supporter)
    assert supporter.status == "declined"
    assert (supporter.name, supporter.email, supporter.phone, supporter.address) == ("", None, "", "")


def test_staff_edit_is_recorded_in_history(client, coordinator):
    supporter = make_supporter(phone="042-400-0000", notes="玄関の鍵が固い")
    login_staff(client, coordinator)
    form = page_text(client.get(f"/staff/supporters/{supporter.id}/edit"))
    assert 'value="042-400-0000"' in form
    response = post(client, f"/staff/supporters/{supporter.id}/edit", {
        "kind": "person", "name": "山田 太郎", "kana": "やまだ たろう", "phone": "042-499-9999",
        "postal_code": "188-0012", "address": "西東京市南町1-1-1",
        "district_id": str(district("d03").id), "delivery": "post", "status": "paused",
        "joined_via": "staff", "business_category_id": "0", "notes": "別のメモ"})
    assert response.status_code == 302
    entry = db.session.scalar(select(SupporterChange).where(SupporterChange.action == "updated"))
    assert entry.actor == "調整 花子" and entry.staff_id == coordinator.id
    assert entry.changes["phone"] == ["042-400-0000", "042-499-9999"]
    assert entry.changes["status"] == ["active", "paused"]
    assert entry.changes["district_id"][1].startswith("谷戸第二小地区")
    assert entry.changes["notes"] == ["…", "…"]  # note text is not copied into the history
    body = page_text(client.get(f"/staff/supporters/{supporter.id}"))
    assert "電話番号: 042-400-0000 → 042-499-9999" in body and "活動中 → 休止中" in body


def test_staff_edit_error_keeps_everything_typed(client, coordinator):
    supporter = make_supporter()
    login_staff(client, coordinator)
    response = post(client, f"/staff/supporters/{supporter.id}/edit", {
        "kind": "person", "name": "山田 太郎", "kana": "やまだ たろう", "phone": "12",
        "postal_code": "188-0012", "address": "新しい住所 9-9", "district_id": "0",
        "delivery": "post", "status": "active", "joined_via": "staff",
        "business_category_id": "0", "notes": "新しいメモ"})
    body = page_text(response)
    assert "電話番号は市外局番から10〜11桁" in body
    assert 'value="新しい住所 9-9"' in body and "新しいメモ" in body
    db.session.refresh(supporter)
    assert supporter.address == "西東京市南町1-1-1"


def test_staff_registers_a_supporter_and_duplicate_email_is_refused(client, coordinator):
    make_supporter(email="dup@example.jp", delivery="email")
    login_staff(client, coordinator)
    data = {"kind": "person", "name": "別人 次郎", "kana": "べつじん じろう", "email": "DUP@example.jp",
            "delivery": "email", "status": "active", "joined_via": "staff",
            "district_id": str(district("d05").id), "business_category_id": "0"}
    body = page_text(post(client, "/staff/supporters/new", data))
    assert "このメールアドレスはすでに登録されています（山田 太郎）" in body
    response = post(client, "/staff/supporters/new", dict(data, email="jiro@example.jp"))
    assert response.status_code == 302
    created = db.session.scalar(select(Supporter).where(Supporter.email == "jiro@example.jp"))
    assert created.joined_on is not None and created.sort_key.endswith("べつじんじろう")


def test_viewing_a_record_is_audited(client, coordinator):
    supporter = make_supporter()
    login_staff(client, coordinator)
    client.get(f"/staff/supporters/{supporter.id}")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "supporter.view"))
    assert entry.staff_id == coordinator.id and entry.target_id == supporter.id
    assert "調整 花子" in entry.actor


def test_admin_reads_the_audit_log(client, admin):
    supporter = make_supporter()
    login_staff(client, admin)
    client.get(f"/staff/supporters/{supporter.id}")
    body = page_text(client.get("/admin/audit"))
    assert "推進員の記録を見た" in body and f"推進員 #{supporter.id}" in body


def test_supporter_edits_own_contact_details(client, geography, mailbox):
    supporter = make_supporter(email="me@example.jp", delivery="email")
    login_supporter(client, supporter, mailbox)
    page = page_text(client.get("/me"))
    assert 'value="me@example.jp"' in page and "職員メモ" not in page
    response = post(client, "/me", {"email": "me@example.jp", "phone": "042-411-2233",
                                    "postal_code": "188-0012", "address": "西東京市南町2-2-2",
                                    "district_id": str(district("d01").id), "delivery": "both"})
    assert response.status_code == 302
    db.session.refresh(supporter)
    assert (supporter.phone, supporter.delivery) == ("042-411-2233", "both")
    entry = db.session.scalar(select(SupporterChange).where(SupporterChange.action == "updated"))
    # Stored as a code; shown to staff in their language.
    assert (entry.actor_kind, entry.actor) == ("self", "")
    assert actors.label(entry.actor_kind, entry.actor) == "本人"


def test_supporter_cannot_choose_email_delivery_without_address(client, geography, mailbox):
    supporter = make_supporter(email="me@example.jp", delivery="email")
    login_supporter(client, supporter, mailbox)
    body = page_text(post(client, "/me", {"email": "", "phone": "", "postal_code": "",
                                          "address": "", "district_id": "0",
                                          "delivery": "email"}))
    assert "メールで受け取るには、メールアドレスが必要です。" in body
    db.session.refresh(supporter)
    assert supporter.email == "me@example.jp"


def test_withdrawal_asks_first_then_erases_personal_data(client, geography, mailbox):
    supporter = make_supporter(email="bye@example.jp", delivery="email", phone="042-400-7777",
                               notes="家族の事情")
    supporter_id = supporter.id
    login_supporter(client, supporter, mailbox)
    confirm = client.get("/me/withdraw")
    assert "本当に退会しますか" in page_text(confirm)
    db.session.expire_all()
    assert db.session.get(Supporter, supporter_id).status == "active"  # nothing happened yet
    response = post(client, "/me/withdraw", follow_redirects=True)
    assert "退会しました" in page_text(response)
    db.session.expire_all()
    gone = db.session.get(Supporter, supporter_id)
    assert gone.status == "withdrawn" and gone.withdrawn_at is not None
    assert (gone.name, gone.kana, gone.email, gone.phone, gone.address, gone.notes) == (
        "", "", None, "", "", "")
    assert gone.district_id is not None  # anonymous counts per district survive
    # Nothing finds them any more: their terms are gone from the search index too.
    assert gone.search_terms == ""
    for typed in ("7777", "0424007777", "bye@example.jp"):
        assert supporter_id not in db.session.scalars(where_matches(select(Supporter.id), typed)).all()
    for entry in db.session.scalars(select(SupporterChange)
                                    .where(SupporterChange.supporter_id == supporter_id)):
        assert "042-400-7777" not in str(entry.changes)
    assert client.get("/me").status_code == 302  # signed out
    post(client, "/login/link", {"email": "bye@example.jp"})
    assert len([m for r, m in mailbox if "bye@example.jp" in r]) == 1  # no new link


def test_staff_withdraws_a_supporter_after_confirming(client, coordinator):
    supporter = make_supporter(email="staffgone@example.jp", delivery="email")
    login_staff(client, coordinator)
    confirm = page_text(client.get(f"/staff/supporters/{supporter.id}/withdraw"))
    assert "山田 太郎 さんの退会手続きをします。" in confirm
    db.session.refresh(supporter)
    assert supporter.status == "active"
    response = post(client, f"/staff/supporters/{supporter.id}/withdraw")
    assert response.status_code == 302
    db.session.refresh(supporter)
    assert supporter.status == "withdrawn" and supporter.email is None
    body = page_text(client.get(f"/staff/supporters/{supporter.id}"))
    assert f"（退会済み #{supporter.id}）" in body and "編集する" not in body
    assert client.get(f"/staff/supporters/{supporter.id}/edit").status_code == 404
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "supporter.withdraw"))
    assert entry.staff_id == coordinator.id


def test_only_applications_can_be_approved(client, coordinator, mailbox):
    supporter = make_supporter(email="active@example.jp", delivery="email")
    login_staff(client, coordinator)
    response = post(client, f"/staff/supporters/{supporter.id}/approve", follow_redirects=True)
    assert "申込中の方だけ承認できます。" in page_text(response)
    assert mailbox == []


@pytest.mark.parametrize("typed", ["０４２ー１２３ー４５６７", "042ｰ123ｰ4567", "042−123−4567",
                                   "042‐123‐4567", "０４２－１２３－４５６７"])
def test_a_phone_typed_with_the_long_vowel_mark_or_a_dash_is_kept_with_hyphens(app, geography,
                                                                                typed):
    """A Japanese keyboard's 「ー」 (and the other dashes people type) between the parts of a
    phone number: the number is kept as 042-123-4567, found, and dialled."""
    supporter = make_supporter(phone=typed)
    assert supporter.phone == "042-123-4567"


@pytest.mark.parametrize("typed", ["042-123-4567（自宅）", "042-123-4567 ext", "abcdefghij"])
def test_a_phone_with_words_beside_it_is_refused_with_a_reason(app, geography, typed):
    from app.errors import InvalidInput
    with pytest.raises(InvalidInput) as refused:
        make_supporter(phone=typed)
    assert refused.value.problems["phone"] == \
        "電話番号は数字とハイフン（-）だけで入力してください（例: 042-123-4567）。"

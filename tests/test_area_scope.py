"""Need to know: a coordinator sees personal data only of the areas the account serves
(issue 9), on both databases. Colleagues still see that another area's concern exists."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import StaffCover
from app.accounts.services import create_staff
from app.concerns import services as concerns
from app.concerns.models import ConcernCategory
from app.extensions import db
from app.formatting import today_tokyo
from tests.conftest import PASSWORD, csrf, district, login_staff, make_supporter, page_text, post

SECRET = "二階の窓が割れたまま"


@pytest.fixture
def world(coordinator, admin):
    """A 中部 coordinator, a concern and a supporter in 南部 (d20), one of each at home."""
    category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
    away = concerns.submit_concern({
        "category_id": category.id, "body": SECRET, "district_id": district("d20").id,
        "urgency": "normal", "reporter_name": "遠方 報告者", "reporter_email": "far@example.jp",
        "place": "南の公園"})
    home = concerns.submit_concern({
        "category_id": category.id, "body": "近所のこと", "district_id": district("d01").id,
        "urgency": "normal", "reporter_name": "近所 報告者"})
    far = make_supporter(name="南部 住人", kana="なんぶ じゅうにん", phone="042-999-0001",
                         district_id=district("d20").id)
    near = make_supporter(name="中部 住人", kana="ちゅうぶ じゅうにん", phone="042-999-0002")
    return {"away": away, "home": home, "far": far, "near": near, "admin": admin,
            "coordinator": coordinator}


def test_another_areas_concern_shows_only_that_it_exists(client, world):
    login_staff(client, world["coordinator"])
    away = world["away"]
    page = page_text(client.get(f"/staff/concerns/{away.id}"))
    assert away.reference in page and "担当する圏域の外の記録です" in page
    assert SECRET not in page and "far@example.jp" not in page and "遠方 報告者" not in page
    home = page_text(client.get(f"/staff/concerns/{world['home'].id}"))
    assert "近所のこと" in home and "近所 報告者" in home
    # Nothing can be done to it, and its photo and text stay out of reach.
    assert client.get(f"/staff/concerns/{away.id}/photo").status_code == 403
    for action, data in (("note", {"body": "x"}), ("message", {"body": "x"}),
                         ("status", {"status": "acknowledged"}), ("assign", {"assignee_id": "0"}),
                         ("link", {"reference": world["home"].reference})):
        assert post(client, f"/staff/concerns/{away.id}/{action}", data).status_code == 403


def test_lists_searches_and_exports_follow_the_scope(client, world):
    login_staff(client, world["coordinator"])
    listing = page_text(client.get("/staff/concerns?area=all"))
    assert world["away"].reference in listing and "（担当外）" in listing
    assert world["away"].reference not in page_text(client.get("/staff/concerns?area=all&q=割れた"))
    exported = client.get("/staff/concerns/export.csv?area=all").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(exported.lstrip("\ufeff"))))
    assert [r[0] for r in rows[1:]] == [world["home"].reference]
    assert SECRET not in exported
    people = page_text(client.get("/staff/supporters"))
    assert "中部 住人" in people and "南部 住人" not in people
    found = page_text(client.get("/staff/supporters?q=042-999"))
    assert "中部 住人" in found and "南部 住人" not in found and "該当 1 件" in found
    assert "南部 住人" not in client.get("/staff/supporters/export.csv").get_data(as_text=True)
    assert client.get(f"/staff/supporters/{world['far'].id}").status_code == 403
    assert client.get(f"/staff/supporters/{world['far'].id}/edit").status_code == 403
    assert client.get(f"/staff/supporters/{world['near'].id}").status_code == 200


def test_an_admin_and_an_all_areas_account_see_everything(client, world):
    login_staff(client, world["admin"])
    assert SECRET in page_text(client.get(f"/staff/concerns/{world['away'].id}"))
    post(client, "/logout")
    lead = create_staff("lead@example.jp", "長 ステーション", PASSWORD, "coordinator",
                        all_areas=True, actor=None)
    login_staff(client, lead)
    assert SECRET in page_text(client.get(f"/staff/concerns/{world['away'].id}"))
    assert "南部 住人" in page_text(client.get("/staff/supporters"))


def test_temporary_cover_opens_an_area_until_its_day(client, world):
    admin, coordinator, away = world["admin"], world["coordinator"], world["away"]
    login_staff(client, admin)
    response = post(client, f"/admin/staff/{coordinator.id}/cover", {
        "area_id": str(district("d20").area_id), "until": "2000-01-01"})
    assert response.status_code == 400 and "今日以降" in page_text(response)
    response = post(client, f"/admin/staff/{coordinator.id}/cover", {
        "area_id": str(district("d20").area_id),
        "until": (today_tokyo() + timedelta(days=7)).isoformat()})
    assert response.status_code == 302
    post(client, "/logout")
    login_staff(client, coordinator)
    assert SECRET in page_text(client.get(f"/staff/concerns/{away.id}"))
    assert "南部 住人" in page_text(client.get("/staff/supporters"))
    # The day after the cover ends, the area is closed again.
    cover = db.session.scalar(select(StaffCover))
    cover.until = today_tokyo() - timedelta(days=1)
    db.session.commit()
    assert SECRET not in page_text(client.get(f"/staff/concerns/{away.id}"))


def test_roster_and_labels_show_contacts_only_within_the_scope(client, world):
    from app.trainings import services as trainings
    from tests.test_trainings import make_session
    far, near = world["far"], world["near"]
    session = make_session(capacity=5)
    trainings.sign_up(session.id, far, via="staff", actor=None)
    trainings.sign_up(session.id, near, via="staff", actor=None)
    login_staff(client, world["coordinator"])
    roster = page_text(client.get(f"/staff/trainings/sessions/{session.id}/roster"))
    assert "南部 住人" in roster and "042-999-0001" not in roster and "042-999-0002" in roster
    response = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "", "title": "題", "subject": "件名", "body_md": "本文",
        "area_id": "0", "district_id": "0", "kind": "", "category_id": "0", "training_id": "0"})
    labels = page_text(client.get(response.headers["Location"] + "/labels"))
    assert "中部 住人" in labels and "南部 住人" not in labels
    assert "担当する圏域の外の 1 人分は含まれていません" in labels
    csrf(client)


def test_a_supporter_saved_outside_ones_areas_is_handed_over_with_a_word(client, world):
    """A coordinator may place a supporter in another area's district (a newcomer from the
    south, someone who moved): saved, the list says who looks after them now, instead of a
    page saying the record may not be seen; a double click does the same."""
    from app.supporters.models import Supporter
    from tests.test_daily_use import _key_of
    login_staff(client, world["coordinator"])
    data = {"kind": "person", "name": "転居 先子", "kana": "てんきょ さきこ", "delivery": "none",
            "status": "active", "joined_via": "staff", "district_id": str(district("d20").id),
            "business_category_id": "0",
            "submission_key": _key_of(client, "/staff/supporters/new"), "csrf_token": csrf(client)}
    south = district("d20").area.label
    response = post(client, "/staff/supporters/new", data)
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/supporters")
    body = page_text(client.get("/staff/supporters"))
    assert f"推進員を登録しました。「転居 先子」は{south}の地区のため、これからはその圏域の担当者が扱います" in body
    # The same form again (a double click): the list again, not a page that may not be seen.
    response = post(client, "/staff/supporters/new", data)
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/supporters")
    assert db.session.scalar(select(db.func.count()).select_from(Supporter)
                             .where(Supporter.name == "転居 先子")) == 1
    # Moving one of one's own to the south hands them over the same way.
    near = world["near"]
    page = client.get(f"/staff/supporters/{near.id}/edit")
    assert page.status_code == 200
    response = post(client, f"/staff/supporters/{near.id}/edit", {
        "kind": "person", "name": near.name, "kana": near.kana, "delivery": "none",
        "status": "active", "joined_via": "staff", "phone": near.phone,
        "district_id": str(district("d20").id), "business_category_id": "0"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/supporters")
    assert f"変更を保存しました。「中部 住人」は{south}の地区のため" in page_text(client.get("/staff/supporters"))
    assert client.get(f"/staff/supporters/{near.id}").status_code == 403

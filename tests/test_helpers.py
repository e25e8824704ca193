"""Who can help nearby (issue 15, part 4): supporters say what they can do; staff ask the
nearest; the supporter answers by the mailed link or on their page — and reads nothing of
the concern beyond what staff wrote."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.concerns import services as concerns
from app.concerns.models import HelpRequest
from app.extensions import db
from tests.conftest import (
    district,
    login_staff,
    login_supporter,
    mails_to,
    make_supporter,
    page_text,
    post,
    text_of,
)


def concern_in(code: str = "d01"):
    category = concerns.list_categories()[0]
    return concerns.submit_concern({"category_id": category.id, "body": "一人暮らしの田中さんの新聞がたまっている",
                                    "district_id": district(code).id, "urgency": "normal",
                                    "address": "西東京市北原町1-2-3"})


_made = iter(range(1000))


def helper(name: str, code: str, can_help=("watch",), **values):
    person = make_supporter(name=name, kana="きょうりょく", email=f"h{next(_made)}@example.jp",
                            delivery="email", district_id=district(code).id, **values)
    person.can_help = list(can_help)
    db.session.commit()
    return person


def test_supporters_say_what_they_can_do_on_their_page(client, geography, mailbox):
    person = make_supporter(email="me@example.jp", delivery="email")
    login_supporter(client, person, mailbox)
    response = post(client, "/me", {"email": "me@example.jp", "phone": "", "postal_code": "188-0012",
                                    "address": "西東京市南町1-1-1",
                                    "district_id": str(district("d01").id), "delivery": "email",
                                    "can_help": ["talk", "watch"], "help_times": "平日の午前"})
    assert response.status_code == 302
    db.session.refresh(person)
    assert person.can_help == ["watch", "talk"] and person.help_times == "平日の午前"
    page = page_text(client.get("/me"))
    assert re.search(r'value="watch"\s+checked|checked[^>]*value="watch"', page)


def test_the_nearest_who_can_do_it_come_first(client, coordinator):
    concern = concern_in("d01")
    same_district = helper("同じ 地区", "d01")
    same_area = helper("同じ 圏域", "d02")
    other_area = helper("ほかの 圏域", "d16")
    cannot = helper("できない 人", "d01", can_help=("talk",))
    suggested = concerns.suggest_helpers(concern, "watch")
    assert suggested[:2] == [same_district, same_area]
    assert other_area not in suggested and cannot not in suggested
    # Someone asked recently is not asked again for a while.
    concerns.ask_for_help(concern, same_district.id, "watch", "声かけをお願いします", actor=coordinator)
    assert same_district not in concerns.suggest_helpers(concern_in("d01"), "watch")
    login_staff(client, coordinator)
    page = page_text(client.get(f"/staff/concerns/{concern.id}?need=watch"))
    assert same_area.display_name in page and other_area.display_name not in page


def test_the_helper_reads_only_what_staff_wrote_and_answers_by_the_link(client, coordinator,
                                                                         mailbox):
    concern = concern_in("d01")
    concerns.assign(concern, coordinator.id, actor=coordinator)
    person = helper("協力 花子", "d01")
    login_staff(client, coordinator)
    refused = post(client, f"/staff/concerns/{concern.id}/help",
                   {"need": "watch", "supporter_id": str(person.id), "message": ""})
    assert refused.status_code == 400 and "お願いする内容を書いてください" in page_text(refused)
    done = post(client, f"/staff/concerns/{concern.id}/help", {
        "need": "watch", "supporter_id": str(person.id),
        "message": "北原公園の東のお宅に、週に一度声をかけていただけませんか。"})
    assert done.status_code == 302
    [mail] = mails_to(mailbox, person.email)
    body = text_of(mail)
    assert "週に一度声をかけていただけませんか" in body
    for secret in ("田中", "西東京市北原町1-2-3", concern.reference, "新聞"):
        assert secret not in body and secret not in str(mail["Subject"])
    link = re.search(r"https?://\S+/help/\S+", body).group(0)
    anonymous = client.application.test_client()
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = page_text(anonymous.get("/" + path))
    assert "週に一度" in page and "田中" not in page
    request = db.session.scalar(select(HelpRequest))
    assert request.status == "asked"  # a GET never answers
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert anonymous.post("/" + path, data={"csrf_token": csrf, "answer": "accept"}).status_code == 302
    db.session.refresh(request)
    assert request.status == "accepted"
    steps = [(e.status_from, e.status_to) for e in concerns.timeline(concern) if e.kind == "help"]
    assert steps == [("", "asked"), ("asked", "accepted")]
    [told] = [m for m in mails_to(mailbox, coordinator.email) if "返事" in str(m["Subject"])]
    assert "引き受け" in text_of(told)
    assert anonymous.get("/help/forged-token").status_code == 404


def test_the_helper_answers_on_their_page_and_withdrawal_ends_it(client, coordinator, mailbox):
    concern = concern_in("d01")
    person = helper("協力 次郎", "d01")
    concerns.ask_for_help(concern, person.id, "watch", "声かけのお願い", actor=coordinator)
    login_supporter(client, person, mailbox)
    page = page_text(client.get("/me"))
    assert "声かけのお願い" in page and "引き受ける" in page
    request = db.session.scalar(select(HelpRequest))
    assert post(client, f"/me/help/{request.id}", {"answer": "decline"}).status_code == 302
    db.session.refresh(request)
    assert request.status == "declined"
    from app.supporters.services import withdraw
    other = helper("協力 三郎", "d01")
    concerns.ask_for_help(concern_in("d01"), other.id, "watch", "お願いの文", actor=coordinator)
    withdraw(other, actor=None)
    gone = db.session.scalar(select(HelpRequest).where(HelpRequest.supporter_id == other.id))
    assert (gone.status, gone.message) == ("withdrawn", "")

"""Trainings: sessions, sign-ups, deadlines, the waitlist and its promotions, calendar files,
reminders, attendance, and the pages around them (both databases, real SMTP)."""
from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from app.dbtypes import utcnow
from app.errors import InvalidInput, InvalidState
from app.extensions import db
from app.formatting import TOKYO, today_tokyo
from app.outbox.models import OutboxMessage
from app.supporters.models import Supporter
from app.trainings import services
from app.trainings.models import Registration, TrainingSession
from tests.conftest import login_staff, login_supporter, mails_to, make_supporter, page_text, post, text_of


def make_session(capacity: int = 2, days: int = 10, kind: str = "communication",
                 published: bool = True, **values) -> TrainingSession:
    training = services.save_training(None, {"title": "コミュニケーション研修（冬）", "kind": kind,
                                             "description": "聴くこと・つなぐこと",
                                             "published": published}, actor=None)
    data = {"day": today_tokyo() + timedelta(days=days), "start_time": time(13, 30),
            "end_time": time(15, 30), "station_id": None, "venue_name": "田無公民館",
            "venue_address": "西東京市南町5-6-18", "capacity": capacity, "notes": "筆記用具"}
    data.update(values)
    return services.add_session(training, data, actor=None)


def person(n: int, **values) -> Supporter:
    data = {"name": f"参加 {n:03d}", "kana": "さんか", "email": f"p{n:03d}@example.jp",
            "delivery": "email", "phone": f"042-000-{n:04d}"}
    data.update(values)
    return make_supporter(**data)


def held(session) -> None:
    """The session takes place: it started an hour ago (marks are allowed from its day on)."""
    from datetime import datetime, timezone
    started = datetime.now(timezone.utc) - timedelta(hours=1)
    session.starts_at, session.ends_at = started, started + timedelta(hours=2)
    db.session.commit()


def ics_of(message) -> Calendar:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    return Calendar.from_ical(part.get_payload(decode=True))


@pytest.fixture
def session(geography):
    return make_session()


def test_sign_up_confirms_and_mails_a_calendar_file_in_japan_time(session, mailbox):
    someone = person(1)
    registration = services.sign_up(session.id, someone, actor=None)
    assert registration.status == "confirmed"
    db.session.refresh(session)
    assert session.confirmed == 1 and session.seats_left == 1
    [mail] = mails_to(mailbox, someone.email)
    assert "コミュニケーション研修（冬）" in text_of(mail) and "田無公民館" in text_of(mail)
    [event] = ics_of(mail).walk("VEVENT")
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    day = today_tokyo() + timedelta(days=10)
    assert start == datetime.combine(day, time(13, 30), tzinfo=TOKYO)
    assert str(start.tzinfo) == "Asia/Tokyo" and end - start == timedelta(hours=2)
    assert start.astimezone(TOKYO).hour == 13
    assert "田無公民館" in str(event["location"]) and "南町5-6-18" in str(event["location"])
    assert ics_of(mail).walk("VTIMEZONE")  # the zone travels with the file


def test_once_per_session_and_full_sessions_waitlist_in_order(session, mailbox):
    a, b, c, d = person(1), person(2), person(3), person(4)
    services.sign_up(session.id, a, actor=None)
    services.sign_up(session.id, b, actor=None)
    with pytest.raises(InvalidState, match="すでに申し込んでいます"):
        services.sign_up(session.id, a, actor=None)
    assert services.sign_up(session.id, c, actor=None).status == "waitlisted"
    assert services.sign_up(session.id, d, actor=None).status == "waitlisted"
    assert "キャンセル待ち" in text_of(mails_to(mailbox, c.email)[0])
    assert [r.supporter_id for r in services.waitlist(session)] == [c.id, d.id]

    mailbox.clear()
    services.cancel(db.session.scalar(select(Registration.id).where(
        Registration.supporter_id == b.id)), actor=b)
    statuses = {r.supporter_id: r.status for r in db.session.scalars(select(Registration))}
    assert statuses == {a.id: "confirmed", b.id: "cancelled", c.id: "confirmed", d.id: "waitlisted"}
    db.session.refresh(session)
    assert session.confirmed == 2
    [promotion] = mails_to(mailbox, c.email)
    assert "繰り上がり" in text_of(promotion) and ics_of(promotion).walk("VEVENT")
    assert len(mails_to(mailbox, b.email)) == 1  # b's cancellation notice
    assert mails_to(mailbox, d.email) == []


def test_signing_up_again_after_cancelling_goes_to_the_back(session):
    a, b, c = person(1), person(2), person(3)
    for someone in (a, b, c):
        services.sign_up(session.id, someone, actor=None)
    first = db.session.scalar(select(Registration).where(Registration.supporter_id == a.id))
    services.cancel(first.id, actor=a)  # c is promoted
    again = services.sign_up(session.id, a, actor=None)
    assert again.id == first.id and again.status == "waitlisted"


def test_raising_capacity_promotes_and_lowering_below_confirmed_is_refused(session, mailbox):
    people = [person(n) for n in range(4)]
    for someone in people:
        services.sign_up(session.id, someone, actor=None)
    form = {"day": today_tokyo() + timedelta(days=10), "start_time": time(13, 30),
            "end_time": time(15, 30), "venue_name": "田無公民館", "capacity": 3}
    services.change_session(session.id, form, actor=None)
    assert [r.status for r in services.registrations(session)].count("confirmed") == 3
    with pytest.raises(InvalidInput, match="3 人より少なくはできません"):
        services.change_session(session.id, dict(form, capacity=1), actor=None)


def test_deadlines_bind_supporters_but_staff_take_phone_sign_ups(geography, mailbox):
    late = make_session(days=1)  # signing up closed two days before
    someone = person(1)
    with pytest.raises(InvalidState, match="申込みの締切"):
        services.sign_up(late.id, someone, actor=None)
    registration = services.sign_up(late.id, someone, via="staff", actor=None)
    assert registration.status == "confirmed"
    late.cancel_deadline = utcnow() - timedelta(hours=1)
    db.session.commit()
    with pytest.raises(InvalidState, match="取消しの締切"):
        services.cancel(registration.id, actor=someone)
    assert services.cancel(registration.id, actor=None).status == "cancelled"  # staff, by phone


def test_the_database_refuses_more_confirmed_than_seats(session):
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE training_session SET confirmed = 3 WHERE id = :id"),
                           {"id": session.id})
        db.session.commit()
    db.session.rollback()
    services.sign_up(session.id, person(1), actor=None)
    services.sign_up(session.id, person(2), actor=None)
    with pytest.raises(IntegrityError):
        db.session.add(Registration(session_id=session.id, supporter_id=person(3).id,
                                    status="confirmed"))
        db.session.execute(text("UPDATE training_session SET confirmed = confirmed + 1 "
                                "WHERE id = :id"), {"id": session.id})
        db.session.commit()
    db.session.rollback()


def test_reminder_goes_once_and_again_after_a_refusal(geography, mailbox, smtp_plan, app):
    soon, later = make_session(days=1), make_session(days=10)
    a, b, c = person(1), person(2), person(3)
    services.sign_up(soon.id, a, via="staff", actor=None)
    services.sign_up(soon.id, b, via="staff", actor=None)
    services.sign_up(later.id, c, actor=None)
    mailbox.clear()
    smtp_plan[b.email] = ["451"]
    app.config["HOTNET_SEND_RETRY_SECONDS"] = 600
    assert services.send_reminders() == 2  # queued once each
    assert services.send_reminders() == 0
    assert len(mails_to(mailbox, a.email)) == 1
    assert mails_to(mailbox, b.email) == []  # the server said 451: the outbox retries later
    db.session.execute(update(OutboxMessage).where(OutboxMessage.recipient == b.email)
                       .values(next_attempt_at=utcnow()))
    db.session.commit()
    assert len(mails_to(mailbox, b.email)) == 1  # b, once the server takes it
    assert mails_to(mailbox, c.email) == []  # ten days away
    app.config["HOTNET_TRAINING_REMINDER_DAYS"] = 11
    assert services.send_reminders() == 1 and len(mails_to(mailbox, c.email)) == 1


def test_changed_and_cancelled_sessions_tell_everyone(session, mailbox):
    a, b, c = person(1), person(2), person(3)
    for someone in (a, b, c):
        services.sign_up(session.id, someone, actor=None)
    mailbox.clear()
    services.change_session(session.id, {
        "day": today_tokyo() + timedelta(days=11), "start_time": time(10, 0),
        "end_time": time(12, 0), "venue_name": "保谷こもれびホール", "capacity": 2}, actor=None)
    for someone in (a, b, c):
        [notice] = mails_to(mailbox, someone.email)
        assert "保谷こもれびホール" in text_of(notice)
    mailbox.clear()
    assert services.cancel_session(session.id, actor=None) == 3
    for someone in (a, b, c):
        [notice] = mails_to(mailbox, someone.email)
        assert "中止" in text_of(notice)
        assert str(ics_of(notice).walk("VEVENT")[0]["status"]) == "CANCELLED"
    db.session.refresh(session)
    assert session.confirmed == 0
    with pytest.raises(InvalidState):
        services.sign_up(session.id, person(4), actor=None)


def test_attending_a_registration_training_activates_an_applicant(client, coordinator, mailbox):
    session = make_session(kind="registration")
    applicant = person(1, status="applied")
    registration = services.sign_up(session.id, applicant, actor=None)
    login_staff(client, coordinator)
    roster = client.get(f"/staff/trainings/sessions/{session.id}/roster")
    assert "参加 001" in page_text(roster) and "□" in page_text(roster)
    from app.audit.models import AuditEntry
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "training.roster")
                             ).staff_id == coordinator.id
    response = post(client, f"/staff/trainings/sessions/{session.id}/attendance",
                    {f"attendance-{registration.id}": "attended"}, follow_redirects=True)
    assert "開催日" in page_text(response)  # ten days early: not yet
    db.session.refresh(applicant)
    assert applicant.status == "applied"
    held(session)
    post(client, f"/staff/trainings/sessions/{session.id}/attendance",
         {f"attendance-{registration.id}": "attended"})
    db.session.refresh(applicant)
    day = session.starts_at.astimezone(TOKYO).date()  # the session's day (yesterday just after midnight)
    assert applicant.status == "active" and applicant.registration_training_on == day
    record = page_text(client.get(f"/staff/supporters/{applicant.id}"))
    assert "研修の記録" in record and "コミュニケーション研修（冬）" in record and "出席" in record


def test_no_show_changes_nothing_on_the_record(geography):
    session = make_session(kind="registration")
    applicant = person(1, status="applied")
    registration = services.sign_up(session.id, applicant, actor=None)
    held(session)
    services.mark_attendance(registration.id, "no_show", actor=None)
    db.session.refresh(applicant)
    assert applicant.status == "applied" and applicant.registration_training_on is None


def test_a_visitor_signs_up_for_the_registration_training_and_applies(client, geography, mailbox):
    session = make_session(kind="registration")
    other = make_session(kind="communication")
    assert client.get(f"/trainings/{other.id}/visitor").status_code == 404
    response = post(client, f"/trainings/{session.id}/visitor", {
        "name": "新人 花子", "kana": "しんじん はなこ", "email": "new@example.jp",
        "phone": "042-123-4567", "postal_code": "188-0012", "address": "西東京市南町1-1-1",
        "district_id": "0", "delivery": "email", "consent": "y"})
    assert response.status_code == 302
    response = client.get(response.headers["Location"])
    assert response.status_code == 200 and "参加が確定しました" in page_text(response)
    newcomer = db.session.scalar(select(Supporter).where(Supporter.email == "new@example.jp"))
    assert newcomer.status == "applied" and newcomer.joined_via == "application"
    assert len(mails_to(mailbox, "new@example.jp")) == 2  # application + confirmation
    bad = post(client, f"/trainings/{session.id}/visitor", {"name": "", "kana": "Hanako",
                                                            "delivery": "email"})
    assert "ひらがなかカタカナ" in page_text(bad)


def test_supporter_signs_up_and_cancels_on_the_pages(client, session, mailbox):
    someone = person(1)
    login_supporter(client, someone, mailbox)
    page = page_text(client.get(f"/trainings/{session.id}"))
    assert "この回に申し込む" in page and "2 席" in page
    post(client, f"/trainings/{session.id}/sign-up")
    assert "お申込み済みです" in page_text(client.get(f"/trainings/{session.id}"))
    mine = page_text(client.get("/me"))
    assert "コミュニケーション研修（冬）" in mine and "申し込んでいる研修" in mine
    registration = db.session.scalar(select(Registration))
    post(client, f"/trainings/registrations/{registration.id}/cancel")
    db.session.refresh(registration)
    assert registration.status == "cancelled"
    other = person(2)
    theirs = services.sign_up(session.id, other, actor=None)
    assert post(client, f"/trainings/registrations/{theirs.id}/cancel").status_code == 404


def test_staff_sign_up_someone_by_phone(client, coordinator, session, mailbox):
    someone = person(1, name="電話 花子", kana="でんわ はなこ")
    login_staff(client, coordinator)
    page = page_text(client.get(f"/staff/trainings/sessions/{session.id}?q=でんわ"))
    assert "電話 花子" in page
    post(client, f"/staff/trainings/sessions/{session.id}/sign-up", {"supporter_id": someone.id})
    registration = db.session.scalar(select(Registration))
    assert registration.supporter_id == someone.id and registration.via == "staff"
    post(client, f"/staff/trainings/registrations/{registration.id}/cancel")
    db.session.refresh(registration)
    assert registration.status == "cancelled"


def test_staff_manage_trainings_and_sessions_with_clear_errors(client, coordinator):
    login_staff(client, coordinator)
    response = post(client, "/staff/trainings/new", {"title": "", "kind": "communication"})
    assert "研修の名前を入力してください。" in page_text(response)
    response = post(client, "/staff/trainings/new", {"title": "フォローアップ研修",
                                                     "kind": "follow_up", "published": "y"})
    training_url = response.headers["Location"]
    response = post(client, training_url, {"day": "", "start_time": "10:00", "end_time": "09:00",
                                           "station_id": "0", "venue_name": "公民館",
                                           "capacity": "0"})
    page = page_text(response)
    assert "日付を入力してください。" in page and "終了時刻は開始時刻より後にしてください。" in page
    assert "定員は1以上の数で入力してください。" in page and 'value="公民館"' in page
    day = (today_tokyo() + timedelta(days=20)).isoformat()
    post(client, training_url, {"day": day, "start_time": "10:00", "end_time": "12:00",
                                "station_id": "0", "venue_name": "公民館", "capacity": "20"})
    assert "公民館" in page_text(client.get("/trainings"))


def test_public_list_and_calendar_feed_show_published_sessions_only(client, geography):
    shown = make_session(capacity=5)
    hidden = make_session(published=False)
    services.sign_up(shown.id, person(1), actor=None)
    page = page_text(client.get("/trainings"))
    assert "4 席" in page and f"/trainings/{shown.id}" in page
    assert f"/trainings/{hidden.id}" not in page
    assert client.get(f"/trainings/{hidden.id}").status_code == 404
    feed = client.get("/trainings.ics")
    assert feed.mimetype == "text/calendar"
    events = Calendar.from_ical(feed.data).walk("VEVENT")
    assert len(events) == 1 and str(events[0]["uid"]).startswith(f"training-session-{shown.id}@")


def test_a_session_page_offers_the_phone_only_with_a_number_to_call(client, geography):
    """Signing up by phone is offered with the stations' numbers, and not at all while no
    station has one (the demo's are empty until the council fills them in)."""
    from app.geography.models import Station
    session = make_session(capacity=5)
    page = page_text(client.get(f"/trainings/{session.id}"))
    assert "お電話" not in page
    station = db.session.scalar(select(Station).order_by(Station.position))
    station.phone = "042-000-2222"
    db.session.commit()
    page = page_text(client.get(f"/trainings/{session.id}"))
    assert "お電話でも申し込めます:" in page
    assert f'{station.name} <a class="nowrap" href="tel:0420002222">042-000-2222</a>' in page


def test_newsletter_block_lists_upcoming_sessions(client, coordinator, mailbox):
    session = make_session(capacity=12)
    services.sign_up(session.id, person(1), actor=None)
    make_supporter(email="reader@example.jp", delivery="email", name="読者 一郎")
    mailbox.clear()
    login_staff(client, coordinator)
    response = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "", "title": "冬の通信", "subject": "冬の通信",
        "body_md": "本文", "area_id": "0", "district_id": "0", "kind": "", "category_id": "0",
        "include_trainings": "y"})
    newsletter_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    post(client, f"/staff/newsletters/{newsletter_id}/send")
    from app.newsletters.sender import run
    run(until_idle=True)
    [message] = mails_to(mailbox, "reader@example.jp")
    body = text_of(message)
    assert "研修のご案内" in body and "コミュニケーション研修（冬）" in body
    assert "残り 11 席" in body and f"https://hotnet.test/trainings/{session.id}" in body
    assert "参加 001" not in body


def test_the_roster_is_for_staff_only(client, session, mailbox):
    assert client.get(f"/staff/trainings/sessions/{session.id}/roster").status_code == 302
    someone = person(1)
    login_supporter(client, someone, mailbox)
    assert client.get(f"/staff/trainings/sessions/{session.id}/roster").status_code == 403


def test_calling_off_a_session_asks_first(client, coordinator, session, mailbox):
    services.sign_up(session.id, person(1), actor=None)
    login_staff(client, coordinator)
    page = page_text(client.get(f"/staff/trainings/sessions/{session.id}/cancel"))
    assert "1 人全員" in page and "元に戻せません" in page
    db.session.refresh(session)
    assert session.cancelled_at is None
    post(client, f"/staff/trainings/sessions/{session.id}/cancel")
    db.session.refresh(session)
    assert session.cancelled_at is not None


def test_a_newsletter_can_go_to_those_who_attended_a_training(client, coordinator, mailbox):
    session = make_session()
    came, missed = person(1), person(2)
    places = {someone: services.sign_up(session.id, someone, actor=None) for someone in (came, missed)}
    held(session)
    for someone, mark in ((came, "attended"), (missed, "no_show")):
        services.mark_attendance(places[someone].id, mark, actor=None)
    mailbox.clear()
    login_staff(client, coordinator)
    response = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "", "title": "受講者へ", "subject": "受講者へ",
        "body_md": "ご参加ありがとうございました。", "area_id": "0", "district_id": "0",
        "kind": "", "category_id": "0", "training_id": session.training_id})
    newsletter_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    post(client, f"/staff/newsletters/{newsletter_id}/send")
    from app.newsletters.sender import run
    run(until_idle=True)
    assert len(mails_to(mailbox, came.email)) == 1 and mails_to(mailbox, missed.email) == []


def test_a_roster_with_a_bad_mark_saves_nothing(client, coordinator, session):
    a, b = person(1), person(2)
    first, second = services.sign_up(session.id, a, actor=None), services.sign_up(session.id, b, actor=None)
    held(session)
    login_staff(client, coordinator)
    response = post(client, f"/staff/trainings/sessions/{session.id}/attendance",
                    {f"attendance-{first.id}": "attended", f"attendance-{second.id}": "maybe"},
                    follow_redirects=True)
    assert "出欠を選んでください。" in page_text(response)
    db.session.refresh(first)
    assert first.attendance == ""
    post(client, f"/staff/trainings/sessions/{session.id}/attendance",
         {f"attendance-{first.id}": "attended", f"attendance-{second.id}": "no_show"})
    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.attendance, second.attendance) == ("attended", "no_show")

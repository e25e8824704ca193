"""The rules for trainings: sessions, sign-ups within capacity, the waitlist, attendance.

Sign-ups and cancellations lock the session row first (SELECT … FOR UPDATE on PostgreSQL; on
SQLite a write to the row takes the database's write lock before anything is read), so two
people can never take the last seat at the same instant. The `seats` CHECK constraint on
the session is the last line. Mail is queued in the outbox in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from app import submissions
from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import InvalidInput, InvalidState, NotFound, raise_problems
from app.extensions import db
from app.formatting import TOKYO, format_date, format_datetime, today_tokyo
from app.geography.models import Station
from app.i18n import gettext as _
from app.outbox import services as outbox
from app.supporters import sections
from app.supporters import services as supporters
from app.supporters.models import Supporter
from app.text import tidy
from app.trainings.calendar import session_calendar
from app.trainings.models import KINDS, Registration, Training, TrainingSession
from app.urls import external_url

ACTIVE = ("confirmed", "waitlisted")


# --- trainings and sessions -------------------------------------------------------------------

def list_trainings() -> list[Training]:
    return list(db.session.scalars(select(Training).options(joinedload(Training.sessions))
                                   .order_by(Training.created_at.desc())).unique())


def get_training(training_id: int) -> Training:
    training = db.session.get(Training, training_id)
    if training is None:
        raise NotFound(training_id)
    return training


def find_registration(registration_id: int) -> Registration | None:
    return db.session.get(Registration, registration_id)


def get_registration(registration_id: int) -> Registration:
    found = find_registration(registration_id)
    if found is None:
        raise NotFound(registration_id)
    return found


def get_session(session_id: int) -> TrainingSession:
    found = db.session.get(TrainingSession, session_id)
    if found is None:
        raise NotFound(session_id)
    return found


def save_training(training: Training | None, data: dict, *, actor) -> Training:
    problems = {}
    title = tidy(data.get("title"))
    if not title:
        problems["title"] = _("研修の名前を入力してください。")
    if data.get("kind") not in KINDS:
        problems["kind"] = _("種類を選んでください。")
    if len(data.get("description") or "") > 5000:
        problems["description"] = _("%(max)d文字以内で入力してください。", max=5000)
    raise_problems(problems)
    if training is None:
        training = Training()
        db.session.add(training)
    training.title, training.kind = title, data["kind"]
    training.description = (data.get("description") or "").strip()
    training.published = bool(data.get("published"))
    db.session.flush()
    audit.record("training.save", "training", training.id, title, actor=actor)
    db.session.commit()
    return training


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=TOKYO)


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=TOKYO)


SESSION_FIELDS = ("day", "start_time", "end_time", "station_id", "venue_name", "venue_address",
                  "capacity", "signup_deadline", "cancel_deadline", "notes")


def session_form_values(training_session: TrainingSession) -> dict:
    """The session as its form shows it (Japan time): the inverse of session_values."""
    start, end = training_session.starts_at.astimezone(TOKYO), training_session.ends_at.astimezone(TOKYO)
    return {"day": start.date(), "start_time": start.time(), "end_time": end.time(),
            "station_id": training_session.station_id or 0, "venue_name": training_session.venue_name,
            "venue_address": training_session.venue_address, "capacity": training_session.capacity,
            "signup_deadline": training_session.signup_deadline.astimezone(TOKYO).date(),
            "cancel_deadline": training_session.cancel_deadline.astimezone(TOKYO).date(),
            "notes": training_session.notes}


def session_values(data: dict) -> dict:
    """Check a session form (Japan time) and turn it into stored values (UTC-aware)."""
    problems = {}
    day, start, end = data.get("day"), data.get("start_time"), data.get("end_time")
    if not day:
        problems["day"] = _("日付を入力してください。")
    if not start:
        problems["start_time"] = _("開始時刻を入力してください。")
    if not end:
        problems["end_time"] = _("終了時刻を入力してください。")
    elif start and end <= start:
        problems["end_time"] = _("終了時刻は開始時刻より後にしてください。")
    capacity = data.get("capacity")
    if not capacity or capacity < 1 or capacity > 10000:
        problems["capacity"] = _("定員は1以上の数で入力してください。")
    station = db.session.get(Station, data["station_id"]) if data.get("station_id") else None
    venue_name = tidy(data.get("venue_name"))
    if station is None and not venue_name:
        problems["venue_name"] = _("会場をステーションから選ぶか、会場名を入力してください。")
    signup_by, cancel_by = data.get("signup_deadline"), data.get("cancel_deadline")
    if day and signup_by and signup_by > day:
        problems["signup_deadline"] = _("申込みの締切は開催日までの日にしてください。")
    if day and cancel_by and cancel_by > day:
        problems["cancel_deadline"] = _("取消しの締切は開催日までの日にしてください。")
    for key, limit in (("venue_name", 200), ("venue_address", 300), ("notes", 5000)):
        if len(data.get(key) or "") > limit:
            problems[key] = _("%(max)d文字以内で入力してください。", max=limit)
    raise_problems(problems)
    return {
        "starts_at": _at(day, start), "ends_at": _at(day, end),
        "station_id": station.id if station else None, "venue_name": venue_name,
        "venue_address": tidy(data.get("venue_address")), "capacity": capacity,
        "signup_deadline": _end_of(signup_by or day - timedelta(days=2)),
        "cancel_deadline": _end_of(cancel_by or day - timedelta(days=1)),
        "notes": (data.get("notes") or "").strip(),
    }


def add_session(training: Training, data: dict, *, actor) -> TrainingSession:
    values = session_values(data)
    training_session = TrainingSession(training_id=training.id, confirmed=0, **values)
    db.session.add(training_session)
    db.session.flush()
    audit.record("training.session_add", "training_session", training_session.id, training.title,
                 actor=actor)
    db.session.commit()
    return training_session


def _lock(session_id: int) -> TrainingSession:
    """The session row, locked for this transaction (see the module docstring)."""
    if db.session.get_bind().dialect.name == "postgresql":
        found = db.session.execute(
            select(TrainingSession).where(TrainingSession.id == session_id)
            .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    else:
        db.session.execute(update(TrainingSession).where(TrainingSession.id == session_id)
                           .values(confirmed=TrainingSession.confirmed))
        found = db.session.execute(
            select(TrainingSession).where(TrainingSession.id == session_id)
            .execution_options(populate_existing=True)).scalar_one_or_none()
    if found is None:
        raise NotFound(session_id)
    return found


def change_session(session_id: int, data: dict, *, actor) -> TrainingSession:
    """Change a session. Raising the capacity promotes from the waitlist; a new date, time or
    venue is told to everyone signed up (and their reminder goes again for the new date);
    nothing else (a capacity, a deadline, the notes) is announced. The returned session says
    how many were told (`told_of_change`) and promoted (`promoted_now`)."""
    values = session_values(data)
    training_session = _lock(session_id)
    if training_session.cancelled_at is not None:
        raise InvalidState(_("中止した回は変更できません。"))
    if values["capacity"] < training_session.confirmed:
        raise InvalidInput(_("定員を、申込みが確定している %(n)d 人より少なくはできません。",
                             n=training_session.confirmed), field="capacity")
    told = ("starts_at", "ends_at", "station_id", "venue_name", "venue_address")
    changed = any(getattr(training_session, k) != values[k] for k in told)
    for key, value in values.items():
        setattr(training_session, key, value)
    promoted = _promote(training_session)
    if changed:
        db.session.execute(update(Registration).where(Registration.session_id == training_session.id)
                           .values(reminder_sent_at=None))
    audit.record("training.session_change", "training_session", training_session.id,
                 training_session.training.title, actor=actor)
    _tell_promoted(promoted)
    training_session.told_of_change = 0
    training_session.promoted_now = len(promoted)
    if changed:
        for registration in registrations(training_session, ACTIVE):
            training_session.told_of_change += _mail(
                registration, "training_changed", _("【ほっとネット】研修の日時・会場が変わりました"),
                ics=True)
    db.session.commit()
    return training_session


def cancel_session(session_id: int, *, actor) -> int:
    """Call off a session: every registration is cancelled and told. Returns how many."""
    training_session = _lock(session_id)
    if training_session.cancelled_at is not None:
        raise InvalidState(_("この回はすでに中止になっています。"))
    training_session.cancelled_at = utcnow()
    people = registrations(training_session, ACTIVE)
    for registration in people:
        registration.status, registration.cancelled_at = "cancelled", utcnow()
    training_session.confirmed = 0
    audit.record("training.session_cancel", "training_session", training_session.id,
                 training_session.training.title, actor=actor)
    for registration in people:
        _mail(registration, "training_session_cancelled", _("【ほっとネット】研修を中止します"),
              ics=True)
    db.session.commit()
    return len(people)


def upcoming_sessions(published_only: bool = True, limit: int | None = None
                      ) -> list[TrainingSession]:
    query = (select(TrainingSession).join(Training)
             .options(joinedload(TrainingSession.training), joinedload(TrainingSession.station))
             .where(TrainingSession.starts_at > utcnow(), TrainingSession.cancelled_at.is_(None))
             .order_by(TrainingSession.starts_at, TrainingSession.id))
    if published_only:
        query = query.where(Training.published.is_(True))
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def registrations(training_session: TrainingSession, statuses=ACTIVE) -> list[Registration]:
    """Confirmed first, then the waitlist in its order."""
    order = func.coalesce(Registration.confirmed_at, Registration.queued_at)
    return list(db.session.scalars(
        select(Registration)
        .options(joinedload(Registration.supporter).joinedload(Supporter.district))
        .where(Registration.session_id == training_session.id, Registration.status.in_(statuses))
        .order_by(Registration.status, order, Registration.id)))


def place_of(training_session: TrainingSession, supporter: Supporter) -> Registration | None:
    """The supporter's confirmed or waitlisted place on the session, if any."""
    return db.session.scalar(select(Registration).where(
        Registration.session_id == training_session.id, Registration.supporter_id == supporter.id,
        Registration.status.in_(ACTIVE)))


def roster(training_session: TrainingSession, *, actor) -> list[Registration]:
    """The confirmed people with their contact details; reading it is audit-logged."""
    people = registrations(training_session, ("confirmed",))
    audit.record("training.roster", "training_session", training_session.id, params={"people": len(people)},
                 actor=actor)
    db.session.commit()
    return people


def waitlist(training_session: TrainingSession) -> list[Registration]:
    return list(db.session.scalars(
        select(Registration).where(Registration.session_id == training_session.id,
                                   Registration.status == "waitlisted")
        .order_by(Registration.queued_at, Registration.id)))


# --- signing up and cancelling ----------------------------------------------------------------

def sign_up(session_id: int, supporter: Supporter, via: str = "self",
            slot=None, *, actor) -> Registration:
    """Take a seat, or the next place on the waitlist when the session is full."""
    if supporter.status not in ("applied", "active", "paused"):
        raise InvalidState(_("この方は申し込めません（退会済みなど）。"))
    training_session = _lock(session_id)
    now = utcnow()
    if training_session.cancelled_at is not None:
        raise InvalidState(_("この回は中止になりました。"))
    if training_session.starts_at <= now:
        raise InvalidState(_("この回はすでに始まっているか、終わっています。"))
    if now > training_session.signup_deadline and via != "staff":
        raise InvalidState(_("申込みの締切（%(day)s）を過ぎています。事務局にお電話でご相談ください。",
                             day=format_date(training_session.signup_deadline)))
    registration = db.session.scalar(select(Registration).where(
        Registration.session_id == training_session.id, Registration.supporter_id == supporter.id))
    if registration is not None and registration.status in ACTIVE:
        raise InvalidState(_("すでに申し込んでいます。") if registration.status == "confirmed"
                           else _("すでにキャンセル待ちに入っています。"))
    if registration is None:
        registration = Registration(session_id=training_session.id, supporter_id=supporter.id)
        db.session.add(registration)
    registration.via, registration.queued_at = via, now
    registration.cancelled_at, registration.attendance = None, ""
    registration.reminder_sent_at = None
    if training_session.confirmed < training_session.capacity:
        registration.status, registration.confirmed_at = "confirmed", now
        training_session.confirmed = TrainingSession.confirmed + 1
    else:
        registration.status, registration.confirmed_at = "waitlisted", None
    audit.record("training.sign_up", "training_registration", None,
                 params={"session": training_session.id, "supporter": supporter.id,
                         "registration": registration.status, "via": via}, actor=actor)
    db.session.flush()
    submissions.record(slot, registration.id)
    if registration.status == "confirmed":
        _mail(registration, "training_confirmed", _("【ほっとネット】研修のお申込みを受け付けました"),
              ics=True)
    else:
        _mail(registration, "training_waitlisted", _("【ほっとネット】研修のキャンセル待ちに登録しました"))
    db.session.commit()
    return registration


def cancel(registration_id: int, *, actor) -> Registration:
    """Cancel a place (the supporter their own, until the deadline; staff or the system any,
    until the session starts). A freed seat goes to the first on the waitlist in the same
    transaction.
    """
    supporter = actor if actor is not None and not actor.is_staff else None
    registration = db.session.get(Registration, registration_id)
    if registration is None or (supporter is not None and registration.supporter_id != supporter.id):
        raise NotFound(registration_id)
    training_session = _lock(registration.session_id)
    db.session.refresh(registration)
    if registration.status not in ACTIVE:
        raise InvalidState(_("この申込みはすでに取り消されています。"))
    now = utcnow()
    if training_session.starts_at <= now:
        raise InvalidState(_("始まった回の申込みは取り消せません。"))
    if supporter is not None and now > training_session.cancel_deadline:
        raise InvalidState(_("取消しの締切（%(day)s）を過ぎています。事務局にお電話でご連絡ください。",
                             day=format_date(training_session.cancel_deadline)))
    was_confirmed = registration.status == "confirmed"
    registration.status, registration.cancelled_at = "cancelled", now
    if was_confirmed:
        training_session.confirmed = TrainingSession.confirmed - 1
    promoted = _promote(training_session)
    audit.record("training.cancel", "training_registration", registration.id,
                 params={"session": training_session.id, "supporter": registration.supporter_id},
                 actor=actor)
    _mail(registration, "training_cancelled", _("【ほっとネット】研修のお申込みを取り消しました"))
    _tell_promoted(promoted)
    db.session.commit()
    return registration


def _promote(training_session: TrainingSession) -> list[Registration]:
    """Fill free seats from the head of the waitlist (the caller holds the lock and commits)."""
    db.session.flush()
    db.session.refresh(training_session, ["confirmed"])
    free = training_session.capacity - training_session.confirmed
    if free <= 0:
        return []
    promoted = waitlist(training_session)[:free]
    now = utcnow()
    for registration in promoted:
        registration.status, registration.confirmed_at = "confirmed", now
    if promoted:
        training_session.confirmed = TrainingSession.confirmed + len(promoted)
        db.session.flush()
    return promoted


def _tell_promoted(promoted: list[Registration]) -> None:
    for registration in promoted:
        _mail(registration, "training_promoted",
              _("【ほっとネット】キャンセル待ちの研修に参加できるようになりました"), ics=True)


def sign_up_visitor(session_id: int, data: dict, submission_key: str | None = None) -> Registration:
    """A visitor signs up for a registration training: an application plus a registration,
    in one transaction. The same `submission_key` twice raises AlreadySubmitted."""
    training_session = get_session(session_id)
    if training_session.training.kind != "registration" or not training_session.training.published:
        raise InvalidState(_("この研修は、推進員として登録した方が申し込めます。"))
    if training_session.cancelled_at is not None or utcnow() > training_session.signup_deadline:
        raise InvalidState(_("この回は申込みを受け付けていません。"))
    slot = submissions.claim(submission_key, "visitor_sign_up")
    supporter = supporters.apply(data, commit=False)
    return sign_up(training_session.id, supporter, via="visitor", slot=slot, actor=None)


# --- attendance ---------------------------------------------------------------------------------

def mark_attendance(registration_id: int, attendance: str, *, actor) -> Registration:
    """Attended or no-show. Attending a registration training activates an applicant."""
    registration = db.session.get(Registration, registration_id)
    if registration is None:
        raise NotFound(registration_id)
    _mark(registration, attendance, actor=actor)
    db.session.commit()
    return registration


def record_attendance(training_session: TrainingSession, marks: dict[int, str], *, actor) -> int:
    """The roster's marks (registration id → attended / no_show / ""), in one transaction.

    Every mark is checked before anything is written; returns how many changed.
    """
    people = {r.id: r for r in registrations(training_session, ("confirmed",))}
    changed = [(people[i], mark) for i, mark in marks.items()
               if i in people and mark != people[i].attendance]
    for _registration, mark in changed:
        _check_mark(mark)
    for registration, mark in changed:
        _mark(registration, mark, actor=actor)
    db.session.commit()
    return len(changed)


def _check_mark(attendance: str) -> None:
    if attendance not in ("attended", "no_show", ""):
        raise InvalidInput(_("出欠を選んでください。"), field="attendance")


def attendance_open(training_session: TrainingSession) -> bool:
    """Marks can be set from the session's day (Japan time) on, not before."""
    return training_session.starts_at.astimezone(TOKYO).date() <= today_tokyo()


def _mark(registration: Registration, attendance: str, *, actor) -> None:
    """Set one mark (the caller commits)."""
    _check_mark(attendance)
    if registration.status != "confirmed":
        raise InvalidState(_("確定した申込みだけ出欠をつけられます。"))
    training_session = registration.session
    if attendance and not attendance_open(training_session):
        raise InvalidState(_("出欠は開催日（%(day)s）からつけられます。",
                             day=format_date(training_session.starts_at)))
    registration.attendance = attendance
    supporter = registration.supporter
    day = training_session.starts_at.astimezone(TOKYO).date()
    if attendance == "attended" and training_session.training.kind == "registration":
        changes = {}
        if supporter.status == "applied":
            changes["status"] = ["applied", "active"]
            supporter.status = "active"
            supporter.joined_on = supporter.joined_on or day
            # Welcome: they are a supporter now (the same message as an approval).
            outbox.enqueue(supporter.email, _("ほっとネット推進員に登録しました"),
                           "application_approved", supporter_id=supporter.id, supporter=supporter,
                           **supporters.mobile_context(supporter.email))
        if supporter.registration_training_on != day:
            changes["registration_training_on"] = [
                supporter.registration_training_on.isoformat()
                if supporter.registration_training_on else "", day.isoformat()]
            supporter.registration_training_on = day
        if changes:
            supporters.record_change(supporter, "updated", changes, actor=actor)


@sections.register(sections.STAFF, "trainings/_staff_section.html")
def history_of(supporter: Supporter) -> list[Registration]:
    """Every registration of a supporter, newest session first."""
    return list(db.session.scalars(
        select(Registration).join(TrainingSession)
        .options(joinedload(Registration.session).joinedload(TrainingSession.training))
        .where(Registration.supporter_id == supporter.id)
        .order_by(TrainingSession.starts_at.desc())))


@dataclass
class MyTrainings:
    upcoming: list[Registration]
    past: list[Registration]


@sections.register(sections.ME, "trainings/_me_section.html")
def my_trainings(supporter: Supporter) -> MyTrainings:
    now = utcnow()
    rows = history_of(supporter)
    upcoming = [r for r in rows if r.session.starts_at > now and r.status in ACTIVE]
    past = [r for r in rows if r.session.starts_at <= now and r.status == "confirmed"]
    return MyTrainings(upcoming=upcoming[::-1], past=past)


# --- mail -----------------------------------------------------------------------------------------

def _mail(registration: Registration, template: str, subject: str, ics: bool = False) -> bool:
    """Queue a message about a registration in the current transaction (the caller commits
    with the change it is about); False when the person has no e-mail address."""
    supporter = registration.supporter
    if not supporter.email:
        return False
    training_session = registration.session
    attachments = []
    if ics:
        attachments.append(("hotnet-training.ics", "text/calendar; charset=utf-8; method=PUBLISH",
                            session_calendar([training_session])))
    return outbox.enqueue(
        supporter.email, subject, template, supporter_id=supporter.id, attachments=attachments,
        registration=registration, session=training_session, supporter=supporter,
        when=f"{format_datetime(training_session.starts_at)}〜{training_session.ends_at.astimezone(TOKYO):%H:%M}",
        url=external_url("trainings.session", session_id=training_session.id)) is not None


def send_reminders(now: datetime | None = None) -> int:
    """Remind everyone confirmed for a session within the next N days — once per registration.

    A guarded update marks the registration and its mail is queued in the same transaction;
    the outbox retries a mail the server refused.
    """
    now = now or utcnow()
    horizon = now + timedelta(days=current_app.config["HOTNET_TRAINING_REMINDER_DAYS"])
    due = db.session.scalars(
        select(Registration.id).join(TrainingSession)
        .where(Registration.status == "confirmed", Registration.reminder_sent_at.is_(None),
               TrainingSession.cancelled_at.is_(None), TrainingSession.starts_at > now,
               TrainingSession.starts_at <= horizon)).all()
    sent = 0
    for registration_id in due:
        claimed = db.session.execute(
            update(Registration).where(Registration.id == registration_id,
                                       Registration.reminder_sent_at.is_(None))
            .values(reminder_sent_at=now).returning(Registration.id)).scalar()
        if claimed is None:
            db.session.rollback()
            continue
        registration = db.session.get(Registration, registration_id)
        sent += _mail(registration, "training_reminder",
                      _("【ほっとネット】研修のご案内（もうすぐです）"))
        db.session.commit()
    return sent

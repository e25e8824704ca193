"""Taking a report: from a supporter, a visitor or staff on someone's behalf; receipts and urgent alerts."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from flask import current_app
from sqlalchemy import select, update

from app import actors, submissions
from app.accounts.models import StaffUser, staff_area
from app.concerns.models import (
    CHANNELS,
    URGENCIES,
    Concern,
    ConcernCategory,
    ReferenceCounter,
)
from app.concerns.timeline import add_event
from app.dbtypes import insert_unless_present, utcnow
from app.errors import InvalidInput, raise_problems
from app.extensions import db
from app.formatting import TOKYO, today_tokyo
from app.geography.models import District
from app.i18n import gettext as _
from app.images import clean_image, store
from app.outbox import services as outbox
from app.supporters.models import Supporter
from app.text import clean, email_text, phone_text, tidy
from app.urls import external_url
from app.validators import is_valid_email, phone_problem

TEXT_LIMIT = 5000
# Dates before this are typing mistakes (0006-02-02), not observations.
EARLIEST = date(2000, 1, 1)


# --- taking a report -----------------------------------------------------------------------

@dataclass
class Photo:
    """An uploaded file as received: checked and re-encoded by submit_concern."""

    data: bytes
    filename: str = ""


def reported_moment(data: dict) -> datetime | None:
    """When staff say the call, visit or FAX came in (Japan time), or None when not given."""
    day, clock = data.get("reported_on"), data.get("reported_time")
    if not day:
        return None
    return datetime.combine(day, clock or time(0, 0), tzinfo=TOKYO).astimezone(timezone.utc)


def concern_problems(data: dict, *, staff: bool) -> dict[str, str]:
    """Every rule a report breaks, by field, so that one try shows them all."""
    problems: dict[str, str] = {}
    category = db.session.get(ConcernCategory, data.get("category_id") or 0)
    if category is None or not category.active:
        problems["category_id"] = _("分類を選んでください。")
    body = (data.get("body") or "").strip()
    if not body:
        problems["body"] = _("気になったことを書いてください。")
    elif len(body) > TEXT_LIMIT:
        problems["body"] = _("%(max)d文字以内で入力してください。", max=TEXT_LIMIT)
    if data.get("district_id") and db.session.get(District, data["district_id"]) is None:
        problems["district_id"] = _("地区を選び直してください。")
    if data.get("urgency") not in URGENCIES:
        problems["urgency"] = _("急ぎ具合を選んでください。")
    noticed = data.get("noticed_on")
    if noticed and noticed > today_tokyo():
        problems["noticed_on"] = _("気づいた日に、未来の日付は入れられません。")
    elif noticed and noticed < EARLIEST:
        problems["noticed_on"] = _("気づいた日は %(year)d 年以降の日付にしてください（例: 2026-11-20）。",
                                   year=EARLIEST.year)
    reported = reported_moment(data)
    if reported is not None and reported > utcnow() + timedelta(minutes=5):
        problems["reported_on"] = _("受けた日時に、未来の日時は入れられません。")
    elif reported is not None and reported.date() < today_tokyo() - timedelta(days=366):
        problems["reported_on"] = _("受けた日は1年以内の日付にしてください。")
    email = data.get("reporter_email") or ""
    if email and not is_valid_email(email):
        problems["reporter_email"] = _("メールアドレスの形式が正しくありません（例: hanako@example.jp）。")
    if data.get("may_contact") and not (email or data.get("reporter_phone")
                                        or data.get("reporter_supporter_id")):
        problems["may_contact"] = _("連絡してよい場合は、メールアドレスか電話番号を入力してください。")
    channel = data.get("channel", "web")
    if channel not in CHANNELS or (channel != "web" and not staff):
        problems["channel"] = _("受付の方法を選んでください。")
    if problem := phone_problem(data.get("reporter_phone")):
        problems["reporter_phone"] = problem
    for key, limit in (("place", 200), ("address", 300), ("reporter_name", 100),
                       ("reporter_phone", 40), ("reporter_email", 254)):
        if len(data.get(key) or "") > limit:
            problems[key] = _("%(max)d文字以内で入力してください。", max=limit)
    return problems


_REFERENCE = re.compile(r"HN-(\d{4})-(\d{1,6})")


def reference_of(text: str) -> str | None:
    """The reference number someone typed, as it is written (HN-2026-000254), whether typed
    in full-width letters, lower case or without the leading zeros; None if it is not one."""
    found = _REFERENCE.fullmatch(clean(text).upper())
    if not found or not int(found.group(2)):  # (numbers count from 1: HN-2026-0 begins some)
        return None
    return f"HN-{found.group(1)}-{int(found.group(2)):06d}"


def next_reference(year: int) -> str:
    """HN-<year>-<6 digits>, counted per year. The counter row's update serialises writers."""
    db.session.execute(insert_unless_present(ReferenceCounter, {"year": year, "last": 0}, ["year"]))
    number = db.session.execute(
        update(ReferenceCounter).where(ReferenceCounter.year == year)
        .values(last=ReferenceCounter.last + 1).returning(ReferenceCounter.last)
    ).scalar_one()
    return f"HN-{year}-{number:06d}"


def photo_folder() -> Path:
    return Path(current_app.config["HOTNET_UPLOAD_DIR"]) / "concerns"


def submit_concern(data: dict, *, photo: Photo | None = None, reporter: Supporter | None = None,
                   staff: StaffUser | None = None, submission_key: str | None = None) -> Concern:
    """Take a report from a supporter, a visitor, or staff on someone's behalf.

    `data` holds the form's fields. Raises InvalidInput (with `.problems`) and writes
    nothing when anything is wrong, the photo included. The same `submission_key` twice
    raises AlreadySubmitted with the first report instead of storing a second.
    """
    # Names, places and addresses as typed (spaces tidied); the phone with ASCII digits.
    data = {key: ((phone_text(value) if key == "reporter_phone" else
                   email_text(value) if key == "reporter_email" else tidy(value))
                  if isinstance(value, str) and key != "body" else value)
            for key, value in data.items()}
    data["body"] = (data.get("body") or "").strip()
    data.setdefault("channel", "web")
    if reporter is not None:
        data["reporter_supporter_id"] = reporter.id
    problems = concern_problems(data, staff=staff is not None)
    picture = None
    if photo is not None and photo.data:
        try:
            picture = clean_image(photo.data, current_app.config["HOTNET_CONCERN_PHOTO_MAX_MB"]
                                  * 1024 * 1024, field="photo")
        except InvalidInput as exc:
            problems["photo"] = str(exc)
    raise_problems(problems)

    slot = submissions.claim(submission_key, "concern")
    now = utcnow()
    local = now.astimezone(TOKYO)
    district = db.session.get(District, data["district_id"]) if data.get("district_id") else None
    concern = Concern(
        reference=next_reference(local.year),
        category_id=data["category_id"], body=data["body"],
        district_id=district.id if district else None,
        area_id=district.area_id if district else None,
        place=data.get("place") or "", address=data.get("address") or "",
        noticed_on=data.get("noticed_on"), urgency=data["urgency"],
        may_contact=bool(data.get("may_contact")), channel=data["channel"],
        reporter_supporter_id=data.get("reporter_supporter_id"),
        reporter_name=data.get("reporter_name") or "",
        reporter_email=(data.get("reporter_email") or "").strip(),
        reporter_phone=data.get("reporter_phone") or "",
        taken_by_id=staff.id if staff is not None else None,
        status="received", created_at=now, month=f"{local:%Y-%m}",
        reported_at=(reported_moment(data) if staff is not None else None) or now,
    )
    db.session.add(concern)
    db.session.flush()
    submissions.record(slot, concern.id, concern.reference)
    # The channel's code: put into words when the timeline is read.
    add_event(concern, "created", staff or reporter or actors.SOMEONE, status_to="received",
           body=concern.channel)
    if picture is not None:
        concern.photo = store(photo_folder(), f"c{concern.id}", *picture)
    _queue_receipt(concern)
    if concern.urgency == "urgent":
        notify_urgent(concern)
    db.session.commit()
    return concern


def receipt_address(concern: Concern) -> str:
    return concern.reporter_email or (concern.reporter.email if concern.reporter else "") or ""


def _queue_receipt(concern: Concern) -> None:
    """A receipt that repeats nothing of what was reported: only the reference number."""
    outbox.enqueue(receipt_address(concern),
                   _("【ほっとネット】気になることを受け付けました（%(ref)s）", ref=concern.reference),
                   "concern_receipt", supporter_id=concern.reporter_supporter_id,
                   concern=concern,
                   my_reports_url=external_url("concerns.my_reports") if concern.reporter else "")


def coordinators_for(area_id: int | None) -> list[StaffUser]:
    """The active coordinators covering an area; with no area, every active staff member."""
    query = select(StaffUser).where(StaffUser.active.is_(True))
    if area_id is not None:
        query = query.join(staff_area, staff_area.c.staff_id == StaffUser.id).where(
            staff_area.c.area_id == area_id)
    found = list(db.session.scalars(query.order_by(StaffUser.kana, StaffUser.id)))
    if not found and area_id is not None:
        return coordinators_for(None)
    return found


def notify_urgent(concern: Concern) -> int:
    """Queue a mail to the area's coordinators at once (the caller commits). The mail holds
    no details, only the link."""
    queued = 0
    for staff in coordinators_for(concern.area_id):
        queued += outbox.enqueue(
            staff.email, _("【至急】緊急の気になることが届きました（%(ref)s）", ref=concern.reference),
            "concern_urgent", staff_id=staff.id, concern=concern, staff=staff,
            url=external_url("concerns.staff_detail", concern_id=concern.id)) is not None
    return queued

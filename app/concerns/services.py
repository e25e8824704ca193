"""The rules for concerns: taking a report, routing it, the status workflow and the timeline.

Every function that changes something writes in one transaction, logs the action in the
concern's timeline (and the audit log where personal data is read or exported), and
raises a domain error (InvalidInput / InvalidState / NotFound) when a rule is broken.
Mail is queued in the outbox in the same transaction; the sender process delivers it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from app import actors, submissions
from app.accounts.models import StaffUser, staff_area
from app.audit import services as audit
from app.concerns import rules
from app.concerns.models import (
    CHANNELS,
    STATUSES,
    URGENCIES,
    Concern,
    ConcernCategory,
    ConcernEvent,
    ConcernLink,
    ReferenceCounter,
)
from app.dbtypes import insert_unless_present, utcnow
from app.errors import InvalidInput, InvalidState, NotFound, raise_problems
from app.extensions import db
from app.formatting import TOKYO, today_tokyo
from app.geography.models import District
from app.i18n import gettext as _
from app.images import clean_image, store
from app.labels import CONCERN_STATUS
from app.outbox import services as outbox
from app.supporters.models import Supporter
from app.text import clean, fold, tidy
from app.urls import external_url
from app.validators import is_valid_email

DEFAULT_CATEGORIES = (
    ("watch", "見守り・安否", "Wellbeing check"),
    ("isolation", "孤立・ひきこもり", "Isolation / withdrawal"),
    ("housing", "住まい・ごみ", "Housing / rubbish"),
    ("living", "生活の困りごと", "Daily-life difficulties"),
    ("children", "子ども・子育て", "Children / child-rearing"),
    ("elderly", "高齢・介護", "Old age / care"),
    ("disability", "障害", "Disability"),
    ("community", "地域の困りごと", "Neighbourhood issues"),
    ("other", "その他", "Other"),
)
TEXT_LIMIT = 5000
# Dates before this are typing mistakes (0006-02-02), not observations.
EARLIEST = date(2000, 1, 1)


# --- categories --------------------------------------------------------------------------

def ensure_concern_categories() -> None:
    """Add the standard categories that are missing (by code); never renames."""
    existing = set(db.session.scalars(select(ConcernCategory.code)))
    for position, (code, name, name_en) in enumerate(DEFAULT_CATEGORIES):
        if code not in existing:
            db.session.add(ConcernCategory(code=code, name=name, name_en=name_en,
                                           position=position))
    db.session.commit()


def list_categories(active_only: bool = False) -> list[ConcernCategory]:
    query = select(ConcernCategory).order_by(ConcernCategory.position, ConcernCategory.id)
    if active_only:
        query = query.where(ConcernCategory.active.is_(True))
    return list(db.session.scalars(query))


def _category_name(name: str) -> str:
    name = clean(name)
    if not name:
        raise InvalidInput(_("分類名を入力してください。"), field="name")
    if len(name) > 100:
        raise InvalidInput(_("%(max)d文字以内で入力してください。", max=100), field="name")
    return name


def get_category(category_id: int) -> ConcernCategory:
    category = db.session.get(ConcernCategory, category_id)
    if category is None:
        raise NotFound(category_id)
    return category


def add_category(name: str, name_en: str = "", *, actor) -> ConcernCategory:
    name = _category_name(name)
    if db.session.scalar(select(ConcernCategory).where(ConcernCategory.name == name)):
        raise InvalidInput(_("同じ名前の分類がすでにあります。"), field="name")
    position = (db.session.scalar(select(func.max(ConcernCategory.position))) or 0) + 1
    category = ConcernCategory(code=f"c{position}-{utcnow():%Y%m%d%H%M%S}", name=name,
                               name_en=clean(name_en)[:100], position=position)
    db.session.add(category)
    audit.record("concern_category.create", "concern_category", None, name, actor=actor)
    db.session.commit()
    _forget_pick_lists()
    return category


def update_category(category: ConcernCategory, name: str, name_en: str = "",
                    active: bool = True, *, actor) -> None:
    name = _category_name(name)
    clash = db.session.scalar(select(ConcernCategory).where(
        ConcernCategory.name == name, ConcernCategory.id != category.id))
    if clash:
        raise InvalidInput(_("同じ名前の分類がすでにあります。"), field="name")
    category.name, category.name_en, category.active = name, clean(name_en)[:100], active
    audit.record("concern_category.update", "concern_category", category.id, name, actor=actor)
    db.session.commit()
    _forget_pick_lists()


def _forget_pick_lists() -> None:
    from app.extensions import cache
    cache.delete(rules.PICK_LISTS_KEY)


# --- taking a report -----------------------------------------------------------------------

@dataclass
class Photo:
    """An uploaded file as received: checked and re-encoded by submit_concern."""

    data: bytes
    filename: str = ""


def _event(concern: Concern, kind: str, actor, **values) -> ConcernEvent:
    """A timeline entry; `actor` is staff, the reporter (a supporter) or None (the system)."""
    staff_id, name, actor_kind = actors.stamp(actor, other="reporter")
    event = ConcernEvent(concern_id=concern.id, kind=kind, staff_id=staff_id, actor=name,
                         actor_kind=actor_kind, **values)
    db.session.add(event)
    return event


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
    for key, limit in (("place", 200), ("address", 300), ("reporter_name", 100),
                       ("reporter_phone", 40), ("reporter_email", 254)):
        if len(data.get(key) or "") > limit:
            problems[key] = _("%(max)d文字以内で入力してください。", max=limit)
    return problems


def _next_reference(year: int) -> str:
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
    data = {key: ((clean(value) if key == "reporter_phone" else tidy(value))
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
        reference=_next_reference(local.year),
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
    _event(concern, "created", staff or reporter or actors.SOMEONE, status_to="received",
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


# --- reading -----------------------------------------------------------------------------------

def get_concern(concern_id: int) -> Concern:
    concern = db.session.get(Concern, concern_id)
    if concern is None:
        raise NotFound(concern_id)
    return concern


def view_concern(concern_id: int, *, actor) -> Concern:
    """A concern for a staff member to read; the view is written to the audit log."""
    concern = get_concern(concern_id)
    audit.record("concern.view", "concern", concern.id, params={"reference": concern.reference},
                 actor=actor)
    db.session.commit()
    return concern


def find_by_reference(reference: str) -> Concern | None:
    reference = clean(reference).upper()
    return db.session.scalar(select(Concern).where(Concern.reference == reference))


def timeline(concern: Concern, *, for_reporter: bool = False) -> list[ConcernEvent]:
    """The timeline, oldest first; the reporter's version has no notes, no names of staff."""
    query = select(ConcernEvent).where(ConcernEvent.concern_id == concern.id)
    if for_reporter:
        query = query.where(ConcernEvent.kind.in_(("created", "status", "message")))
    return list(db.session.scalars(query.order_by(ConcernEvent.at, ConcernEvent.id)))


def reports_of(supporter: Supporter) -> list[Concern]:
    return list(db.session.scalars(
        select(Concern).options(joinedload(Concern.category))
        .where(Concern.reporter_supporter_id == supporter.id)
        .order_by(Concern.created_at.desc(), Concern.id.desc())))


def report_of(supporter: Supporter, reference: str) -> Concern:
    """One of the supporter's own reports; anyone else's is not found."""
    concern = find_by_reference(reference)
    if concern is None or concern.reporter_supporter_id != supporter.id:
        raise NotFound(reference)
    return concern


def assignable_staff(concern: Concern) -> list[StaffUser]:
    """Coordinators of the concern's area first, then every other active staff member."""
    area_staff = coordinators_for(concern.area_id) if concern.area_id else []
    others = [s for s in db.session.scalars(select(StaffUser).where(StaffUser.active.is_(True))
                                            .order_by(StaffUser.kana, StaffUser.id))
              if s not in area_staff]
    return area_staff + others


# --- the workflow ---------------------------------------------------------------------------

def _require_not_erased(concern: Concern) -> None:
    if concern.erased_at is not None:
        raise InvalidState(_("保存期間を過ぎて個人情報を消去した記録は変更できません。"))


def change_status(concern: Concern, status: str, *, actor, connected_to: str = "",
                  duplicate_of: str = "", note: str = "") -> None:
    """Move a concern along its workflow; who and when go into the timeline."""
    _require_not_erased(concern)
    if status not in STATUSES:
        raise InvalidInput(_("状態を選んでください。"), field="status")
    if status not in rules.TRANSITIONS[concern.status]:
        raise InvalidState(_("「%(old)s」から「%(new)s」には変えられません。",
                             old=CONCERN_STATUS[concern.status], new=CONCERN_STATUS[status]))
    note = (note or "").strip()
    if len(note) > TEXT_LIMIT:
        raise InvalidInput(_("%(max)d文字以内で入力してください。", max=TEXT_LIMIT), field="note")
    original = None
    if status == "connected":
        connected_to = clean(connected_to)
        if not connected_to:
            raise InvalidInput(_("つなぎ先を選ぶか入力してください。"), field="connected_to")
        if len(connected_to) > 200:
            raise InvalidInput(_("%(max)d文字以内で入力してください。", max=200), field="connected_to")
    if status == "duplicate":
        original = find_by_reference(duplicate_of or "")
        if original is None:
            raise InvalidInput(_("元の受付番号（例: HN-2026-000123）が見つかりません。"),
                               field="duplicate_of")
        while original.duplicate_of is not None and original.status == "duplicate":
            original = original.duplicate_of
        if original.id == concern.id:
            raise InvalidInput(_("同じ記録を重複元にはできません。"), field="duplicate_of")

    old = concern.status
    concern.status = status
    now = utcnow()
    if old == "received" and concern.acknowledged_at is None:
        concern.acknowledged_at = now
    concern.closed_at = now if status in rules.CLOSED_STATUSES else None
    if status == "connected":
        concern.connected_to = connected_to
    if status == "duplicate":
        concern.duplicate_of_id = original.id
        _link(concern, original)
    elif old == "duplicate":
        concern.duplicate_of_id = None
    detail = {"connected": connected_to,
              "duplicate": original.reference if original is not None else ""}.get(status, "")
    _event(concern, "status", actor, status_from=old, status_to=status, body=detail)
    if note:
        _event(concern, "note", actor, body=note)
    audit.record("concern.status", "concern", concern.id, params={"from": old, "to": status},
                 actor=actor)
    db.session.commit()


def assign(concern: Concern, staff_id: int | None, *, actor) -> None:
    """Assign the concern to a staff member (None: back to unassigned)."""
    _require_not_erased(concern)
    staff = None
    if staff_id:
        staff = db.session.get(StaffUser, staff_id)
        if staff is None or not staff.active:
            raise InvalidInput(_("担当者を選び直してください。"), field="assignee_id")
    if concern.assignee_id == (staff.id if staff else None):
        return
    concern.assignee_id = staff.id if staff else None
    _event(concern, "assigned", actor, body=staff.name if staff else "")  # "": no one
    audit.record("concern.assign", "concern", concern.id,
                 params={"reference": concern.reference, "name": staff.name if staff else "-"},
                 actor=actor)
    if staff is not None and (actor is None or getattr(actor, "id", None) != staff.id
                              or not getattr(actor, "is_staff", False)):
        # Told at once (the link only, no details), unless they took it themselves.
        outbox.enqueue(staff.email,
                       _("【ほっとネット】気になることの担当になりました（%(ref)s）", ref=concern.reference),
                       "concern_assigned", staff_id=staff.id, staff=staff, concern=concern,
                       url=external_url("concerns.staff_detail", concern_id=concern.id))
    db.session.commit()


def _text(body: str, field: str) -> str:
    body = (body or "").strip()
    if not body:
        raise InvalidInput(_("内容を入力してください。"), field=field)
    if len(body) > TEXT_LIMIT:
        raise InvalidInput(_("%(max)d文字以内で入力してください。", max=TEXT_LIMIT), field=field)
    return body


def add_note(concern: Concern, body: str, *, actor) -> ConcernEvent:
    """An internal note: staff only, never shown or sent to the reporter."""
    _require_not_erased(concern)
    event = _event(concern, "note", actor, body=_text(body, "body"))
    db.session.commit()
    return event


def send_message(concern: Concern, body: str, *, actor) -> ConcernEvent:
    """A message for the reporter: shown on their page and e-mailed when they may be contacted."""
    _require_not_erased(concern)
    event = _event(concern, "message", actor, body=_text(body, "body"))
    queued = outbox.enqueue(
        concern.contact_email,
        _("【ほっとネット】ご報告（%(ref)s）についてのお知らせ", ref=concern.reference),
        "concern_message", supporter_id=concern.reporter_supporter_id, concern=concern,
        message=event.body,
        my_reports_url=external_url("concerns.my_reports") if concern.reporter else "")
    event.emailed = queued is not None
    db.session.commit()
    return event


# --- related concerns ---------------------------------------------------------------------------

def _link(concern: Concern, other: Concern) -> bool:
    low, high = sorted((concern.id, other.id))
    if db.session.get(ConcernLink, (low, high)) is not None:
        return False
    db.session.add(ConcernLink(low_id=low, high_id=high))
    return True


def link_concerns(concern: Concern, reference: str, *, actor) -> Concern:
    """Mark two concerns as about the same household or place."""
    other = find_by_reference(reference or "")
    if other is None:
        raise InvalidInput(_("受付番号（例: HN-2026-000123）が見つかりません。"), field="reference")
    if other.id == concern.id:
        raise InvalidInput(_("同じ記録どうしは関連づけられません。"), field="reference")
    if _link(concern, other):
        _event(concern, "linked", actor, body=other.reference)
        _event(other, "linked", actor, body=concern.reference)
        db.session.commit()
    return other


def unlink_concerns(concern: Concern, other_id: int) -> None:
    low, high = sorted((concern.id, other_id))
    link = db.session.get(ConcernLink, (low, high))
    if link is not None:
        db.session.delete(link)
        db.session.commit()


def related(concern: Concern) -> list[Concern]:
    ids = select(ConcernLink.high_id).where(ConcernLink.low_id == concern.id).union(
        select(ConcernLink.low_id).where(ConcernLink.high_id == concern.id))
    return list(db.session.scalars(select(Concern).where(Concern.id.in_(ids))
                                   .order_by(Concern.created_at.desc())))


def _bigrams(text: str) -> set[str]:
    folded = fold(text)
    return {folded[i:i + 2] for i in range(len(folded) - 1)} or ({folded} if folded else set())


def possible_duplicates(concern: Concern, days: int = 90, limit: int = 5,
                        linked: list[Concern] | None = None) -> list[tuple[Concern, int]]:
    """Recent concerns of the same district whose text looks alike, with a % likeness.

    Likeness is the overlap of two-character pieces of the folded texts (Dice coefficient);
    it needs no index and works for Japanese, which has no spaces between words.
    """
    if concern.district_id is None or not concern.body:
        return []
    since = concern.created_at - timedelta(days=days)
    linked_ids = {c.id for c in (related(concern) if linked is None else linked)}
    candidates = db.session.scalars(
        select(Concern).where(Concern.district_id == concern.district_id,
                              Concern.id != concern.id, Concern.created_at >= since,
                              Concern.created_at <= concern.created_at + timedelta(days=days),
                              Concern.erased_at.is_(None))
        .order_by(Concern.created_at.desc()).limit(300))
    mine = _bigrams(concern.body + concern.place)
    found = []
    for other in candidates:
        if other.id in linked_ids:
            continue
        theirs = _bigrams(other.body + other.place)
        if not mine or not theirs:
            continue
        score = 2 * len(mine & theirs) / (len(mine) + len(theirs))
        if score >= 0.3:
            found.append((other, round(score * 100)))
    found.sort(key=lambda pair: -pair[1])
    return found[:limit]

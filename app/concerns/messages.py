"""Internal notes and messages to the reporter."""
from __future__ import annotations

from sqlalchemy import select

from app import actors
from app.concerns.intake import TEXT_LIMIT
from app.concerns.models import (
    Concern,
    ConcernEvent,
)
from app.concerns.rules import recent_enough_to_be_resent
from app.concerns.timeline import add_event
from app.concerns.workflow import require_not_erased
from app.errors import InvalidInput
from app.extensions import db
from app.i18n import gettext as _
from app.outbox import services as outbox
from app.urls import external_url


def _text(body: str, field: str) -> str:
    body = (body or "").strip()
    if not body:
        raise InvalidInput(_("内容を入力してください。"), field=field)
    if len(body) > TEXT_LIMIT:
        raise InvalidInput(_("%(max)d文字以内で入力してください。", max=TEXT_LIMIT), field=field)
    return body


def _sent_already(concern: Concern, kind: str, body: str, actor) -> ConcernEvent | None:
    """The concern's latest note or message (`kind`) when it is this one sent again."""
    staff_id, _name, _kind = actors.stamp(actor, other="reporter")
    last = db.session.scalar(
        select(ConcernEvent).where(ConcernEvent.concern_id == concern.id, ConcernEvent.kind == kind)
        .order_by(ConcernEvent.at.desc(), ConcernEvent.id.desc()).limit(1))
    if (last is not None and last.staff_id == staff_id and last.body == body
            and recent_enough_to_be_resent(last.at)):
        return last
    return None


def add_note(concern: Concern, body: str, *, actor) -> ConcernEvent:
    """An internal note: staff only, never shown or sent to the reporter. The same note sent
    again (_sent_already) is the first one."""
    require_not_erased(concern)
    body = _text(body, "body")
    if (first := _sent_already(concern, "note", body, actor)) is not None:
        return first
    event = add_event(concern, "note", actor, body=body)
    db.session.commit()
    return event


def send_message(concern: Concern, body: str, *, actor) -> ConcernEvent:
    """A message for the reporter: shown on their page and e-mailed when they may be contacted.
    The same message sent again (_sent_already) is the first one, shown and mailed once."""
    require_not_erased(concern)
    body = _text(body, "body")
    if (first := _sent_already(concern, "message", body, actor)) is not None:
        return first
    event = add_event(concern, "message", actor, body=body)
    queued = outbox.enqueue(
        concern.contact_email,
        _("【ほっとネット】ご報告（%(ref)s）についてのお知らせ", ref=concern.reference),
        "concern_message", supporter_id=concern.reporter_supporter_id, concern=concern,
        message=event.body,
        my_reports_url=external_url("concerns.my_reports") if concern.reporter else "")
    event.emailed = queued is not None
    db.session.commit()
    return event

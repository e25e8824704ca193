"""Internal notes and messages to the reporter."""
from __future__ import annotations

from app.concerns.intake import TEXT_LIMIT
from app.concerns.models import (
    Concern,
    ConcernEvent,
)
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


def add_note(concern: Concern, body: str, *, actor) -> ConcernEvent:
    """An internal note: staff only, never shown or sent to the reporter."""
    require_not_erased(concern)
    event = add_event(concern, "note", actor, body=_text(body, "body"))
    db.session.commit()
    return event


def send_message(concern: Concern, body: str, *, actor) -> ConcernEvent:
    """A message for the reporter: shown on their page and e-mailed when they may be contacted."""
    require_not_erased(concern)
    event = add_event(concern, "message", actor, body=_text(body, "body"))
    queued = outbox.enqueue(
        concern.contact_email,
        _("【ほっとネット】ご報告（%(ref)s）についてのお知らせ", ref=concern.reference),
        "concern_message", supporter_id=concern.reporter_supporter_id, concern=concern,
        message=event.body,
        my_reports_url=external_url("concerns.my_reports") if concern.reporter else "")
    event.emailed = queued is not None
    db.session.commit()
    return event

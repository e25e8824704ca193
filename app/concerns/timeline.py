"""A concern's timeline: entries stored as codes (who, what), read oldest first."""
from __future__ import annotations

from sqlalchemy import select

from app import actors
from app.concerns.models import (
    Concern,
    ConcernEvent,
)
from app.extensions import db


def add_event(concern: Concern, kind: str, actor, **values) -> ConcernEvent:
    """A timeline entry; `actor` is staff, the reporter (a supporter) or None (the system)."""
    staff_id, name, actor_kind = actors.stamp(actor, other="reporter")
    event = ConcernEvent(concern_id=concern.id, kind=kind, staff_id=staff_id, actor=name,
                         actor_kind=actor_kind, **values)
    db.session.add(event)
    return event




def timeline(concern: Concern, *, for_reporter: bool = False) -> list[ConcernEvent]:
    """The timeline, oldest first; the reporter's version has no notes, no names of staff."""
    query = select(ConcernEvent).where(ConcernEvent.concern_id == concern.id)
    if for_reporter:
        query = query.where(ConcernEvent.kind.in_(("created", "status", "message")))
    return list(db.session.scalars(query.order_by(ConcernEvent.at, ConcernEvent.id)))

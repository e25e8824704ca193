"""A supporter's history: who changed what, when (codes and values, see app.actors)."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app import actors
from app.extensions import db
from app.geography.models import District
from app.supporters.models import (
    BusinessCategory,
    Supporter,
    SupporterChange,
)

# --- history -----------------------------------------------------------------------------

def display_value(key: str, value):
    if value is None or value == "":
        return ""
    if key == "district_id":
        district = db.session.get(District, value)
        return district.name if district else str(value)
    if key == "business_category_id":
        category = db.session.get(BusinessCategory, value)
        return category.name if category else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):  # codes (can_help): words when the history is read
        return ",".join(str(v) for v in value)
    return str(value)


def record_change(s: Supporter, action: str, changes: dict | None = None, *, actor) -> None:
    """Add a history entry: the action code, {field: [old, new]}, and who (see app.actors)."""
    staff_id, name, kind = actors.stamp(actor)
    db.session.add(SupporterChange(supporter_id=s.id, staff_id=staff_id, actor=name,
                                   actor_kind=kind, action=action, changes=changes or {}))


def history(s: Supporter) -> list[SupporterChange]:
    return list(db.session.scalars(
        select(SupporterChange).where(SupporterChange.supporter_id == s.id)
        .order_by(SupporterChange.at.desc(), SupporterChange.id.desc())
    ))

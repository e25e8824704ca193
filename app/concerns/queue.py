"""The staff queue of concerns: filters, one page, counts for the tiles, the CSV export.

At a million concerns an exact count of a whole area costs more than the page itself, so the
list's total is counted up to COUNT_CAP ("more than 1,000"); the tiles count open concerns
only, which an index on (area, status, assignee, created) answers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, literal, or_, select, union_all
from sqlalchemy.orm import joinedload

from app.accounts.models import StaffUser
from app.accounts.services import Viewer
from app.audit import services as audit
from app.concerns.models import (
    OPEN_STATUSES,
    STATUSES,
    URGENCIES,
    Concern,
    ConcernCategory,
    is_open,
)
from app.concerns.rules import PICK_LISTS_KEY, overdue_clause
from app.extensions import db
from app.geography.models import Area, District, Named
from app.labels import Choice
from app.site import fragment_key
from app.text import clean


@dataclass
class QueueFilters:
    area_ids: list[int] | None = None  # None: every area
    status: str = ""                     # a status, "open", or "" for all
    category_id: int | None = None
    assignee: str = ""                   # "", "me", "none"
    overdue: bool = False
    urgency: str = ""
    q: str = ""
    # "My areas" also shows concerns with no district yet: someone has to place them.
    with_unplaced: bool = False


def _visible(viewer: Viewer | None):
    """Concerns whose personal details the viewer may see (their areas, and no area yet)."""
    if viewer is None or viewer.scope is None:
        return None
    return or_(Concern.area_id.in_(sorted(viewer.scope)), Concern.area_id.is_(None))


def _filtered(query, f: QueueFilters, me: Viewer | None):
    if f.area_ids is not None:
        if f.area_ids and f.with_unplaced:
            query = query.where(or_(Concern.area_id.in_(f.area_ids), Concern.area_id.is_(None)))
        else:
            query = query.where(Concern.area_id.in_(f.area_ids) if f.area_ids
                                else Concern.area_id.is_(None))
    if f.status == "open":
        query = query.where(is_open())
    elif f.status in STATUSES:
        query = query.where(Concern.status == f.status)
    if f.category_id:
        query = query.where(Concern.category_id == f.category_id)
    if f.assignee == "me" and me is not None:
        query = query.where(Concern.assignee_id == me.id)
    elif f.assignee == "none":
        query = query.where(Concern.assignee_id.is_(None))
    if f.overdue:
        query = query.where(overdue_clause())
    if f.urgency in URGENCIES:
        query = query.where(Concern.urgency == f.urgency)
    if f.q:
        q = clean(f.q)
        if q.upper().startswith("HN-"):
            query = query.where(Concern.reference == q.upper())
        else:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(Concern.body.like(pattern, escape="\\"),
                                    Concern.place.like(pattern, escape="\\"),
                                    Concern.reference.like(pattern, escape="\\")))
            # What a concern says is searched only where the viewer may read it.
            visible = _visible(me)
            if visible is not None:
                query = query.where(visible)
    return query


COUNT_CAP = 1000
URGENT_PINNED = 20


class Name(Named):
    """A name read with a row of the queue (its category, district, area, assignee)."""

    __slots__ = ("name", "name_en")

    def __init__(self, name: str, name_en: str = ""):
        self.name, self.name_en = name, name_en


class QueueRow(NamedTuple):
    """What the queue shows of one concern (the text and personal details stay in the
    database), read as plain values: a page of them costs a fraction of loaded models."""
    id: int
    reference: str
    created_at: datetime
    urgency: str
    status: str
    area_id: int | None
    body: str
    place: str
    category: Name
    district: Name | None
    area: Name | None
    assignee: Name | None


_ROW_COLUMNS = (Concern.id, Concern.reference, Concern.created_at, Concern.urgency,
                Concern.status, Concern.area_id, Concern.body, Concern.place,
                ConcernCategory.name, ConcernCategory.name_en, District.name, District.name_en,
                Area.name, Area.name_en, StaffUser.name)


def _queue_rows(parts: list[tuple[QueueFilters, int, int]], me: Viewer | None
                ) -> list[list[QueueRow]]:
    """For each (filters, limit, offset): matching concerns, newest first, with the names each
    row shows; all parts in one statement (UNION ALL of each part's ids, then the rows)."""
    chosen = union_all(*(
        select(ids.c.part, ids.c.concern_id).select_from(ids) for ids in (
            _filtered(select(literal(n).label("part"), Concern.id.label("concern_id"))
                      .select_from(Concern), f, me)
            .order_by(Concern.created_at.desc(), Concern.id.desc())
            .limit(limit).offset(offset).subquery()
            for n, (f, limit, offset) in enumerate(parts)))).subquery()
    query = (select(chosen.c.part, *_ROW_COLUMNS).select_from(chosen)
             .join(Concern, Concern.id == chosen.c.concern_id)
             .outerjoin(ConcernCategory, ConcernCategory.id == Concern.category_id)
             .outerjoin(District, District.id == Concern.district_id)
             .outerjoin(Area, Area.id == Concern.area_id)
             .outerjoin(StaffUser, StaffUser.id == Concern.assignee_id)
             .order_by(chosen.c.part, Concern.created_at.desc(), Concern.id.desc()))
    found: list[list[QueueRow]] = [[] for _part in parts]
    for r in db.session.execute(query):
        found[r[0]].append(QueueRow(
            *r[1:9], Name(r[9] or "", r[10] or ""),
            None if r[11] is None else Name(r[11], r[12] or ""),
            None if r[13] is None else Name(r[13], r[14] or ""),
            None if r[15] is None else Name(r[15])))
    return found


def page_and_pinned(f: QueueFilters, me: Viewer | None, page: int = 1, per_page: int = 25
                    ) -> tuple[list[QueueRow], list[QueueRow]]:
    """One page of concerns, newest first (how many match: waiting_counts(matching=f)), and
    on the first page the urgent ones not yet closed among those the filters choose, pinned
    above the list so none waits behind routine ones (a short index range: urgent open
    concerns are few)."""
    parts = [(f, per_page, (page - 1) * per_page)]
    pinning = _pinned_filters(f) if page == 1 else None
    if pinning is not None:
        parts.append((pinning, URGENT_PINNED, 0))
    found = _queue_rows(parts, me)
    return found[0], found[1] if pinning is not None else []


def _pinned_filters(f: QueueFilters) -> QueueFilters | None:
    """The filters narrowed to urgent concerns not yet closed; None when the list is of
    others only (closed ones, or another urgency): nothing to pin above it."""
    if f.urgency not in ("", "urgent") or f.status not in ("", "open", *OPEN_STATUSES):
        return None
    return replace(f, urgency="urgent", status=f.status if f.status in OPEN_STATUSES else "open")


def export_query(f: QueueFilters, me: Viewer):
    """What the CSV export holds: the matching concerns whose personal details the viewer
    may see (concerns of other areas are left out)."""
    query = _filtered(select(Concern), f, me)
    visible = _visible(me)
    return query if visible is None else query.where(visible)


def count_export(f: QueueFilters, me: Viewer) -> int:
    return db.session.scalar(select(func.count()).select_from(
        export_query(f, me).with_only_columns(Concern.id).subquery())) or 0


def iter_export(f: QueueFilters, me: Viewer):
    """Concerns for the CSV export, newest first as on the screen, in pages so that memory
    stays flat. `me` is a Viewer
    (plain values), so nothing here needs an account the session has let go of."""
    last_id = None
    while True:
        query = export_query(f, me).options(
            joinedload(Concern.category), joinedload(Concern.district),
            joinedload(Concern.assignee))
        if last_id is not None:
            query = query.where(Concern.id < last_id)
        rows = list(db.session.scalars(query.order_by(Concern.id.desc()).limit(500)))
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id
        db.session.expunge_all()


def record_export(f: QueueFilters, count: int, *, actor) -> None:
    audit.record("concern.export", "concern", None,
                 params={"count": count, "filters": {k: v for k, v in asdict(f).items() if v}},
                 actor=actor)
    db.session.commit()


def waiting_counts(area_ids: list[int] | None, me: Viewer, with_unplaced: bool = False,
                   matching: QueueFilters | None = None) -> dict[str, int]:
    """The dashboard's tiles, in one statement: new and overdue (both still 受付) and
    unassigned open concerns in the areas, and the open concerns assigned to me anywhere;
    with `matching`, also how many concerns the list's filters match ("matching", counted up
    to COUNT_CAP + 1), in the same statement.

    Each part is a short index range: 受付 concerns are few, the unassigned are counted up
    to COUNT_CAP + 1, and mine come from the assignee index.
    """
    scope = QueueFilters(area_ids=area_ids, with_unplaced=with_unplaced)
    received = _filtered(select(Concern.created_at, Concern.status), scope, me).where(
        Concern.status == "received").subquery()
    unassigned = _filtered(select(Concern.id), QueueFilters(area_ids=area_ids, status="open",
                                                       assignee="none",
                                                       with_unplaced=with_unplaced), me
                           ).limit(COUNT_CAP + 1).subquery()
    counts = [
        select(func.count()).select_from(received).scalar_subquery(),
        select(func.count()).select_from(received)
        .where(overdue_clause(received.c)).scalar_subquery(),
        select(func.count()).select_from(unassigned).scalar_subquery(),
        select(func.count()).select_from(Concern)
        .where(Concern.assignee_id == me.id, is_open()).scalar_subquery(),
    ]
    if matching is not None:
        counts.append(_count_matching(matching, me, COUNT_CAP).scalar_subquery())
    values = db.session.execute(select(*counts)).one()
    return dict(zip(("new", "overdue", "unassigned", "mine", "matching"), values, strict=False))


def _count_matching(f: QueueFilters, me: Viewer | None, cap: int | None):
    """How many concerns match; with a cap, counting stops at cap + 1 ("more than cap"):
    over a million concerns an exact count of a whole area costs more than the page itself."""
    query = _filtered(select(Concern.id), f, me)
    if cap is not None:
        query = query.limit(cap + 1)
    return select(func.count()).select_from(query.subquery())



def names_key(lists: tuple[list[Choice], list[Choice]]) -> str:
    """A short key that changes when an area or category is renamed: the charts, which name
    them, are cached under it, so a new name shows at once instead of after the cache time."""
    return fragment_key(lists)


def pick_lists() -> tuple[list[Choice], list[Choice]]:
    """Areas and categories for the filters, kept in the cache for a short while (one
    statement fewer per dashboard view); changing a category clears it."""
    from app.extensions import cache

    found = cache.get(PICK_LISTS_KEY)
    if found is None:
        areas = [Choice(a.id, a.name, a.name_en) for a in db.session.scalars(
            select(Area).order_by(Area.position, Area.id))]
        categories = [Choice(c.id, c.name, c.name_en) for c in db.session.scalars(
            select(ConcernCategory).order_by(ConcernCategory.position, ConcernCategory.id))]
        found = (areas, categories)
        cache.set(PICK_LISTS_KEY, found)
    return found

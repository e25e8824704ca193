"""The staff queue of concerns: filters, one page, counts for the tiles, the CSV export.

At a million concerns an exact count of a whole area costs more than the page itself, so the
list's total is counted up to COUNT_CAP ("more than 1,000"); the tiles count open concerns
only, which an index on (area, status, assignee, created) answers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import String, and_, bindparam, func, literal, or_, select, union_all
from sqlalchemy.orm import joinedload

from app.accounts.models import StaffUser
from app.accounts.services import Viewer
from app.audit import services as audit
from app.concerns.intake import reference_of
from app.concerns.models import (
    OPEN_STATUSES,
    STATUSES,
    URGENCIES,
    Concern,
    ConcernCategory,
    is_open,
)
from app.concerns.rules import PICK_LISTS_KEY, overdue_before, overdue_clause
from app.extensions import cache as shared_cache
from app.extensions import db
from app.geography.models import Area, District, Named
from app.labels import Choice
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


def _in_areas_or_unplaced(areas):
    """Concerns in these areas (a list, or a parameter holding one) or with no area yet: those
    whose personal details staff serving the areas may see, as no area is anybody's yet."""
    return or_(Concern.area_id.in_(areas), Concern.area_id.is_(None))


# The filters make their conditions in two halves: the form (which conditions there are, a
# tuple of words) and the values (parameters, named with a prefix so that several sets of
# filters can sit in one statement). The dashboard's statements are built once per form and
# kept: building one and its cache key took longer than the database took to run it.

def _like_escaped(text: str) -> str:
    """Typed text matched as it is by LIKE (its %, _ and \\ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(f: QueueFilters, me: Viewer | None, key: str = "") -> tuple[tuple[str, ...], dict]:
    """(form, parameters) of the filters; `key` prefixes the parameters' names."""
    form, values = [], {}
    if f.area_ids is not None:
        if not f.area_ids:
            form.append("no area")
        else:
            form.append("areas or none" if f.with_unplaced else "areas")
            values["areas"] = list(f.area_ids)
    if f.status == "open":
        form.append("open")
    elif f.status in STATUSES:
        form.append("status")
        values["status"] = f.status
    if f.category_id:
        form.append("category")
        values["category"] = f.category_id
    if f.assignee == "me" and me is not None:
        form.append("mine")
        values["me"] = me.id
    elif f.assignee == "none":
        form.append("nobody's")
    if f.overdue:
        form.append("overdue")
        values["before"] = overdue_before()
    if f.urgency in URGENCIES:
        form.append("urgency")
        values["urgency"] = f.urgency
    if f.q:
        q = clean(f.q)
        if reference := reference_of(q):
            form.append("reference")
            values["reference"] = reference
        elif q.upper().startswith("HN-"):  # the start of one (HN-2026-0): those it begins
            form.append("reference begins")
            values["pattern"] = _like_escaped(q.upper()) + "%"
        elif words := q.split()[:MAX_WORDS]:
            # Words (each of them, wherever it is said), in upper or lower case alike on both
            # databases; a reference number said without its HN- (2026-264, as it is read out
            # on the telephone) finds that one too.
            reference = bare_reference(q) if len(words) == 1 else None
            form.append(f"{'words or reference' if reference else 'words'}:{len(words)}")
            if reference:
                values["reference"] = reference
            for n, word in enumerate(words):
                values[f"pattern{n}"] = "%" + _like_escaped(word) + "%"
            # What a concern says is searched only where the viewer may read it.
            if me is not None and me.scope is not None:
                form.append("visible")
                values["visible"] = sorted(me.scope)
    return tuple(form), {key + name: value for name, value in values.items()}


def _conditions(form: tuple[str, ...], key: str = "") -> list:
    """The SQL conditions of a form from _where, with parameters for its values."""
    def value(name: str, **kw):
        return bindparam(key + name, **kw)

    out = []
    for part in form:
        if part == "no area":
            out.append(Concern.area_id.is_(None))
        elif part == "areas":
            out.append(Concern.area_id.in_(value("areas", expanding=True)))
        elif part == "areas or none":
            out.append(_in_areas_or_unplaced(value("areas", expanding=True)))
        elif part == "open":
            out.append(is_open())
        elif part == "status":
            out.append(Concern.status == value("status"))
        elif part == "category":
            out.append(Concern.category_id == value("category"))
        elif part == "mine":
            out.append(Concern.assignee_id == value("me"))
        elif part == "nobody's":
            out.append(Concern.assignee_id.is_(None))
        elif part == "overdue":
            out.append(overdue_clause(before=value("before")))
        elif part == "urgency":
            out.append(Concern.urgency == value("urgency"))
        elif part == "reference":
            out.append(Concern.reference == value("reference"))
        elif part == "reference begins":
            out.append(Concern.reference.like(value("pattern", type_=String), escape="\\"))
        elif part.startswith("words"):
            kind, _colon, count = part.partition(":")
            words = and_(*(_says(value(f"pattern{n}", type_=String)) for n in range(int(count))))
            if "visible" in form:
                words = and_(words, _in_areas_or_unplaced(value("visible", expanding=True)))
            out.append(or_(Concern.reference == value("reference"), words)
                       if kind == "words or reference" else words)
    return out


MAX_WORDS = 5  # words of a search (more are not looked for)


def _says(pattern):
    """A concern whose text, place or number holds the word (a LIKE pattern, any case)."""
    return or_(Concern.body.ilike(pattern, escape="\\"),
               Concern.place.ilike(pattern, escape="\\"),
               Concern.reference.ilike(pattern, escape="\\"))


def bare_reference(q: str) -> str | None:
    """The reference number of 2026-264 (one said without its HN-), or None."""
    return reference_of("HN-" + clean(q))


def means_reference(q: str) -> bool:
    """Whether a search names a reference number (as written, or without its HN-): it then
    looks past the list's own state and areas."""
    return bool(q) and (reference_of(q) or bare_reference(q)) is not None


def _filtered(query, f: QueueFilters, me: Viewer | None):
    """A query of concerns narrowed by the filters (built with their values, for one use)."""
    form, values = _where(f, me)
    return query.where(*_conditions(form)).params(values)


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
    forms, values = [], {}
    for n, (f, limit, offset) in enumerate(parts):
        form, part_values = _where(f, me, f"p{n}_")
        forms.append(form)
        values.update(part_values, **{f"p{n}_limit": limit, f"p{n}_offset": offset})
    found: list[list[QueueRow]] = [[] for _part in parts]
    for r in db.session.execute(_rows_statement(tuple(forms)), values):
        found[r[0]].append(QueueRow(
            *r[1:9], Name(r[9] or "", r[10] or ""),
            None if r[11] is None else Name(r[11], r[12] or ""),
            None if r[13] is None else Name(r[13], r[14] or ""),
            None if r[15] is None else Name(r[15])))
    return found


@lru_cache(maxsize=256)
def _rows_statement(forms: tuple[tuple[str, ...], ...]):
    """_queue_rows' statement for these forms of filters (parameters p0_…, p1_…)."""
    chosen = union_all(*(
        select(ids.c.part, ids.c.concern_id).select_from(ids) for ids in (
            select(literal(n).label("part"), Concern.id.label("concern_id"))
            .where(*_conditions(form, f"p{n}_"))
            .order_by(Concern.created_at.desc(), Concern.id.desc())
            .limit(bindparam(f"p{n}_limit")).offset(bindparam(f"p{n}_offset")).subquery()
            for n, form in enumerate(forms)))).subquery()
    return (select(chosen.c.part, *_ROW_COLUMNS).select_from(chosen)
            .join(Concern, Concern.id == chosen.c.concern_id)
            .outerjoin(ConcernCategory, ConcernCategory.id == Concern.category_id)
            .outerjoin(District, District.id == Concern.district_id)
            .outerjoin(Area, Area.id == Concern.area_id)
            .outerjoin(StaffUser, StaffUser.id == Concern.assignee_id)
            .order_by(chosen.c.part, Concern.created_at.desc(), Concern.id.desc()))


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
    return query if me.scope is None else query.where(_in_areas_or_unplaced(sorted(me.scope)))


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
    scope, values = _where(QueueFilters(area_ids=area_ids, with_unplaced=with_unplaced), me, "s_")
    nobodys, more = _where(QueueFilters(area_ids=area_ids, status="open", assignee="none",
                                        with_unplaced=with_unplaced), me, "u_")
    values.update(more, me=me.id, before=overdue_before())
    matched = None
    if matching is not None:
        matched, more = _where(matching, me, "m_")
        values.update(more)
    row = db.session.execute(_counts_statement(scope, nobodys, matched), values).one()
    return dict(zip(("new", "overdue", "unassigned", "mine", "matching"), row, strict=False))


@lru_cache(maxsize=256)
def _counts_statement(scope: tuple[str, ...], nobodys: tuple[str, ...],
                      matched: tuple[str, ...] | None):
    """waiting_counts' statement for these forms of filters (parameters s_…, u_…, m_…, me
    and before)."""
    received = select(Concern.created_at, Concern.status).where(
        *_conditions(scope, "s_"), Concern.status == "received").subquery()
    unassigned = (select(Concern.id).where(*_conditions(nobodys, "u_"))
                  .limit(COUNT_CAP + 1).subquery())
    counts = [
        select(func.count()).select_from(received).scalar_subquery(),
        select(func.count()).select_from(received)
        .where(overdue_clause(received.c, before=bindparam("before"))).scalar_subquery(),
        select(func.count()).select_from(unassigned).scalar_subquery(),
        select(func.count()).select_from(Concern)
        .where(Concern.assignee_id == bindparam("me"), is_open()).scalar_subquery(),
    ]
    if matched is not None:
        # How many match, counting up to COUNT_CAP + 1 ("more than 1,000"): over a million
        # concerns an exact count of a whole area costs more than the page itself.
        counts.append(select(func.count()).select_from(
            select(Concern.id).where(*_conditions(matched, "m_")).limit(COUNT_CAP + 1)
            .subquery()).scalar_subquery())
    return select(*counts)


@shared_cache.cached(key_prefix=PICK_LISTS_KEY)
def pick_lists() -> tuple[list[Choice], list[Choice]]:
    """Areas and categories for the filters, kept in the cache for a short while (one
    statement fewer per dashboard view); changing a category clears it."""
    areas = [Choice(a.id, a.name, a.name_en) for a in db.session.scalars(
        select(Area).order_by(Area.position, Area.id))]
    categories = [Choice(c.id, c.name, c.name_en) for c in db.session.scalars(
        select(ConcernCategory).order_by(ConcernCategory.position, ConcernCategory.id))]
    return areas, categories

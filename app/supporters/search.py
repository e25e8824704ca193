"""Finding supporters: search terms and sort keys kept in step, filters, pages, exports."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from math import ceil
from typing import NamedTuple

from sqlalchemy import String, bindparam, case, event, func, or_, select
from sqlalchemy.orm import Session, aliased, joinedload

from app.extensions import db
from app.geography.models import Area, District, Station
from app.i18n import gettext as _
from app.supporters.models import STATUSES, Supporter
from app.supporters.records import LIVE_STATUSES
from app.supporters.searchindex import dialect_name, matching, terms_query, with_terms
from app.text import digits, email_key, fold, sort_key

# --- search terms and sort key ------------------------------------------------------------

def search_terms_for(s: Supporter) -> set[str]:
    """Folded terms under which a supporter is found by a prefix search.

    Every suffix of a name, reading or business name (so "田" finds 山田, "はなこ" finds
    やまだ はなこ and "不動産" finds 山田不動産: each word is the start of one), the phone
    digits, their last four and the number without its area code (its last seven or eight
    digits, as a local number is said: 447-7050, 1234-5678), and the e-mail address and its
    domain. A word or the address's
    local part is not kept apart: it is the start of a suffix or of the address, which the
    prefix search finds already (a term more per word would only slow imports and searches).
    """
    terms: set[str] = set()
    longest = 0
    for text in (s.name, s.kana, s.business_name, s.business_kana, s.contact_person):
        if text:
            word = fold(text)
            terms.update([word[i:] for i in range(len(word))])
            longest = max(longest, len(word))
    if phone := digits(s.phone):
        terms.update((phone, phone[-4:]))
        if len(phone) > 8:
            terms.update((phone[-7:], phone[-8:]))
        longest = max(longest, len(phone))
    if email := email_key(s.email):
        terms.update((email, email.partition("@")[2]))
        longest = max(longest, len(email))
    terms.discard("")
    if longest > 254:  # (the longest term kept: a long address)
        terms = {term[:254] for term in terms}
    return terms


def search_text_for(s: Supporter) -> str:
    """The terms as stored and indexed (Supporter.search_terms): separated by spaces."""
    return " ".join(sorted(search_terms_for(s)))


def sort_key_for(s: Supporter) -> str:
    """五十音 order (as a dictionary sorts): by the reading, by the name when there is none."""
    reading = s.business_kana if s.kind == "business" else s.kana
    return sort_key(reading or s.display_name)[:200]


@event.listens_for(Session, "before_flush")
def _refresh_derived(session: Session, flush_context, instances) -> None:
    """Keep sort key, e-mail key and search terms in step with every supporter change."""
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, Supporter):
            continue
        for key, value in (("sort_key", sort_key_for(obj)), ("email_key", email_key(obj.email)),
                           ("search_terms", search_text_for(obj))):
            if getattr(obj, key) != value:  # (an unchanged value is not written again)
                setattr(obj, key, value)


# --- search ------------------------------------------------------------------------------

@dataclass
class RegistryFilters:
    q: str = ""
    area_id: int | None = None
    district_id: int | None = None
    kind: str = ""
    status: str = ""
    delivery: str = ""
    category_id: int | None = None
    station_id: int | None = None
    # The areas whose supporters the viewer may see (None: all); those with no district yet
    # are seen by every staff member, who place them.
    scope: frozenset[int] | None = None
    sort: str = "kana"        # one of SORTS
    descending: bool = False

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.__dict__.items()
                         if v and k not in ("scope", "sort", "descending"))

    def only_typed(self) -> bool:
        """Whether nothing but the search box narrows the list (the usual search)."""
        return self.codes().keys() <= {"q"}

    def codes(self) -> dict:
        """The filters that are set, as codes (for the audit log)."""
        return {k: v for k, v in self.__dict__.items()
                if v and k not in ("scope", "sort", "descending")}

    def contradiction(self) -> str:
        """Why the place filters cannot match anyone together ("" when they can): a district
        outside the chosen area or station, or outside the areas the viewer serves."""
        district = db.session.get(District, self.district_id) if self.district_id else None
        # An id no place has (an old bookmark, an edited address): said, not an empty list.
        # (Nothing is looked up or translated for a search without places: the usual one.)
        for wanted, model, label in ((self.district_id, District, "地区"),
                                     (self.area_id, Area, "圏域"),
                                     (self.station_id, Station, "ステーション")):
            if wanted and db.session.get(model, wanted) is None:
                return _("選んだ%(place)sは見つかりません（なくなったか、アドレスが違います）。選び直してください。",
                         place=_(label))
        if district is not None and self.scope is not None and district.area_id not in self.scope:
            return _("地区「%(district)s」はあなたの担当する圏域の外です。担当の圏域の地区を選んでください。",
                     district=district.label)
        area = db.session.get(Area, self.area_id) if self.area_id else None
        if area is not None and self.scope is not None and area.id not in self.scope:
            return _("%(area)sはあなたの担当する圏域の外です。", area=area.label)
        if not self.district_id or not (self.area_id or self.station_id):
            return ""
        if district is None:
            return ""
        if self.area_id and district.area_id != self.area_id:
            area = db.session.get(Area, self.area_id)
            return _("地区「%(district)s」は%(area)sではなく%(its)sにあります。地区か圏域を選び直してください。",
                     district=district.label, area=area.label if area else "",
                     its=district.area.label)
        if self.station_id and district.area.station_id != self.station_id:
            return _("地区「%(district)s」は、選んだステーションの担当ではありません。地区かステーションを選び直してください。",
                     district=district.label)
        return ""


# The registry list's sortable columns: the default is 五十音 (the reading).
SORTS = {
    "kana": (Supporter.sort_key,),
    "district": (District.position,),
    # 申込中 → 活動中 → 休止中 → 退会 → 見送り (the order of a supporter's life, not A–Z)
    "status": (case({code: n for n, code in enumerate(STATUSES)}, value=Supporter.status,
                    else_=len(STATUSES)),),
    "joined": (Supporter.joined_on,),
}


@dataclass
class Page:
    rows: list[ListRow]
    total: int
    page: int
    per_page: int
    area_totals: list[tuple[str, int]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))


def _query_term(q: str) -> str:
    """The folded form of what was typed; phone-like input becomes bare digits."""
    stripped = q.strip()
    if stripped and all(ch.isdigit() or ch in "-‐－ー ()（）　" for ch in stripped):
        return digits(stripped)
    return fold(stripped).lstrip("@")  # (@example.jp: the domain, as it is kept)


def where_place_and_kind(query, *, area_id: int | None = None, district_id: int | None = None,
                         kind: str = "", category_id: int | None = None,
                         station_id: int | None = None, district_ids=None):
    """Narrow a supporter query by station, area, district(s), person/business and business
    category. Shared by the registry's filters and newsletter audiences.
    """
    if district_id:
        query = query.where(Supporter.district_id == district_id)
    if district_ids:
        query = query.where(Supporter.district_id.in_(list(district_ids)))
    if area_id:
        query = query.where(Supporter.district_id.in_(
            select(District.id).where(District.area_id == area_id)))
    if station_id:
        query = query.where(Supporter.district_id.in_(
            select(District.id).join(Area).where(Area.station_id == station_id)))
    if kind:
        query = query.where(Supporter.kind == kind)
    if category_id:
        query = query.where(Supporter.business_category_id == category_id)
    return query


def _scope_clause(areas):
    """Within the areas served (a list, or a parameter standing for one); supporters not yet
    placed in a district are seen by every staff member, who place them."""
    return or_(Supporter.district_id.is_(None), Supporter.district_id.in_(
        select(District.id).where(District.area_id.in_(areas))))


def in_scope(query, scope: frozenset[int] | None):
    """Narrow a supporter query to the areas a staff member serves (None: no narrowing)."""
    if scope is None:
        return query
    return query.where(_scope_clause(sorted(scope)))


def where_matches(query, q: str):
    """Narrow a supporter query to those found by what was typed in a search box (a prefix
    search of the folded search terms)."""
    term = _query_term(q or "")
    if term:
        query = with_terms(query, [term], prefix=True)
    return query


def _status_clause(status: str):
    """The chosen status; by default the live ones (申込中・活動中・休止中)."""
    return Supporter.status == status if status else Supporter.status.in_(LIVE_STATUSES)


def _filtered(query, f: RegistryFilters, *, geography: bool = True):
    query = in_scope(query, f.scope)
    if f.q:
        query = where_matches(query, f.q)
    query = where_place_and_kind(
        query, area_id=f.area_id if geography else None,
        district_id=f.district_id if geography else None, kind=f.kind, category_id=f.category_id,
        station_id=f.station_id if geography else None)
    query = query.where(_status_clause(f.status))
    if f.delivery:
        query = query.where(Supporter.delivery == f.delivery)
    return query


def count(f: RegistryFilters) -> int:
    return db.session.scalar(_filtered(select(func.count(Supporter.id)), f)) or 0


class ListRow(NamedTuple):
    """A row of the registry list: the columns it shows, read as plain values (mapping a page
    of supporters to objects costs more than finding them)."""
    id: int
    kind: str
    name: str
    kana: str
    business_name: str
    business_kana: str
    status: str
    delivery: str
    phone: str | None
    district_id: int | None
    joined_on: date | None

    # The names as the model gives them (one rule).
    display_name = property(Supporter.display_name.fget)
    display_kana = property(Supporter.display_kana.fget)


LIST_COLUMNS = tuple(getattr(Supporter, name) for name in ListRow._fields)


@cache
def _rows_by_id():
    """The list's rows of the given supporters (built once: building a statement costs
    more than running it)."""
    return select(*LIST_COLUMNS).where(Supporter.id.in_(bindparam("ids", expanding=True)))


@cache
def _ids_and_areas():
    """Supporters' ids with the area of their district, joined (on PostgreSQL a lookup per
    supporter took twice as long as the join for a search that finds a thousand). Built
    once: an alias is costly to make (the district sort joins District itself, hence it)."""
    place = aliased(District)
    return (select(Supporter.id, place.area_id)
            .outerjoin(place, place.id == Supporter.district_id))


@cache
def _typed_search(dialect: str, scoped: bool, sort: str, descending: bool):
    """The one pass of a typed search with no other filter (the usual search), built once
    per database, kind of scope and order: the query of the typed text and the areas are
    parameters. (Building a statement and its cache key costs more than the database takes
    to run it.)"""
    query = _ids_and_areas().where(
        matching(bindparam("query", type_=String), dialect), _status_clause(""))
    if scoped:
        query = query.where(_scope_clause(bindparam("areas", expanding=True)))
    return (_ordered(query, RegistryFilters(sort=sort, descending=descending))
            .limit(ONE_PASS_LIMIT + 1))


# A search that matches at most this many supporters is done in one pass: their ids in
# order, counted per area here. More (a broad filter over a big registry) are counted and
# paged by the database instead, which then need not send every id.
ONE_PASS_LIMIT = 2000


def _plain_rows(statement, params: dict | None = None) -> list:
    """The rows of a statement of columns, as the database driver gives them (through the
    session's connection, in its transaction): the ORM's handling of a result costs more
    than the database itself for the thousand ids of a broad search."""
    return db.session.connection().execute(statement, params or {}).all()


def search(f: RegistryFilters, page: int = 1, per_page: int = 25,
           areas: list[Area] | None = None) -> Page:
    """One page of supporters in 五十音 order, with the total and the totals per area."""
    page = max(1, page)
    offset = (page - 1) * per_page
    matches = None
    term = _query_term(f.q) if f.q else ""
    if term and f.only_typed():
        dialect = dialect_name()
        params = {"query": terms_query([term], prefix=True, dialect=dialect)}
        if f.scope is not None:
            params["areas"] = sorted(f.scope)
        matches = _plain_rows(
            _typed_search(dialect, f.scope is not None, f.sort, f.descending), params)
    elif term:
        matches = _plain_rows(
            _ordered(_filtered(_ids_and_areas(), f), f)
            .limit(ONE_PASS_LIMIT + 1))
    if matches is not None and len(matches) <= ONE_PASS_LIMIT:
        totals = _area_totals(Counter(area for _id, area in matches), f, areas)
        ids = [supporter_id for supporter_id, _area in matches[offset:offset + per_page]]
        found = {row.id: row for row in map(ListRow._make, _plain_rows(
            _rows_by_id(), {"ids": ids}))}
        rows = [found[i] for i in ids if i in found]
    else:
        totals = area_totals(f, areas)
        rows = list(map(ListRow._make, _plain_rows(
            _ordered(_filtered(select(*LIST_COLUMNS), f), f).limit(per_page).offset(offset))))
    # The per-area totals follow every filter: the total is their sum.
    total = sum(n for _name, n in totals)
    return Page(rows=rows, total=total, page=page, per_page=per_page, area_totals=totals)


def _ordered(query, f: RegistryFilters):
    """The chosen column's order, then 五十音 and id (stable pages)."""
    columns = SORTS.get(f.sort, SORTS["kana"])
    if f.sort == "district":
        query = query.outerjoin(District, District.id == Supporter.district_id)
    keys = [(c.desc() if f.descending else c.asc()).nulls_last() if f.sort == "joined"
            else (c.desc() if f.descending else c) for c in columns]
    return query.order_by(*keys, Supporter.sort_key, Supporter.id)


def area_totals(f: RegistryFilters, areas: list[Area] | None = None) -> list[tuple[str, int]]:
    """How many supporters match in each area (with every filter, so they add up to the
    total); areas with none are left out when a place filter is set."""
    counts = dict(_plain_rows(
        _filtered(select(District.area_id, func.count(Supporter.id))
                  .select_from(Supporter).outerjoin(District), f)
        .group_by(District.area_id)))
    return _area_totals(counts, f, areas)


def _area_totals(counts: dict[int | None, int], f: RegistryFilters,
                 areas: list[Area] | None) -> list[tuple[str, int]]:
    """(area name, count) in the areas' order, as the list shows them."""
    if areas is None:
        areas = list(db.session.scalars(select(Area).order_by(Area.position)))
    placed = bool(f.area_id or f.district_id or f.station_id)
    result = [(a.label, counts.get(a.id, 0)) for a in areas
              if (f.scope is None or a.id in f.scope) and (not placed or counts.get(a.id))]
    if counts.get(None):
        result.append((_("地区未設定"), counts[None]))
    return result


def iter_filtered(f: RegistryFilters):
    """Every matching supporter in the chosen order, streamed (for exports and printing)."""
    query = _ordered(_filtered(select(Supporter), f), f).options(joinedload(Supporter.district))
    return db.session.scalars(query.execution_options(yield_per=500))

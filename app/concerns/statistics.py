"""Counts of concerns: the dashboard's figures and chart, and the newsletter's statistics block.

Counts only — nothing here reads a concern's text or who reported it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from app.concerns.models import STATUSES, Concern, ConcernCategory
from app.extensions import db
from app.formatting import today_tokyo
from app.geography.models import Area
from app.labels import localized
from app.smallcounts import SMALL_COUNT, Shown, shown, total  # noqa: F401 - SMALL_COUNT re-exported

# Counts under SMALL_COUNT are printed as a range in the newsletter, so that a rare kind of
# concern in a small area cannot point to a household; totals follow (app/smallcounts.py).


def months_back(n: int, until: date | None = None) -> list[str]:
    """The last n months as "YYYY-MM", oldest first, ending with the month of `until`."""
    first = (until or today_tokyo()).replace(day=1)
    return [f"{first - relativedelta(months=k):%Y-%m}" for k in range(n - 1, -1, -1)]


@dataclass
class DashboardFigures:
    status_counts: dict[str, int]
    by_month: "Chart"
    by_category: "Chart"


def dashboard_figures(area_ids: list[int] | None) -> DashboardFigures:
    """Counts by status and the two charts for the areas (None: all areas).

    The dashboard renders them inside a cached fragment (HOTNET_STATS_CACHE_SECONDS), so
    these queries run once per short while, not on every page view.
    """
    return DashboardFigures(status_counts(area_ids), per_area_per_month(area_ids),
                            per_category(area_ids))


def status_counts(area_ids: list[int] | None) -> dict[str, int]:
    query = select(Concern.status, func.count()).group_by(Concern.status)
    if area_ids is not None:
        query = query.where(Concern.area_id.in_(area_ids))
    found = dict(db.session.execute(query).all())
    return {status: found.get(status, 0) for status in STATUSES}


@dataclass
class Series:
    label: str
    values: list[int]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass
class Chart:
    """Rows of labelled numbers; the template draws bars and prints every number."""

    columns: list[str]
    series: list[Series] = field(default_factory=list)

    @property
    def peak(self) -> int:
        return max([v for s in self.series for v in s.values] + [1])


def per_area_per_month(area_ids: list[int] | None, months: int = 12) -> Chart:
    span = months_back(months)
    query = (select(Concern.area_id, Concern.month, func.count())
             .where(Concern.month >= span[0]).group_by(Concern.area_id, Concern.month))
    if area_ids is not None:
        query = query.where(Concern.area_id.in_(area_ids))
    counts = {(area_id, month): n for area_id, month, n in db.session.execute(query)}
    areas = db.session.scalars(select(Area).order_by(Area.position, Area.id)).all()
    chart = Chart(columns=span)
    for area in areas:
        if area_ids is None or area.id in area_ids:
            chart.series.append(Series(area.label,
                                       [counts.get((area.id, m), 0) for m in span]))
    if area_ids is None and any(a is None for a, _m in counts):
        from app.i18n import gettext as _
        chart.series.append(Series(_("地区不明"), [counts.get((None, m), 0) for m in span]))
    return chart


def per_category(area_ids: list[int] | None, months: int = 12) -> Chart:
    since = months_back(months)[0]
    query = (select(Concern.category_id, func.count()).where(Concern.month >= since)
             .group_by(Concern.category_id))
    if area_ids is not None:
        query = query.where(Concern.area_id.in_(area_ids))
    counts = dict(db.session.execute(query).all())
    chart = Chart(columns=[""])
    for category in db.session.scalars(select(ConcernCategory).order_by(ConcernCategory.position)):
        if category.active or counts.get(category.id):
            chart.series.append(Series(localized(category.name, category.name_en),
                                       [counts.get(category.id, 0)]))
    return chart


@dataclass
class NewsletterStatistics:
    """What a newsletter may print: counts per area and category over a period. Every figure
    is a `Shown` (exact, or a range where a small count is hidden inside it)."""

    start: date
    end: date
    areas: list[str]
    categories: list[str]
    cells: dict[tuple[str, str], Shown]
    area_totals: dict[str, Shown]
    category_totals: dict[str, Shown]
    total: Shown


def _month(d: date) -> str:
    return f"{d:%Y-%m}"


def newsletter_statistics(start: date, end: date) -> NewsletterStatistics:
    """Counts of concerns that arrived in the months from `start` to `end` (inclusive).

    Numbers under SMALL_COUNT are shown as a range; no text, place or person is read.
    """
    query = (select(Concern.area_id, Concern.category_id, func.count())
             .where(Concern.month >= _month(start), Concern.month <= _month(end))
             .group_by(Concern.area_id, Concern.category_id))
    counts = db.session.execute(query).all()
    areas = db.session.scalars(select(Area).order_by(Area.position, Area.id)).all()
    categories = db.session.scalars(select(ConcernCategory).order_by(ConcernCategory.position)).all()
    area_name = {a.id: a.name for a in areas}
    category_name = {c.id: c.name for c in categories}
    raw: dict[tuple[str, str], int] = {}
    for area_id, category_id, n in counts:
        key = (area_name.get(area_id, "—"), category_name.get(category_id, "—"))
        raw[key] = raw.get(key, 0) + n
    area_list = [a.name for a in areas]
    if any(a == "—" for a, _c in raw):
        area_list.append("—")
    used = {c for _a, c in raw}
    category_list = [c.name for c in categories if c.name in used or c.active]
    cells = {(a, c): shown(raw.get((a, c), 0)) for a in area_list for c in category_list}
    return NewsletterStatistics(
        start=start, end=end, areas=area_list, categories=category_list, cells=cells,
        area_totals={a: total(cells[(a, c)] for c in category_list) for a in area_list},
        category_totals={c: total(cells[(a, c)] for a in area_list) for c in category_list},
        total=total(cells.values()),
    )


# --- referrals and requests for help -------------------------------------------------------

@dataclass
class ReferralFigures:
    """Referrals of the last months by agency kind and area, their outcomes and the days to
    受理, and requests for help by answer — every count published as `Shown` (small counts
    as ranges, so the figures cannot be undone by subtraction)."""

    since: str                                   # "YYYY-MM"
    areas: list[str]
    kinds: list[str]                             # agency kind codes with any referral
    cells: dict[tuple[str, str], Shown]          # (kind, area name) → count
    by_month: dict[str, Shown]
    outcomes: dict[str, Shown]                   # referral status → count
    days_to_accept: float | None                 # median, when SMALL_COUNT or more
    accepted_count: Shown
    help_answers: dict[str, Shown]               # help status → count

    def kind_total(self, kind: str) -> Shown:
        return total(self.cells[(kind, area)] for area in self.areas)

    def area_total(self, area: str) -> Shown:
        return total(self.cells[(kind, area)] for kind in self.kinds)

    @property
    def grand_total(self) -> Shown:
        return total(self.cells.values())


def referral_figures(area_ids: list[int] | None, months: int = 12) -> ReferralFigures:
    from statistics import median

    from app.concerns.models import HelpRequest, Referral
    from app.partners.models import Agency

    span = months_back(months)
    start = date.fromisoformat(span[0] + "-01")
    query = (select(Agency.kind, Concern.area_id, Referral.referred_on, Referral.status,
                    Referral.accepted_on)
             .select_from(Referral).join(Concern).join(Agency)
             .where(Referral.referred_on >= start))
    helps = select(HelpRequest.status, func.count()).join(Concern).where(
        HelpRequest.asked_at >= datetime(start.year, start.month, 1, tzinfo=timezone.utc))
    if area_ids is not None:
        query = query.where(Concern.area_id.in_(area_ids))
        helps = helps.where(Concern.area_id.in_(area_ids))
    rows = db.session.execute(query).all()
    areas = db.session.scalars(select(Area).order_by(Area.position, Area.id)).all()
    names = {a.id: a.label for a in areas if area_ids is None or a.id in area_ids}
    area_list = list(names.values())
    if any(r.area_id not in names for r in rows):
        area_list.append("—")
    raw: dict[tuple[str, str], int] = {}
    months_raw = {m: 0 for m in span}
    outcomes_raw: dict[str, int] = {}
    days = []
    for kind, area_id, referred_on, status, accepted_on in rows:
        key = (kind, names.get(area_id, "—"))
        raw[key] = raw.get(key, 0) + 1
        months_raw[f"{referred_on:%Y-%m}"] = months_raw.get(f"{referred_on:%Y-%m}", 0) + 1
        outcomes_raw[status] = outcomes_raw.get(status, 0) + 1
        if accepted_on is not None:
            days.append((accepted_on - referred_on).days)
    from app.partners.models import KINDS
    kinds = [k for k in KINDS if any(kind == k for kind, _a in raw)]
    cells = {(k, a): shown(raw.get((k, a), 0)) for k in kinds for a in area_list}
    help_raw = dict(db.session.execute(helps.group_by(HelpRequest.status)).all())
    return ReferralFigures(
        since=span[0], areas=area_list, kinds=kinds, cells=cells,
        by_month={m: shown(n) for m, n in months_raw.items()},
        outcomes={s: shown(outcomes_raw.get(s, 0)) for s in
                  ("requested", "accepted", "in_progress", "done", "returned")},
        days_to_accept=float(median(days)) if len(days) >= SMALL_COUNT else None,
        accepted_count=shown(len(days)),
        help_answers={s: shown(help_raw.get(s, 0)) for s in ("asked", "accepted", "declined")},
    )

"""Who receives an issue, and by which channel.

Only `active` supporters; the delivery preference decides the channel: e-mail or both →
e-mail (when there is an address and they have not unsubscribed), post or both → the postal
edition. Queries return statements, so that callers can count or stream without loading
the audience into memory.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import Select, exists, func, select

from app.extensions import db
from app.supporters.models import Supporter
from app.supporters.services import in_scope, where_matches, where_place_and_kind
from app.trainings.models import Registration, TrainingSession


@dataclass
class Audience:
    area_id: int | None = None
    district_id: int | None = None
    kind: str = ""
    category_id: int | None = None
    # Only those who attended a session of this training.
    training_id: int | None = None
    station_id: int | None = None        # every area the station serves (田無 = 中部 + 南部)
    district_ids: list[int] = field(default_factory=list)  # several districts at once

    @classmethod
    def from_dict(cls, data: dict | None) -> "Audience":
        data = data or {}
        district_ids = [int(d) for d in data.get("district_ids") or [] if str(d).isdigit()]
        return cls(area_id=data.get("area_id") or None, district_id=data.get("district_id") or None,
                   kind=data.get("kind") or "", category_id=data.get("category_id") or None,
                   training_id=data.get("training_id") or None,
                   station_id=data.get("station_id") or None, district_ids=district_ids)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v}


def describe(audience: Audience) -> str:
    """Who the audience is, in words (for the page that asks before sending)."""
    from app.geography.models import Area, District, Station
    from app.i18n import gettext as _
    from app.labels import KIND

    parts = []
    if audience.station_id:
        station = db.session.get(Station, audience.station_id)
        parts.append(station.name if station else "")
    if audience.area_id:
        area = db.session.get(Area, audience.area_id)
        parts.append(area.label if area else "")
    districts = audience.district_ids + ([audience.district_id] if audience.district_id else [])
    if districts:
        parts.append("、".join(d.label for d in db.session.scalars(
            select(District).where(District.id.in_(districts)))))
    if audience.kind:
        parts.append(str(KIND.get(audience.kind, audience.kind)))
    if audience.training_id:
        parts.append(_("研修の出席者"))
    return " / ".join(p for p in parts if p) or _("活動中の推進員すべて")


def _narrow(query: Select, audience: Audience) -> Select:
    query = where_place_and_kind(query.where(Supporter.status == "active"),
                                 area_id=audience.area_id, district_id=audience.district_id,
                                 kind=audience.kind, category_id=audience.category_id,
                                 station_id=audience.station_id,
                                 district_ids=audience.district_ids)
    if audience.training_id:
        attended = (select(Registration.id).join(TrainingSession)
                    .where(Registration.supporter_id == Supporter.id,
                           Registration.attendance == "attended",
                           TrainingSession.training_id == audience.training_id))
        query = query.where(exists(attended))
    return query


def by_email(query: Select, audience: Audience) -> Select:
    return _narrow(query, audience).where(
        Supporter.delivery.in_(("email", "both")), Supporter.email.is_not(None),
        Supporter.unsubscribed_at.is_(None), Supporter.email_held_at.is_(None))


def by_post(query: Select, audience: Audience) -> Select:
    return _narrow(query, audience).where(Supporter.delivery.in_(("post", "both")))


def counts(audience: Audience) -> dict[str, int]:
    """How many active supporters get the issue by e-mail, by post, and in all."""
    count = select(func.count(Supporter.id))
    email = db.session.scalar(by_email(count, audience)) or 0
    post = db.session.scalar(by_post(count, audience)) or 0
    total = db.session.scalar(_narrow(count, audience)) or 0
    # People who take both are in both counts; say how many, so the figures add up.
    both = db.session.scalar(by_email(count, audience).where(Supporter.delivery == "both")) or 0
    return {"email": email, "post": post, "total": total, "both": both}


def search_email_recipients(audience: Audience, q: str, scope=None, limit: int = 20):
    """E-mail recipients of the audience whose name, reading, phone or address matches."""
    query = where_matches(in_scope(by_email(select(Supporter), audience), scope), q)
    return list(db.session.scalars(query.order_by(Supporter.sort_key, Supporter.id).limit(limit)))


def postal_recipients(audience: Audience, scope: frozenset[int] | None = None):
    """Supporters who get the printed edition, in postal-code order (streamed); with a
    scope, only those of the areas a staff member serves."""
    query = in_scope(by_post(select(Supporter), audience), scope).order_by(
        Supporter.postal_code, Supporter.sort_key, Supporter.id)
    return db.session.scalars(query.execution_options(yield_per=500))

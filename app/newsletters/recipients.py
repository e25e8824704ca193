"""Who an issue is addressed to and how: each area's contact block and each recipient's
personal links (unsubscribe, preferences) and salutation."""
from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import StaffUser, staff_area
from app.extensions import db
from app.geography.models import Area
from app.i18n import gettext as _
from app.newsletters.rendering import AreaInfo, Personal
from app.newsletters.tokens import make_unsubscribe_token
from app.urls import external_url


def area_infos() -> dict[int, AreaInfo]:
    """Per area: its name, station and the coordinators covering it (for the contact block)."""
    names: dict[int, list[str]] = {}
    rows = db.session.execute(
        select(staff_area.c.area_id, StaffUser.name)
        .join(StaffUser, StaffUser.id == staff_area.c.staff_id)
        .where(StaffUser.active.is_(True), StaffUser.role == "coordinator")
        .order_by(StaffUser.kana, StaffUser.id))
    for area_id, name in rows:
        names.setdefault(area_id, []).append(name)
    return {a.id: AreaInfo(name=a.name, station_name=a.station.name, station_phone=a.station.phone,
                           coordinators=names.get(a.id, []))
            for a in db.session.scalars(select(Area))}


class Links:
    """The links every message carries. Built once per run: URL building costs more than
    signing a token, and the sender makes one set per message."""

    _TOKEN = "HNTOKEN"

    def __init__(self):
        self.unsubscribe = external_url("newsletters.unsubscribe", token=self._TOKEN)
        self.preferences = external_url("supporters.request_link")

    def personal(self, supporter_id: int, name: str, newsletter_id: int | None) -> Personal:
        """`name` is the addressee with its honorific (山田 太郎 様, ㈱… 御中)."""
        token = make_unsubscribe_token(supporter_id, newsletter_id)
        return Personal(name=name or _("推進員のみなさま"),
                        unsubscribe_url=self.unsubscribe.replace(self._TOKEN, token),
                        preferences_url=self.preferences)


def personal_for(supporter_id: int, name: str, newsletter_id: int | None) -> Personal:
    return Links().personal(supporter_id, name, newsletter_id)

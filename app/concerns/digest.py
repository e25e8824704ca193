"""The daily digest: each coordinator hears of the new and overdue concerns of their areas.

The scheduler calls `send_daily_digests` every few minutes; it does its work once per day
and person, from the configured hour on. A row per (day, staff member) is committed with
that person's queued mail, so a restart or a second scheduler never sends it twice.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.accounts.models import StaffUser
from app.concerns.models import Concern, DigestSent
from app.concerns.referrals import follow_ups
from app.concerns.rules import is_overdue, overdue_before
from app.dbtypes import insert_unless_present, utcnow
from app.extensions import db
from app.formatting import TOKYO, format_date
from app.i18n import gettext as _
from app.outbox import services as outbox
from app.urls import external_url


def _claim(day: date, staff_id: int) -> bool:
    """Write the (day, staff) row, not yet committed; False when it was already there."""
    written = db.session.execute(
        insert_unless_present(DigestSent, {"day": day, "staff_id": staff_id, "sent_at": utcnow()},
                              ["day", "staff_id"]).returning(DigestSent.id)
    ).scalar()
    if written is None:
        db.session.rollback()
    return written is not None


def digest_for(staff: StaffUser, now: datetime) -> tuple[list[Concern], list[Concern]]:
    """(new in the last 24 hours, still 受付 — not yet looked at) concerns of the staff
    member's areas, oldest first.

    Staff without areas (the office) hear of concerns whose district is unknown.
    """
    area_ids = [a.id for a in staff.areas]
    where = Concern.area_id.in_(area_ids) if area_ids else Concern.area_id.is_(None)
    base = select(Concern).options(joinedload(Concern.category), joinedload(Concern.district))
    new = list(db.session.scalars(base.where(where, Concern.created_at >= now - timedelta(days=1))
                                  .order_by(Concern.created_at)))
    waiting = list(db.session.scalars(base.where(where, Concern.status == "received")
                                      .order_by(Concern.created_at)))
    return new, waiting


def send_daily_digests(now: datetime | None = None) -> int:
    """Send today's digest to everyone who has something to hear and has not had it yet."""
    now = now or utcnow()
    local = now.astimezone(TOKYO)
    if local.hour < current_app.config["HOTNET_DIGEST_HOUR"]:
        return 0
    sent = 0
    staff_members = db.session.scalars(select(StaffUser).where(StaffUser.active.is_(True))
                                       .order_by(StaffUser.id)).all()
    for staff in staff_members:
        new, waiting = digest_for(staff, now)
        # Referrals whose follow-up date has come, in the same areas (unknown area: office).
        due = follow_ups(frozenset(a.id for a in staff.areas), local.date(), due_only=True)
        if not new and not waiting and not due:
            continue
        late = overdue_before()
        overdue = [c for c in waiting if is_overdue(c, late)]
        if not _claim(local.date(), staff.id):
            continue
        # The day's row and the queued mail commit together: the outbox retries the mail
        # until the server takes it, and no second run queues another.
        outbox.enqueue(staff.email,
                       _("【ほっとネット】気になることの日報 %(day)s（新着%(new)d件・受付のまま%(waiting)d件、うち確認期限切れ%(late)d件・つなぎの確認%(due)d件）",
                         day=format_date(local.date()), new=len(new), waiting=len(waiting),
                         late=len(overdue), due=len(due)),
                       "concern_digest", staff_id=staff.id, staff=staff, new=new,
                       waiting=waiting, due=due, follow_ups_url=external_url("concerns.follow_ups"),
                       is_overdue=lambda c, late=late: is_overdue(c, late), url=external_url("concerns.dashboard"),
                       detail_url=lambda c: external_url("concerns.staff_detail", concern_id=c.id))
        db.session.commit()
        sent += 1
    return sent

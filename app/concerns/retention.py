"""Erasing the personal details of closed concerns once their retention period is over.

The period counts in fiscal years (April to March): with the default of 5, a concern closed
in fiscal 2020 (2020-04-01 … 2021-03-31) is erased from 2026-04-01 on. What stays is what
the counts need: category, area, district, month, status and dates.
"""
from __future__ import annotations

from datetime import date, datetime

from dateutil.relativedelta import relativedelta
from flask import current_app
from sqlalchemy import select, update

from app.audit import services as audit
from app.concerns import rules
from app.concerns.models import Concern, ConcernEvent
from app.concerns.services import photo_folder
from app.dbtypes import utcnow
from app.extensions import db
from app.formatting import TOKYO, today_tokyo


def fiscal_year(day: date) -> int:
    """Japan's fiscal year (April to March) that a day falls in: the year it began."""
    return (day - relativedelta(months=3)).year


def erase_before(today: date | None = None) -> datetime:
    """Concerns closed before this moment have passed their retention period."""
    years = current_app.config["HOTNET_CONCERN_RETENTION_YEARS"]
    this_year_began = date(fiscal_year(today or today_tokyo()), 4, 1)
    start = this_year_began - relativedelta(years=years)
    return datetime(start.year, start.month, start.day, tzinfo=TOKYO)


def erase_concern(concern: Concern) -> None:
    """Blank every personal detail of one concern and its timeline (the caller commits)."""
    if concern.photo:
        (photo_folder() / concern.photo).unlink(missing_ok=True)
    concern.body = concern.place = concern.address = ""
    concern.reporter_name = concern.reporter_email = concern.reporter_phone = ""
    concern.reporter_supporter_id = None
    concern.photo = ""
    concern.noticed_on = None
    concern.may_contact = False
    concern.erased_at = utcnow()
    db.session.execute(update(ConcernEvent).where(ConcernEvent.concern_id == concern.id,
                                                  ConcernEvent.kind.in_(("note", "message")))
                       .values(body=""))
    db.session.add(ConcernEvent(concern_id=concern.id, kind="erased", actor="", actor_kind="system"))


def purge_expired_concerns(today: date | None = None, batch: int = 200) -> int:
    """Erase every closed concern past its retention; returns how many were erased."""
    cutoff = erase_before(today)
    erased = 0
    while True:
        rows = db.session.scalars(
            select(Concern).where(Concern.status.in_(rules.CLOSED_STATUSES),
                                  Concern.closed_at < cutoff, Concern.erased_at.is_(None))
            .order_by(Concern.id).limit(batch)).all()
        if not rows:
            break
        for concern in rows:
            erase_concern(concern)
        audit.record("concern.erase", "concern", None,
                     params={"count": len(rows), "before": cutoff.isoformat()}, actor=None)
        db.session.commit()
        erased += len(rows)
    return erased

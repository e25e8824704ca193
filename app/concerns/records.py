"""Reading concerns: by id (audited for staff), by reference, a reporter's own."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.accounts.models import StaffUser
from app.audit import services as audit
from app.concerns.intake import coordinators_for, reference_of
from app.concerns.models import (
    Concern,
)
from app.errors import NotFound
from app.extensions import db
from app.supporters.models import Supporter
from app.text import clean

# --- reading -----------------------------------------------------------------------------------

def get_concern(concern_id: int) -> Concern:
    concern = db.session.get(Concern, concern_id)
    if concern is None:
        raise NotFound(concern_id)
    return concern


def view_concern(concern_id: int, *, actor) -> Concern:
    """A concern for a staff member to read; the view is written to the audit log."""
    concern = get_concern(concern_id)
    audit.record("concern.view", "concern", concern.id, params={"reference": concern.reference},
                 actor=actor)
    db.session.commit()
    return concern


def find_by_reference(reference: str) -> Concern | None:
    reference = reference_of(reference) or clean(reference).upper()
    return db.session.scalar(select(Concern).where(Concern.reference == reference))
def reports_of(supporter: Supporter) -> list[Concern]:
    return list(db.session.scalars(
        select(Concern).options(joinedload(Concern.category))
        .where(Concern.reporter_supporter_id == supporter.id)
        .order_by(Concern.created_at.desc(), Concern.id.desc())))


def report_of(supporter: Supporter, reference: str) -> Concern:
    """One of the supporter's own reports; anyone else's is not found."""
    concern = find_by_reference(reference)
    if concern is None or concern.reporter_supporter_id != supporter.id:
        raise NotFound(reference)
    return concern


def assignable_staff(concern: Concern) -> list[StaffUser]:
    """Coordinators of the concern's area first, then every other active staff member."""
    area_staff = coordinators_for(concern.area_id) if concern.area_id else []
    others = [s for s in db.session.scalars(select(StaffUser).where(StaffUser.active.is_(True))
                                            .order_by(StaffUser.kana, StaffUser.id))
              if s not in area_staff]
    return area_staff + others

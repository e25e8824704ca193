"""The rules of a concern's life, each defined once: which statuses are open, which may
follow which, when a concern is overdue, and the bodies it may be handed to.

Queries, pages, mails and the digest all ask here (docs/architecture.md, "one source per
rule"); nothing else spells out a list of statuses or the overdue test."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_

from app.concerns.models import OPEN_STATUSES, STATUSES, Concern
from app.dbtypes import utcnow

__all__ = ["OPEN_STATUSES", "CLOSED_STATUSES", "STATUSES", "TRANSITIONS", "overdue_before",
           "is_overdue", "overdue_clause", "PICK_LISTS_KEY"]

# Finished: the concern left the queue (it may be reopened, see TRANSITIONS).
CLOSED_STATUSES = tuple(s for s in STATUSES if s not in OPEN_STATUSES)

# Which status may follow which. "duplicate" and "connected" need more (see change_status).
TRANSITIONS = {
    "received": ("acknowledged", "in_progress", "connected", "duplicate"),
    "acknowledged": ("in_progress", "connected", "closed", "duplicate"),
    "in_progress": ("connected", "closed", "duplicate"),
    "connected": ("in_progress", "closed"),
    "closed": ("in_progress",),
    "duplicate": ("acknowledged",),
}

# The same note, message or referral from the same person on the same concern, again within
# this while, is the first one sent again — Back, then the button once more: the page comes
# back with a new one-time key, but the browser puts back what was typed — not a second one.
RESENT_WITHIN = timedelta(minutes=10)


def recent_enough_to_be_resent(at: datetime) -> bool:
    """Whether something recorded at `at` is recent enough that the same again is it resent."""
    return at >= utcnow() - RESENT_WITHIN

# The cache key of the dashboard's pick lists (areas, categories); changing a category clears it.
PICK_LISTS_KEY = "concern-pick-lists"


def overdue_before(now: datetime | None = None) -> datetime:
    """Concerns still `received` that arrived before this moment are overdue
    (HOTNET_CONCERN_ACK_DAYS days to acknowledge)."""
    return (now or utcnow()) - timedelta(days=current_app.config["HOTNET_CONCERN_ACK_DAYS"])


def is_overdue(concern: Concern, before: datetime | None = None) -> bool:
    """The rule in Python, for one concern on a page or in a mail (`before`: a moment from
    overdue_before, so that a whole list is judged against the same one)."""
    return concern.status == "received" and concern.created_at < (before or overdue_before())


def overdue_clause(columns=Concern.__table__.c, before=None):
    """The same rule as an SQL condition, on the concern table or a subquery of it (`before`:
    the moment, or a parameter that will hold overdue_before(); by default the moment now)."""
    return and_(columns.status == "received",
                columns.created_at < (overdue_before() if before is None else before))

"""Concern reports (気になること), their timeline, links between them and the digest ledger."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.geography.models import Area, District
from app.partners.models import Agency
from app.supporters.models import salutation

STATUSES = ("received", "acknowledged", "in_progress", "connected", "closed", "duplicate")
OPEN_STATUSES = ("received", "acknowledged", "in_progress", "connected")
# The open concerns, the queue's everyday view, have an index of their own (partial): it
# stays small however many closed ones the years leave behind. A query uses it when it asks
# for open concerns in these very words, which `is_open` gives (the statuses as literals).
_OPEN_SQL = "status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"
URGENCIES = ("normal", "soon", "urgent")
CHANNELS = ("web", "phone", "visit", "fax", "counter")
EVENT_KINDS = ("created", "status", "assigned", "note", "message", "linked", "erased")


class ConcernCategory(db.Model):
    """A kind of concern (見守り・安否 …); admins edit the list."""

    __tablename__ = "concern_category"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ReferenceCounter(db.Model):
    """The last reference number given out in a year (HN-2026-000123)."""

    __tablename__ = "concern_reference_counter"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Concern(db.Model):
    """One report: a private case record, seen only by staff and (in part) its reporter."""

    __tablename__ = "concern"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("concern_category.id"))
    body: Mapped[str] = mapped_column(Text, default="")
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"))
    # Copied from the district when the concern is saved: the queue and the chart are per area.
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"))
    place: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(300), default="")  # staff-only
    noticed_on: Mapped[date | None] = mapped_column(Date)
    urgency: Mapped[str] = mapped_column(String(10), default="normal")
    photo: Mapped[str] = mapped_column(String(100), default="")
    may_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str] = mapped_column(String(10), default="web")
    reporter_supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporter.id", ondelete="SET NULL"), index=True)
    reporter_name: Mapped[str] = mapped_column(String(100), default="")
    reporter_email: Mapped[str] = mapped_column(String(254), default="")
    reporter_phone: Mapped[str] = mapped_column(String(40), default="")
    taken_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="received")
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL"), index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("concern.id", ondelete="SET NULL"))
    connected_to: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the call, visit or FAX came in, as staff recorded it (web reports: created_at).
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Japan-time month of arrival ("2026-11"): the chart groups by it without date functions.
    month: Mapped[str] = mapped_column(String(7))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    category: Mapped[ConcernCategory] = relationship()
    district: Mapped[District | None] = relationship()
    area: Mapped[Area | None] = relationship()
    assignee = relationship("StaffUser", foreign_keys=[assignee_id])
    taken_by = relationship("StaffUser", foreign_keys=[taken_by_id])
    reporter = relationship("Supporter")
    duplicate_of: Mapped["Concern | None"] = relationship(remote_side=[id])

    __table_args__ = (
        Index("ix_concern_area_status", "area_id", "status", "assignee_id", "created_at"),
        Index("ix_concern_area_created", "area_id", "created_at", "id"),
        Index("ix_concern_created", "created_at", "id"),
        Index("ix_concern_status_created", "status", "created_at"),
        Index("ix_concern_month_area", "month", "area_id", "category_id"),
        Index("ix_concern_district_created", "district_id", "created_at"),
        Index("ix_concern_closed", "closed_at"),
        Index("ix_concern_urgency_status", "urgency", "status", "area_id", "created_at"),
        Index("ix_concern_open", "area_id", "assignee_id", "created_at",
              postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL)),
    )

    @property
    def reporter_salutation(self) -> str:
        """How mail to the reporter begins: a supporter as registered (山田 太郎 様, ㈱… 御中),
        anyone else by the name they gave; "" when they gave none."""
        if self.reporter is not None:
            return self.reporter.salutation
        name = (self.reporter_name or "").strip()
        return salutation("person", name) if name else ""

    @property
    def contact_email(self) -> str:
        """Where messages to the reporter go, if they may be contacted."""
        if not self.may_contact:
            return ""
        if self.reporter_email:
            return self.reporter_email
        return (self.reporter.email or "") if self.reporter is not None else ""


class ConcernEvent(db.Model):
    """One entry of a concern's timeline. Notes are staff-only; messages go to the reporter."""

    __tablename__ = "concern_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concern.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(200), default="")  # a staff member's name
    actor_kind: Mapped[str] = mapped_column(String(10), default="staff")  # see app.actors
    status_from: Mapped[str] = mapped_column(String(20), default="")
    status_to: Mapped[str] = mapped_column(String(20), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    emailed: Mapped[bool] = mapped_column(Boolean, default=False)

    staff = relationship("StaffUser")

    @property
    def for_reporter(self) -> bool:
        return self.kind in ("created", "status", "message")


class ConcernLink(db.Model):
    """Two concerns about the same household or place (stored once, low id first)."""

    __tablename__ = "concern_link"
    low_id: Mapped[int] = mapped_column(ForeignKey("concern.id", ondelete="CASCADE"),
                                        primary_key=True)
    high_id: Mapped[int] = mapped_column(ForeignKey("concern.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DigestSent(db.Model):
    """A coordinator's daily digest for one day: the row is written before the mail goes,
    so that a second run of the job the same day (a restart) sends nothing."""

    __tablename__ = "concern_digest"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("day", "staff_id", name="uq_concern_digest_day_staff"),)


REFERRAL_METHODS = ("phone", "fax", "visit", "meeting")
# The basis on which personal data was passed on (APPI art. 27): it decides what the
# referral sheet may carry.
REFERRAL_CONSENTS = ("consent", "vital", "meeting", "anonymous")
REFERRAL_STATUSES = ("requested", "accepted", "in_progress", "done", "returned")
OPEN_REFERRAL_STATUSES = ("requested", "accepted", "in_progress")


class Referral(db.Model):
    """A concern passed on to a partner agency (つなぎ), followed to its end. Internal only:
    never shown to the reporter or to staff outside the concern's area."""

    __tablename__ = "referral"
    id: Mapped[int] = mapped_column(primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concern.id", ondelete="CASCADE"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"), index=True)
    referred_on: Mapped[date] = mapped_column(Date)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    staff_name: Mapped[str] = mapped_column(String(100), default="")
    method: Mapped[str] = mapped_column(String(20))
    consent: Mapped[str] = mapped_column(String(20))
    passed_on: Mapped[str] = mapped_column(Text, default="")
    follow_up_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20), default="requested", index=True)
    accepted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    concern = relationship("Concern", backref="referrals")
    agency = relationship(Agency)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_REFERRAL_STATUSES


HELP_STATUSES = ("asked", "accepted", "declined", "withdrawn")


class HelpRequest(db.Model):
    """A request for help (協力依頼) from staff to a supporter or business near a concern.
    The supporter reads only `message` — what staff chose to write — never the concern."""

    __tablename__ = "help_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concern.id", ondelete="CASCADE"), index=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id", ondelete="CASCADE"),
                                              index=True)
    need: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, default="")
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    staff_name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="asked", index=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    concern = relationship("Concern")
    supporter = relationship("Supporter")


def is_open():
    """The condition "the concern is open", in the words of the open concerns' index."""
    return Concern.status.in_(bindparam("open_statuses", OPEN_STATUSES, expanding=True,
                                        literal_execute=True))

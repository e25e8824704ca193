"""Trainings, their sessions and the registrations of supporters."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.geography.models import Station

KINDS = ("registration", "communication", "follow_up", "other")
REGISTRATION_STATUSES = ("confirmed", "waitlisted", "cancelled")
ATTENDANCE = ("", "attended", "no_show")


class Training(db.Model):
    """A training (登録研修, コミュニケーション研修 …); people sign up for one of its sessions."""

    __tablename__ = "training"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20), default="communication")
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    sessions: Mapped[list["TrainingSession"]] = relationship(
        back_populates="training", order_by="TrainingSession.starts_at")


class TrainingSession(db.Model):
    """One date of a training. `confirmed` counts confirmed seats; the database refuses
    more than `capacity` (the last line behind the locking in services.sign_up)."""

    __tablename__ = "training_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    training_id: Mapped[int] = mapped_column(ForeignKey("training.id", ondelete="CASCADE"),
                                             index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"))
    venue_name: Mapped[str] = mapped_column(String(200), default="")
    venue_address: Mapped[str] = mapped_column(String(300), default="")
    capacity: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    signup_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    cancel_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    notes: Mapped[str] = mapped_column(Text, default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    training: Mapped[Training] = relationship(back_populates="sessions")
    station: Mapped[Station | None] = relationship()

    __table_args__ = (
        CheckConstraint("confirmed >= 0 AND confirmed <= capacity", name="seats"),
        CheckConstraint("capacity >= 1", name="capacity"),
        Index("ix_training_session_starts", "starts_at"),
    )

    @property
    def seats_left(self) -> int:
        return max(0, self.capacity - self.confirmed)

    @property
    def venue(self) -> str:
        if self.station is not None and not self.venue_name:
            return self.station.label  # in the reader's language
        return self.venue_name

    @property
    def address(self) -> str:
        if self.station is not None and not self.venue_address:
            return self.station.address
        return self.venue_address


class Registration(db.Model):
    """A supporter's place on a session: confirmed, on the waitlist (in order), or cancelled.

    One row per (session, supporter): signing up again after cancelling reuses it.
    """

    __tablename__ = "training_registration"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id", ondelete="CASCADE"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id", ondelete="CASCADE"),
                                              index=True)
    status: Mapped[str] = mapped_column(String(20))
    # The order of the waitlist: when this person joined it.
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    via: Mapped[str] = mapped_column(String(20), default="self")  # self, staff, visitor
    attendance: Mapped[str] = mapped_column(String(10), default="")
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    session: Mapped[TrainingSession] = relationship()
    supporter = relationship("Supporter")

    __table_args__ = (
        UniqueConstraint("session_id", "supporter_id", name="uq_training_registration_person"),
        Index("ix_training_registration_queue", "session_id", "status", "queued_at", "id"),
    )

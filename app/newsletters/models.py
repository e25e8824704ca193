from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db

STATUSES = ("draft", "scheduled", "sending", "paused", "sent", "cancelled")
DELIVERY_STATUSES = ("waiting", "sending", "sent", "deferred", "failed", "skipped", "cancelled")


class Newsletter(db.Model):
    """One issue of the newsletter: its text, layout, audience and where its sending stands."""

    __tablename__ = "newsletter"
    id: Mapped[int] = mapped_column(primary_key=True)
    layout: Mapped[str] = mapped_column(String(60), default="regular")
    number: Mapped[str] = mapped_column(String(40), default="")
    title: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    body_md: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    post_count: Mapped[int] = mapped_column(Integer, default=0)
    image: Mapped[str] = mapped_column(String(100), default="")
    # Optional sections a layout may include: {"concern_statistics": {"from": "2026-08-01",
    # "to": "2026-10-31"}, "upcoming_trainings": true}; see rendering.block_context.
    blocks: Mapped[dict] = mapped_column(JSON, default=dict)
    # The sections as they were when sending began (upcoming trainings change by the day):
    # every edition of a sent issue shows what its e-mail said.
    frozen_blocks: Mapped[dict | None] = mapped_column(JSON)

    staff = relationship("StaffUser")


class Delivery(db.Model):
    """One recipient of one issue by e-mail: the ledger row the sender works through.

    Unique per (newsletter, supporter), so nobody can be queued twice. The address is
    copied when the send starts, so that the ledger says where each message went.
    """

    __tablename__ = "delivery"
    id: Mapped[int] = mapped_column(primary_key=True)
    newsletter_id: Mapped[int] = mapped_column(ForeignKey("newsletter.id", ondelete="CASCADE"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporter.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("newsletter_id", "supporter_id", name="uq_delivery_newsletter_supporter"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
        Index("ix_delivery_newsletter_status", "newsletter_id", "status"),
        Index("ix_delivery_sent_at", "sent_at"),  # today's count, against the daily cap
    )


class Bounce(db.Model):
    """A delivery report (bounce) read from the bounce mailbox, once each."""

    __tablename__ = "bounce"
    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The report's own Message-ID: the same report read twice counts once.
    report_id: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # hard, soft
    status: Mapped[str] = mapped_column(String(20), default="")  # 5.1.1
    diagnostic: Mapped[str] = mapped_column(String(500), default="")
    address: Mapped[str] = mapped_column(String(254), default="")
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporter.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(20), default="")  # d123 / o45 (the VERP id)

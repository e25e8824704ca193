from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db

# waiting → sending → sent; deferred (4xx, a dropped connection) → sending again;
# failed (5xx, or too many attempts); skipped (nothing to send to: the person withdrew,
# the address no longer parses); cancelled (by staff).
STATUSES = ("waiting", "sending", "sent", "deferred", "failed", "skipped", "cancelled")
UNDELIVERED = ("failed", "skipped")


class OutboxMessage(db.Model):
    """One message to one recipient, rendered when it was queued."""

    __tablename__ = "outbox_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))          # the template: "login_link" …
    recipient: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    # A message built elsewhere (a newsletter's test send), sent exactly as it is.
    raw: Mapped[str | None] = mapped_column(Text)
    # [{"filename": …, "content_type": …, "data": base64}]
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    # Whose message it is, so that withdrawal can skip and erase what is still waiting.
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporter.id", ondelete="SET NULL"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    # A sign-in link must not outlive its sending in the database.
    erase_after_send: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_created", "created_at"),
    )

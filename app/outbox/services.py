"""Queueing messages, and what staff do about the ones that could not be delivered."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable

from flask import render_template
from sqlalchemy import func, select, update

from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import InvalidState, NotFound
from app.extensions import db
from app.i18n import gettext as _
from app.outbox.models import UNDELIVERED, OutboxMessage
from app.signals import supporter_erased


def enqueue(to: str | None, subject: str, template: str, *,
            attachments: list[tuple[str, str, bytes]] | None = None,
            supporter_id: int | None = None, staff_id: int | None = None,
            erase_after_send: bool = False, **context) -> OutboxMessage | None:
    """Render templates/mail/<template>.txt and queue it in the current transaction.

    The caller commits together with the change the message is about, so that there is
    never a change without its message nor a message without its change. Returns None (and
    queues nothing) when there is no address to send to.
    """
    if not to:
        return None
    body = render_template(f"mail/{template}.txt", **context)
    message = OutboxMessage(
        kind=template, recipient=to.strip(), subject=subject, body=body,
        attachments=[{"filename": name, "content_type": kind,
                      "data": base64.b64encode(data).decode("ascii")}
                     for name, kind, data in attachments or ()],
        supporter_id=supporter_id, staff_id=staff_id, erase_after_send=erase_after_send,
        status="waiting", next_attempt_at=utcnow(), created_at=utcnow())
    db.session.add(message)
    return message


def enqueue_built(message, *, kind: str, staff_id: int | None = None) -> OutboxMessage:
    """Queue a message built by a domain (its own MIME structure and headers), to be sent
    byte for byte; one recipient. The caller commits."""
    row = OutboxMessage(
        kind=kind, recipient=message.recipients[0], subject=message.subject, body="",
        raw=message.as_bytes().decode("ascii"), attachments=[], staff_id=staff_id,
        status="waiting", next_attempt_at=utcnow(), created_at=utcnow())
    db.session.add(row)
    return row


def skip_waiting_for_supporter(supporter_id: int, reason: str) -> int:
    """A supporter withdrew: what is still waiting for them is set aside and its text and
    address erased (the caller commits)."""
    return db.session.execute(update(OutboxMessage).where(
        OutboxMessage.supporter_id == supporter_id,
        OutboxMessage.status.in_(("waiting", "deferred", "sending"))).values(
        status="skipped", recipient=None, body="", attachments=[], claimed_by="",
        last_error=reason)).rowcount


def erase_for_supporter(supporter_id: int) -> None:
    """Erase address and text of every message to this supporter (the caller commits)."""
    db.session.execute(update(OutboxMessage).where(OutboxMessage.supporter_id == supporter_id)
                       .values(recipient=None, body="", attachments=[]))


# --- what staff see ----------------------------------------------------------------------------

@dataclass
class Undelivered:
    """One message that did not reach its recipient, from any ledger."""

    source: str          # "outbox" or "newsletter"
    id: int
    kind: str
    recipient: str
    subject: str
    status: str
    attempts: int
    error: str
    at: object
    link: str = ""       # where to act on it (a newsletter's page)
    retryable: bool = True


# The registry (a higher layer) tells the current address of a supporter, for retries.
CURRENT_ADDRESS: dict[str, Callable[[int], str | None]] = {}

# Higher layers (newsletters) add their ledgers here, so that one page lists every kind
# of message without this module knowing them: a callable returning (count, rows).
SOURCES: dict[str, Callable[[int], tuple[int, list[Undelivered]]]] = {}


def undelivered_outbox(limit: int = 200) -> tuple[int, list[Undelivered]]:
    where = OutboxMessage.status.in_(UNDELIVERED + ("deferred",))
    total = db.session.scalar(select(func.count(OutboxMessage.id)).where(where)) or 0
    rows = db.session.scalars(select(OutboxMessage).where(where)
                              .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
                              .limit(limit))
    return total, [Undelivered(
        source="outbox", id=m.id, kind=m.kind, recipient=m.recipient or "", subject=m.subject,
        status=m.status, attempts=m.attempts, error=m.last_error, at=m.created_at,
        retryable=m.status != "skipped" or bool(m.recipient and m.body)) for m in rows]


def undelivered(actor, limit: int = 200) -> list[tuple[str, int, list[Undelivered]]]:
    """Every ledger's undelivered messages (failed, set aside, still being retried);
    reading addresses is written to the audit log."""
    found = [("outbox", *undelivered_outbox(limit))]
    for name, source in SOURCES.items():
        found.append((name, *source(limit)))
    audit.record("mail.undelivered_view", "outbox_message", None,
                 params={"count": sum(total for _name, total, _rows in found)}, actor=actor)
    db.session.commit()
    return found


def retry(actor, message_id: int) -> OutboxMessage:
    """Send a failed, deferred or set-aside message again now. When it belongs to a
    supporter, it goes to their current address (staff may have corrected it)."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(message_id)
    if message.status not in UNDELIVERED + ("deferred",):
        raise InvalidState(_("このメールは送信待ちか、すでに送信済みです。"))
    if message.supporter_id is not None and "supporter" in CURRENT_ADDRESS:
        current = CURRENT_ADDRESS["supporter"](message.supporter_id)
        if current:
            message.recipient = current
    if not message.recipient or not message.body:
        raise InvalidState(_("宛先か本文が消去されているため、再送できません。"))
    message.status, message.attempts, message.last_error = "waiting", 0, ""
    message.next_attempt_at = utcnow()
    audit.record("mail.retry", "outbox_message", message.id, message.kind, actor=actor)
    db.session.commit()
    return message


def purge_old(days: int = 90) -> int:
    """Delete messages sent (or set aside) more than `days` ago: the outbox is a queue, not
    an archive of what people were told (run by the scheduler)."""
    from datetime import timedelta

    from sqlalchemy import delete

    cutoff = utcnow() - timedelta(days=days)
    removed = db.session.execute(delete(OutboxMessage).where(
        OutboxMessage.status.in_(("sent", "skipped", "cancelled")),
        OutboxMessage.created_at < cutoff)).rowcount or 0
    db.session.commit()
    return removed


def waiting_counts() -> dict[str, int]:
    """How many messages are waiting, being retried and failed (health checks)."""
    rows = dict(db.session.execute(select(OutboxMessage.status, func.count(OutboxMessage.id))
                                   .group_by(OutboxMessage.status)).all())
    return {"waiting": rows.get("waiting", 0) + rows.get("sending", 0),
            "deferred": rows.get("deferred", 0), "failed": rows.get("failed", 0),
            "skipped": rows.get("skipped", 0)}


@supporter_erased.connect
def _on_supporter_erased(supporter_id: int, **_kwargs) -> None:
    skip_waiting_for_supporter(supporter_id, "the supporter withdrew before it was sent")
    erase_for_supporter(supporter_id)

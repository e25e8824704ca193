"""The newsletter sender: works through each issue's delivery ledger over SMTP.

The ledger rules (claims, heartbeat, lease, owner-checked marks, retries) are the outbox's,
in app/outbox/ledger.py. Here: which rows are due (those of issues that are sending), the
message of each recipient, and stopping when an issue is paused or cancelled.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_mail import Message
from sqlalchemy import select, update

from app.dbtypes import utcnow
from app.extensions import db
from app.geography.models import District
from app.newsletters.mime import build_message
from app.newsletters.models import Delivery, Newsletter
from app.newsletters.recipients import Links, area_infos
from app.newsletters.rendering import TemplateCache
from app.outbox import ledger
from app.outbox.ledger import RunReport, worker_id
from app.supporters.models import Supporter, salutation

log = logging.getLogger("hotnet.sender")


def claim_batch(worker: str, size: int) -> list[int]:
    """Claim up to `size` due rows of issues that are sending; returns their ids."""
    candidates = (select(Delivery.id).join(Newsletter, Newsletter.id == Delivery.newsletter_id)
                  .where(Newsletter.status == "sending"))
    return ledger.claim(Delivery, worker, size, candidates)


def _message(delivery_row, newsletter: Newsletter, cache: TemplateCache, areas: dict,
             links: Links) -> Message:
    area = areas.get(delivery_row.area_id)
    name = salutation(delivery_row.kind, delivery_row.name, delivery_row.business_name,
                      delivery_row.contact_person)
    personal = links.personal(delivery_row.supporter_id, name, newsletter.id)
    rendered = cache.for_recipient(delivery_row.area_id, area, personal)
    return build_message(newsletter, delivery_row.email, rendered, personal,
                         supporter_id=delivery_row.supporter_id)


_MARK_SENT = ledger.mark_sent_sql("delivery")


def _load(ids: list[int]):
    """What the messages of a batch need; the read ends at once (see `_stopped`)."""
    rows = db.session.execute(
        select(Delivery.id, Delivery.newsletter_id, Delivery.supporter_id, Delivery.email,
               Delivery.attempts, Supporter.kind, Supporter.name, Supporter.business_name,
               Supporter.contact_person,
               District.area_id)
        .join(Supporter, Supporter.id == Delivery.supporter_id)
        .outerjoin(District, District.id == Supporter.district_id)
        .where(Delivery.id.in_(ids)).order_by(Delivery.id)).all()
    db.session.commit()
    return rows


def _finish_done_issues() -> None:
    """Mark issues sent when nothing of theirs is left to send."""
    open_rows = select(Delivery.id).where(
        Delivery.newsletter_id == Newsletter.id,
        Delivery.status.in_(("waiting", "sending", "deferred"))).exists()
    db.session.execute(update(Newsletter).where(Newsletter.status == "sending", ~open_rows)
                       .values(status="sent", finished_at=utcnow()))
    db.session.commit()


def _unsendable(row) -> str:
    """Why a ledger row cannot be sent at all ("" when it can)."""
    if not row.email:
        return "no address (the supporter withdrew or the address was erased)"
    try:
        validate_email(row.email, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"the address does not parse: {exc}"
    return ""


def send_batch(ids: list[int], report: RunReport, state: dict) -> None:
    """Send one claimed batch over one connection (reconnecting after a drop).

    A row that cannot be sent (no address, one that no longer parses, a message that cannot
    be rendered) is set aside with its reason and never stops the batch or other issues.
    """
    with ledger.Batch(Delivery, state["worker"], ids, report, state["ledger"], _MARK_SENT) as batch:
        for row in _load(ids):
            if not batch.holds(row.id):
                continue
            newsletter = state["newsletters"].get(row.newsletter_id)
            if newsletter is None:
                newsletter = db.session.get(Newsletter, row.newsletter_id)
                # Keep it out of the session: committing after each message would
                # otherwise expire it and reload it for the next one.
                db.session.expunge(newsletter)
                state["newsletters"][row.newsletter_id] = newsletter
                state["caches"][row.newsletter_id] = TemplateCache(newsletter)
            if _stopped(row.newsletter_id, state):
                continue  # given back when the batch ends
            reason = _unsendable(row)
            if not reason:
                try:
                    message = _message(row, newsletter, state["caches"][row.newsletter_id],
                                       state["areas"], state["links"])
                except Exception as exc:  # noqa: BLE001 - one bad row must not stop the rest
                    log.exception("delivery %s cannot be rendered", row.id)
                    reason = f"cannot be rendered: {type(exc).__name__}: {exc}"
            if reason:
                batch.set_aside(row.id, reason)
            else:
                batch.send(row, message, kind="d")


def _stopped(newsletter_id: int, state: dict) -> bool:
    """Whether the issue was paused or cancelled (looked up at most once a second)."""
    checked = state["checked"].get(newsletter_id)
    now = time.monotonic()
    if checked is None or now - checked[0] >= 1.0:
        status = db.session.scalar(select(Newsletter.status).where(Newsletter.id == newsletter_id))
        db.session.commit()  # end the read: an open snapshot would keep SQLite's WAL growing
        checked = (now, status != "sending")
        state["checked"][newsletter_id] = checked
    return checked[1]


def _fresh_state() -> dict:
    """Per-run caches: issues and their rendered shells, area contacts, status checks."""
    return {"newsletters": {}, "caches": {}, "areas": area_infos(), "checked": {},
            "links": Links()}


def release_dead_claims() -> int:
    return ledger.release_dead_claims(Delivery)


def run(until_idle: bool = True, max_batches: int | None = None, worker: str | None = None,
        idle_sleep: float = 5.0) -> RunReport:
    """Work through the ledger. With until_idle, return once nothing is due now."""
    worker = worker or worker_id()
    report = RunReport()
    release_dead_claims()
    state = _fresh_state()
    state["worker"] = worker
    size = current_app.config["HOTNET_SEND_BATCH"]
    with db.engine.connect() as ledger:
        state["ledger"] = ledger
        _work(state, worker, size, report, until_idle, max_batches, idle_sleep)
    _finish_done_issues()
    if report.batches:
        log.info("sender: %s", report)
    return report


def sent_today() -> int:
    """Newsletter messages sent since midnight, Japan time (providers count per day)."""
    from sqlalchemy import func, select

    from app.formatting import TOKYO, today_tokyo
    midnight = datetime.combine(today_tokyo(), datetime.min.time(), tzinfo=TOKYO)
    return db.session.scalar(select(func.count(Delivery.id)).where(
        Delivery.status == "sent", Delivery.sent_at >= midnight)) or 0


def left_today() -> int | None:
    """How many more may go today under HOTNET_SEND_DAILY_CAP (None: no cap). A send that
    meets the cap waits, still "sending", and the scheduler goes on after midnight."""
    cap = current_app.config["HOTNET_SEND_DAILY_CAP"]
    if not cap:
        return None
    left = max(0, cap - sent_today())
    db.session.rollback()
    return left


def _work(state, worker, size, report, until_idle, max_batches, idle_sleep) -> None:
    while max_batches is None or report.batches < max_batches:
        left = left_today()
        if left == 0:
            log.info("sender: today's cap of %d messages is reached; the rest goes tomorrow",
                     current_app.config["HOTNET_SEND_DAILY_CAP"])
            report.capped = True
            break
        ids = claim_batch(worker, size if left is None else min(size, left))
        if not ids:
            _finish_done_issues()
            if until_idle:
                break
            time.sleep(idle_sleep)
            state.update(_fresh_state())
            state["worker"] = worker
            continue
        report.batches += 1
        send_batch(ids, report, state)

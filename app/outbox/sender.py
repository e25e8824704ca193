"""Delivering the outbox (run by the scheduler process every couple of seconds, or by
`flask hotnet sender`). See ledger.py for the rules every ledger follows."""
from __future__ import annotations

import base64
import logging
import time

from flask import current_app
from flask_mail import Message
from sqlalchemy import select

from app.extensions import db
from app.outbox import ledger
from app.outbox.models import OutboxMessage

log = logging.getLogger("hotnet.outbox")
# A message marked erase_after_send (a sign-in link, a declined applicant's answer) keeps
# nothing of its text or address once the server has it.
_MARK_SENT = ledger.mark_sent_sql(
    "outbox_message",
    ", body = CASE WHEN erase_after_send THEN '' ELSE body END"
    ", raw = CASE WHEN erase_after_send THEN NULL ELSE raw END"
    ", recipient = CASE WHEN erase_after_send THEN NULL ELSE recipient END")


class Unsendable(Exception):
    """This row can never be sent as it is (the reason is kept for staff)."""


class RawMessage:
    """A message queued already built (see services.enqueue_built): sent as it is."""

    def __init__(self, sender: str, recipient: str, raw: str):
        self.sender, self.send_to, self.recipients = sender, [recipient], [recipient]
        self.raw = raw.encode("ascii")
        self.mail_options, self.rcpt_options = [], []

    def as_bytes(self) -> bytes:
        return self.raw


def build(row: OutboxMessage):
    """The e-mail for one outbox row, with a fixed Message-ID (a repeat is recognisable)."""
    problem = ledger.address_problem(row.recipient)
    if problem:
        raise Unsendable(problem)
    config = current_app.config
    if row.raw:
        return RawMessage(config["MAIL_DEFAULT_SENDER"], row.recipient, row.raw)
    message = Message(subject=row.subject, recipients=[row.recipient], body=row.body,
                      sender=config["MAIL_DEFAULT_SENDER"])
    for item in row.attachments or ():
        message.attach(item["filename"], item["content_type"], base64.b64decode(item["data"]))
    message.msgId = f"<hotnet.mail.{row.id}@{config['HOTNET_MESSAGE_ID_DOMAIN']}>"
    return message


def send_batch(ids: list[int], worker: str, report: ledger.RunReport, marks: ledger.Marks) -> None:
    """Send one claimed batch over one connection (opened on the first sendable row)."""
    rows = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))
                                   .order_by(OutboxMessage.id)))
    for row in rows:
        db.session.expunge(row)
    db.session.commit()
    with ledger.Batch(OutboxMessage, worker, ids, report, marks) as batch:
        for row in rows:
            if not batch.holds(row.id):
                continue
            try:
                message = build(row)
                data = message.as_bytes()  # a message that cannot be serialised is caught here
            except Unsendable as exc:
                batch.set_aside(row.id, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
                log.exception("outbox message %s cannot be built", row.id)
                batch.set_aside(row.id, f"cannot be built: {type(exc).__name__}: {exc}")
                continue
            batch.send_prepared(row, ledger.prepare(message, data, "o", row.id))


def deliver(until_idle: bool = True, worker: str | None = None, max_batches: int | None = None,
            idle_sleep: float = 1.0) -> ledger.RunReport:
    """Work through the outbox. With until_idle, return once nothing is due now."""
    worker = worker or ledger.worker_id()
    report = ledger.RunReport()
    ledger.release_dead_claims(OutboxMessage)
    size = current_app.config["HOTNET_SEND_BATCH"]
    with ledger.Marks(_MARK_SENT) as marks:
        while max_batches is None or report.batches < max_batches:
            ids = ledger.claim(OutboxMessage, worker, size)
            if not ids:
                if until_idle:
                    break
                time.sleep(idle_sleep)
                continue
            report.batches += 1
            send_batch(ids, worker, report, marks)
    if report.sent or report.failed or report.skipped or report.errors:
        log.info("outbox: %s", report)
    return report

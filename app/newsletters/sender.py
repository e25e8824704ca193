"""The sender: works through the delivery ledger over SMTP.

Rows are claimed in batches by one UPDATE … RETURNING (on PostgreSQL the candidates are
selected FOR UPDATE SKIP LOCKED, so several senders share the work). Each batch uses one
SMTP connection with a socket timeout. A row is marked sent, and committed, only after the
server accepted the message, so a crash can at most repeat the one message in flight.
Claimed rows of a dead sender are taken back: at once when the sender ran on this host and
its process is gone, otherwise when its lease runs out.
"""
from __future__ import annotations

import base64
import functools
import logging
import os
import smtplib
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email.header import Header
from email.utils import formatdate

import flask_mail
from flask import current_app
from flask_mail import Connection, Message
from sqlalchemy import and_, or_, select, update

from app.dbtypes import utcnow
from app.extensions import db
from app.geography.models import District
from app.i18n import gettext as _
from app.newsletters.models import Delivery, Newsletter
from app.newsletters.rendering import TemplateCache
from app.newsletters.services import Links, area_infos
from app.supporters.models import Supporter

log = logging.getLogger("hotnet.sender")


class TimedConnection(Connection):
    """Flask-Mail's connection with a socket timeout, so a stuck server cannot hang us."""

    def __init__(self, mail_state, timeout: float):
        super().__init__(mail_state)
        self.timeout = timeout

    def configure_host(self):
        cls = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = cls(self.mail.server, self.mail.port, timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host

    def send(self, message: Message, envelope_from=None) -> None:
        """Flask-Mail's send, without re-parsing the same sender address for every message."""
        if self.host is not None:
            self.host.sendmail(_address(envelope_from or message.sender), list(message.send_to),
                               message.as_bytes(), message.mail_options, message.rcpt_options)
        flask_mail.email_dispatched.send(current_app._get_current_object(), message=message)

    def __exit__(self, exc_type, exc_value, tb):
        try:
            super().__exit__(exc_type, exc_value, tb)
        except (smtplib.SMTPException, OSError):
            pass  # the server already went away; nothing left to close cleanly


class NewsletterMessage(Message):
    """A Flask-Mail message, serialised as one multipart/alternative (text, then HTML).

    Flask-Mail builds a MIME tree and serialises it under the `SMTP` email policy, which
    re-parses each header and scans the whole body for a free boundary: about 5 ms for a
    20 KB newsletter, several times the cost of sending it. The structure here is fixed and
    every part is base64, so the message is written directly; the Message-ID stays Flask-Mail's
    own field (`msgId`), and the connection and its signals are Flask-Mail's as before.
    """

    def as_bytes(self) -> bytes:
        boundary = f"hotnet-{uuid.uuid4().hex}"
        headers = [
            ("From", _address(self.sender)),
            ("To", ", ".join(_address(r) for r in self.recipients)),
            ("Subject", _subject(self.subject)),
            ("Date", formatdate(self.date, localtime=True)),
            ("Message-ID", self.msgId),
            ("MIME-Version", "1.0"),
        ]
        if self.reply_to:
            headers.append(("Reply-To", _address(self.reply_to)))
        headers.extend((self.extra_headers or {}).items())
        headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
        lines = [f"{name}: {value}" for name, value in headers]
        out = "\r\n".join(lines).encode("ascii") + b"\r\n\r\n"
        for subtype, content in (("plain", self.body), ("html", self.html)):
            out += (f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
                    f"Content-Transfer-Encoding: base64\r\n\r\n").encode("ascii")
            out += _base64_lines(content.encode("utf-8"))
        return out + f"--{boundary}--\r\n".encode("ascii")


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters ending in CRLF (RFC 2045), encoded in one C call."""
    encoded = base64.b64encode(data)
    return b"".join(encoded[i:i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


def _address(value) -> str:
    """An address header value; a display name outside ASCII is encoded (RFC 2047)."""
    if isinstance(value, str) and value.isascii() and "<" not in value:
        return value  # a bare address, as every recipient is
    return _named_address(value)


@functools.lru_cache(maxsize=64)
def _named_address(value) -> str:
    return flask_mail.sanitize_address(value, "utf-8")


@functools.lru_cache(maxsize=16)
def _subject(value: str) -> str:
    return Header(value, "utf-8").encode()


@dataclass
class RunReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_claims() -> int:
    """Give back rows claimed by senders on this host whose process no longer exists."""
    host = socket.gethostname()
    owners = db.session.scalars(select(Delivery.claimed_by).where(
        Delivery.status == "sending", Delivery.claimed_by.like(f"{host}:%")).distinct())
    dead = [o for o in owners if o.rpartition(":")[2].isdigit()
            and not _pid_alive(int(o.rpartition(":")[2]))]
    released = 0
    for owner in dead:
        released += db.session.execute(update(Delivery).where(
            Delivery.status == "sending", Delivery.claimed_by == owner).values(
            status="waiting", claimed_by="", claimed_at=None)).rowcount
    db.session.commit()
    return released


def claim_batch(worker: str, size: int) -> list[int]:
    """Claim up to `size` due rows of issues that are sending; returns their ids."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["HOTNET_SEND_LEASE_SECONDS"])
    candidates = (
        select(Delivery.id)
        .join(Newsletter, Newsletter.id == Delivery.newsletter_id)
        .where(Newsletter.status == "sending", or_(
            and_(Delivery.status.in_(("waiting", "deferred")), Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.claimed_at < now - lease)))
        .order_by(Delivery.id).limit(size)
    )
    if db.engine.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=Delivery)
    ids = list(db.session.scalars(
        update(Delivery).where(Delivery.id.in_(candidates.scalar_subquery()))
        .values(status="sending", claimed_at=now, claimed_by=worker)
        .returning(Delivery.id)))
    db.session.commit()
    return sorted(ids)


def _message(delivery_row, newsletter: Newsletter, cache: TemplateCache, areas: dict,
             links: Links) -> Message:
    area = areas.get(delivery_row.area_id)
    name = delivery_row.business_name if delivery_row.kind == "business" and \
        delivery_row.business_name else delivery_row.name
    personal = links.personal(delivery_row.supporter_id, name, newsletter.id)
    rendered = cache.for_recipient(delivery_row.area_id, area, personal)
    return build_message(newsletter, delivery_row.email, rendered, personal,
                         supporter_id=delivery_row.supporter_id)


def build_message(newsletter: Newsletter, address: str, rendered, personal, *,
                  supporter_id: int = 0, test: bool = False) -> Message:
    """The e-mail: text and HTML alternatives, one-click unsubscribe headers, a fixed Message-ID."""
    config = current_app.config
    subject = _("[テスト] %(subject)s", subject=newsletter.subject) if test else newsletter.subject
    message = NewsletterMessage(
        subject=subject, recipients=[address],
        body=rendered.text, html=rendered.html,
        sender=config["HOTNET_NEWSLETTER_FROM"] or config["MAIL_DEFAULT_SENDER"],
        reply_to=config["HOTNET_NEWSLETTER_REPLY_TO"] or None,
        extra_headers={
            "List-Unsubscribe": f"<{personal.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": config["HOTNET_LIST_ID"],
        },
    )
    # The same Message-ID on every retry, so that a repeat is recognisable as one message.
    if not test:
        message.msgId = (f"<hotnet.{newsletter.id}.{supporter_id}"
                         f"@{config['HOTNET_MESSAGE_ID_DOMAIN']}>")
    return message


def _code_of(exc: Exception) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return codes[0] if codes else None
    return getattr(exc, "smtp_code", None)


def _reply_of(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                         for code, msg in exc.recipients.values())
    error = getattr(exc, "smtp_error", None)
    if isinstance(error, bytes):
        error = error.decode(errors="replace")
    code = getattr(exc, "smtp_code", None)
    return f"{code} {error}" if code else f"{type(exc).__name__}: {exc}"


# Marking a row sent happens once per message, so it skips SQLAlchemy's statement machinery
# (about a quarter of the per-message cost) and talks to the driver directly.
_MARK_SENT_SQL = ("UPDATE delivery SET status = 'sent', sent_at = {p}, attempts = attempts + 1, "
                  "claimed_by = '', last_error = '' WHERE id = {p}")


def _mark_sent(ledger, delivery_id: int) -> None:
    """Record one accepted message, committed, before the next is sent.

    `ledger` is a connection of its own. SQLite keeps timestamps as UTC text in the format
    SQLAlchemy writes; PostgreSQL takes the aware datetime.
    """
    now = utcnow()
    if ledger.dialect.name == "sqlite":
        sql, value = _MARK_SENT_SQL.format(p="?"), now.strftime("%Y-%m-%d %H:%M:%S.%f")
    else:
        sql, value = _MARK_SENT_SQL.format(p="%s"), now
    ledger.exec_driver_sql(sql, (value, delivery_id))
    ledger.commit()


def _mark_problem(delivery_id: int, attempts_before: int, reply: str, permanent: bool) -> str:
    config = current_app.config
    attempts = attempts_before + 1
    if permanent or attempts >= config["HOTNET_SEND_MAX_ATTEMPTS"]:
        status = "failed"
        if not permanent:
            reply = f"{reply} (gave up after {attempts} attempts)"
        next_at = utcnow()
    else:
        status = "deferred"
        delay = min(config["HOTNET_SEND_RETRY_SECONDS"] * (2 ** (attempts - 1)), 3600)
        next_at = utcnow() + timedelta(seconds=delay)
    db.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
        status=status, attempts=attempts, next_attempt_at=next_at, claimed_by="",
        last_error=reply[:2000]))
    db.session.commit()
    return status


def _load(ids: list[int]):
    """What the messages of a batch need; the read ends at once (see `_stopped`)."""
    rows = db.session.execute(
        select(Delivery.id, Delivery.newsletter_id, Delivery.supporter_id, Delivery.email,
               Delivery.attempts, Supporter.kind, Supporter.name, Supporter.business_name,
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


def send_batch(ids: list[int], report: RunReport, state: dict) -> None:
    """Send one claimed batch over one connection (reconnecting once after a drop)."""
    config = current_app.config
    rows = _load(ids)
    pace = 1.0 / config["HOTNET_SEND_RATE"] if config["HOTNET_SEND_RATE"] else 0.0
    pending = list(rows)
    while pending:
        try:
            connection = TimedConnection(current_app.extensions["mail"],
                                         config["HOTNET_SMTP_TIMEOUT"])
            connection.__enter__()
        except (smtplib.SMTPException, OSError) as exc:
            reply = _reply_of(exc)
            report.errors.append(reply)
            for row in pending:
                report.deferred += _mark_problem(row.id, row.attempts, reply, False) == "deferred"
            return
        dropped = False
        try:
            while pending:
                row = pending[0]
                newsletter = state["newsletters"].get(row.newsletter_id)
                if newsletter is None:
                    newsletter = db.session.get(Newsletter, row.newsletter_id)
                    # Keep it out of the session: committing after each message would
                    # otherwise expire it and reload it for the next one.
                    db.session.expunge(newsletter)
                    state["newsletters"][row.newsletter_id] = newsletter
                    state["caches"][row.newsletter_id] = TemplateCache(newsletter)
                if _stopped(row.newsletter_id, state):
                    db.session.execute(update(Delivery).where(
                        Delivery.id.in_([r.id for r in pending
                                         if r.newsletter_id == row.newsletter_id]),
                        Delivery.status == "sending").values(status="waiting", claimed_by=""))
                    db.session.commit()
                    pending = [r for r in pending if r.newsletter_id != row.newsletter_id]
                    continue
                started = time.monotonic()
                message = _message(row, newsletter, state["caches"][row.newsletter_id],
                                   state["areas"], state["links"])
                pending.pop(0)
                try:
                    connection.send(message)
                except smtplib.SMTPServerDisconnected as exc:
                    report.deferred += _mark_problem(row.id, row.attempts, _reply_of(exc),
                                                     False) == "deferred"
                    dropped = True
                    break
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
                        smtplib.SMTPSenderRefused, smtplib.SMTPResponseException) as exc:
                    code = _code_of(exc) or 451
                    status = _mark_problem(row.id, row.attempts, _reply_of(exc), code >= 500)
                    report.failed += status == "failed"
                    report.deferred += status == "deferred"
                    if code == 421:  # the server is closing the connection
                        dropped = True
                        break
                    continue
                except OSError as exc:  # timeout, reset: the connection is unusable
                    report.deferred += _mark_problem(row.id, row.attempts, _reply_of(exc),
                                                     False) == "deferred"
                    dropped = True
                    break
                _mark_sent(state["ledger"], row.id)
                report.sent += 1
                if pace:
                    time.sleep(max(0.0, pace - (time.monotonic() - started)))
        finally:
            connection.__exit__(None, None, None)
        if not dropped:
            return


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


def run(until_idle: bool = True, max_batches: int | None = None, worker: str | None = None,
        idle_sleep: float = 5.0) -> RunReport:
    """Work through the ledger. With until_idle, return once nothing is due now."""
    worker = worker or worker_id()
    report = RunReport()
    release_dead_claims()
    state = _fresh_state()
    size = current_app.config["HOTNET_SEND_BATCH"]
    with db.engine.connect() as ledger:
        state["ledger"] = ledger
        _work(state, worker, size, report, until_idle, max_batches, idle_sleep)
    _finish_done_issues()
    if report.batches:
        log.info("sender: %s", report)
    return report


def _work(state, worker, size, report, until_idle, max_batches, idle_sleep) -> None:
    while max_batches is None or report.batches < max_batches:
        ids = claim_batch(worker, size)
        if not ids:
            _finish_done_issues()
            if until_idle:
                break
            time.sleep(idle_sleep)
            state.update(_fresh_state())
            continue
        report.batches += 1
        send_batch(ids, report, state)

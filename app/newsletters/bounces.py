"""Bounces that arrive later: delivery reports read from the council's bounce mailbox (IMAP).

A message accepted by the relay can still be refused by the recipient's server; the report
(RFC 3464 delivery status notification, or one of the common non-standard forms) comes back
to the message's return path, bounces+<signed id>@domain, which names the ledger row. Each
report is classified hard (the address does not exist) or soft (mailbox full, try later):
after a hard bounce, or HOTNET_BOUNCE_SOFT_LIMIT soft ones in a row, the address is held —
the supporter moves to the postal edition and is asked for a new address at next sign-in.
"""
from __future__ import annotations

import email
import email.policy
import imaplib
import logging
import re
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import heartbeat
from app.dbtypes import utcnow
from app.extensions import db
from app.newsletters.models import Bounce, Delivery
from app.outbox.mailauth import read_return_path
from app.outbox.models import OutboxMessage
from app.supporters.models import Supporter
from app.supporters.services import hold_email

log = logging.getLogger("hotnet.bounces")

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_CODE = re.compile(r"\b([45])\d\d\b")
_HARD_WORDS = re.compile(r"user unknown|no such user|unknown user|does not exist|mailbox unavailable|"
                         r"address rejected|invalid recipient|not found|存在しません|宛先不明", re.I)
_SOFT_WORDS = re.compile(r"mailbox full|quota|over ?quota|insufficient|temporar|try again|"
                         r"容量", re.I)


@dataclass
class Report:
    """What one bounce says."""

    report_id: str
    kind: str            # hard / soft / "" (not a bounce we understand)
    status: str
    diagnostic: str
    address: str         # the recipient that failed
    source: tuple[str, int] | None  # (ledger, row) from the return path


def _verp_source(message) -> tuple[str, int] | None:
    for header in ("X-Original-To", "Delivered-To", "To", "Envelope-To"):
        for value in message.get_all(header) or ():
            for address in re.findall(r"[\w.+\-=]+@[\w.\-]+", str(value)):
                found = read_return_path(address)
                if found:
                    return found
    return None


def _classify(status: str, action: str, text: str) -> str:
    if status.startswith("5"):
        return "soft" if status.startswith("5.2.2") else "hard"
    if status.startswith("4") or action == "delayed":
        return "soft"
    if _HARD_WORDS.search(text):
        return "hard"
    code = _CODE.search(text)
    if code:
        return "hard" if code.group(1) == "5" and not _SOFT_WORDS.search(text) else "soft"
    if _SOFT_WORDS.search(text):
        return "soft"
    return ""


def parse(raw: bytes) -> Report:
    """Read one report: the standard delivery-status part when there is one, else the text."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    report_id = str(message.get("Message-ID") or "").strip() or \
        f"<no-id-{abs(hash(raw)) % 10**12}>"
    status = action = address = diagnostic = ""
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload():
                if block.get("Final-Recipient") or block.get("Action"):
                    action = str(block.get("Action", "")).strip().lower()
                    status = str(block.get("Status", "")).strip()
                    address = str(block.get("Final-Recipient", "")).split(";")[-1].strip()
                    diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
                    if action in ("failed", "delayed"):
                        break
    text = ""
    if not status:
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        found = _STATUS.search(text)
        status = ".".join(found.groups()) if found else ""
        diagnostic = " ".join(text.split())[:300]
        mail = re.search(r"<?([\w.+\-]+@[\w.\-]+)>?:", text)
        address = mail.group(1) if mail else ""
    is_report = bool(action) or message.get_content_type() == "multipart/report" or \
        "mailer-daemon" in str(message.get("From", "")).lower() or \
        "postmaster" in str(message.get("From", "")).lower()
    kind = _classify(status, action, f"{diagnostic} {text}") if is_report else ""
    if action in ("delivered", "relayed", "expanded"):
        kind = ""
    return Report(report_id=report_id[:300], kind=kind, status=status[:20],
                  diagnostic=diagnostic[:500], address=address[:254],
                  source=_verp_source(message))


def _supporter_of(report: Report) -> Supporter | None:
    if report.source is not None:
        kind, row_id = report.source
        row = db.session.get(Delivery if kind == "d" else OutboxMessage, row_id)
        if row is not None and row.supporter_id:
            return db.session.get(Supporter, row.supporter_id)
    if report.address:
        return db.session.scalar(select(Supporter).where(
            Supporter.email_key == report.address.lower()).limit(1))
    return None


def record(report: Report) -> Bounce | None:
    """Keep the report once and apply it: a hard bounce holds the address, soft ones count.
    Returns None when it was read before or is not a bounce."""
    if not report.kind:
        return None
    supporter = _supporter_of(report)
    bounce = Bounce(report_id=report.report_id, kind=report.kind, status=report.status,
                    diagnostic=report.diagnostic, address=report.address,
                    supporter_id=supporter.id if supporter else None, received_at=utcnow(),
                    source=f"{report.source[0]}{report.source[1]}" if report.source else "")
    db.session.add(bounce)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return None
    if supporter is not None and supporter.email and (
            not report.address or report.address.lower() == supporter.email.lower()):
        if report.kind == "hard":
            hold_email(supporter, f"{report.status} {report.diagnostic}".strip())
        else:
            supporter.soft_bounces = (supporter.soft_bounces or 0) + 1
            if supporter.soft_bounces >= current_app.config["HOTNET_BOUNCE_SOFT_LIMIT"]:
                hold_email(supporter, f"{supporter.soft_bounces} soft bounces; last: "
                                      f"{report.status} {report.diagnostic}".strip())
    db.session.commit()
    return bounce


@dataclass
class ReadReport:
    read: int = 0
    bounces: int = 0
    held: int = 0


def read_mailbox() -> ReadReport:
    """Read the unread reports in the bounce mailbox, apply each, and mark it read."""
    config = current_app.config
    result = ReadReport()
    if not config.get("HOTNET_BOUNCE_IMAP_HOST"):
        return result
    try:
        _read_into(result, config)
    except (OSError, imaplib.IMAP4.error) as exc:
        heartbeat.beat("bounces", {"error": f"{type(exc).__name__}: {exc}"[:300]})
        raise
    heartbeat.beat("bounces", {"read": result.read, "bounces": result.bounces, "held": result.held})
    return result


def _read_into(result: ReadReport, config) -> None:
    cls = imaplib.IMAP4_SSL if config["HOTNET_BOUNCE_IMAP_SSL"] else imaplib.IMAP4
    imap = cls(config["HOTNET_BOUNCE_IMAP_HOST"], config["HOTNET_BOUNCE_IMAP_PORT"], timeout=30)
    try:
        imap.login(config["HOTNET_BOUNCE_IMAP_USER"], config["HOTNET_BOUNCE_IMAP_PASSWORD"])
        imap.select(config["HOTNET_BOUNCE_IMAP_FOLDER"])
        _typ, data = imap.search(None, "UNSEEN")
        for number in (data[0] or b"").split():
            _typ, fetched = imap.fetch(number, "(BODY.PEEK[])")
            raw = next((part[1] for part in fetched if isinstance(part, tuple)), b"")
            held_before = _held_count()
            try:
                bounce = record(parse(raw))
            except Exception:  # noqa: BLE001 - one odd message must not stop the rest
                db.session.rollback()
                log.exception("bounce %s could not be read", number)
                bounce = None
            result.read += 1
            result.bounces += bounce is not None
            result.held += _held_count() - held_before
            imap.store(number, "+FLAGS", "\\Seen")
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def _held_count() -> int:
    from sqlalchemy import func
    return db.session.scalar(select(func.count(Supporter.id)).where(
        Supporter.email_held_at.is_not(None))) or 0

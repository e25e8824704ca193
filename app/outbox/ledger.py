"""The rules every delivery ledger follows (the outbox and each newsletter's deliveries).

A sender claims due rows in a batch (UPDATE … RETURNING; on PostgreSQL the candidates are
picked FOR UPDATE SKIP LOCKED, so several senders share the work), sends each over one SMTP
connection with a socket timeout, and marks it sent — committed — only after the server
accepted it. While it works it renews its claim (a heartbeat), so a slow relay never makes a
live sender's rows look abandoned; only rows whose claim is older than the lease are taken
over, and a row is marked only by the sender that holds it. So a crash, or a sender stalled
past its lease, repeats at most the one message that was in flight on each open connection.

Each mark is committed on a ledger connection of its own (`Marks`). On PostgreSQL it is
sent without waiting for the reply, so the server commits it while the next message's MAIL
FROM, RCPT TO and DATA go out; on SQLite, a local write, it is made once they have gone out,
while the SMTP server reads them. Before the final dot of the next message — the moment the
server accepts it — the sender waits until the mark is committed
(`TimedConnection.exchange`). So at any moment each connection has at most one accepted
message whose mark is not yet committed: the one it sent last. A crash (SIGKILL)
repeats at most that one per open connection, as before (a mark already sent may still be
committed by PostgreSQL after the crash: its message was accepted, so that is no repeat); if
the mark cannot be committed, the next message is abandoned before its dot (the connection is
closed, and the server keeps nothing of it).
"""
from __future__ import annotations

import functools
import os
import re
import smtplib
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from select import select as wait_for_socket

import flask_mail
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from psycopg import errors as pg_errors
from psycopg import pq
from sqlalchemy import and_, case, func, or_, select, update

from app.dbtypes import utcnow
from app.extensions import db
from app.outbox.mailauth import dkim_sign, return_path
from app.outbox.overlap import Pacer


@dataclass
class RunReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    lost: int = 0        # rows another sender took over while this one held them
    batches: int = 0
    capped: bool = False  # stopped at the daily cap (HOTNET_SEND_DAILY_CAP)
    errors: list[str] = field(default_factory=list)

    def add(self, other: RunReport) -> None:
        """Count in what another connection of the same run did."""
        for name in ("sent", "deferred", "failed", "skipped", "lost", "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.capped = self.capped or other.capped
        self.errors.extend(other.errors)


def worker_id(connection: int | None = None) -> str:
    """Who claims: host:pid, and /cN for each connection when a process drives several."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if connection is None else f"{base}/c{connection}"


def _pid_of(owner: str, host: str) -> int | None:
    """The process id in a worker id of this host (host:pid or host:pid/cN)."""
    pid = owner[len(host) + 1:].partition("/")[0]
    return int(pid) if owner.startswith(f"{host}:") and pid.isdigit() else None


def _pid_alive(pid: int) -> bool:
    """Whether the process exists and has not ended: one that ended and was not yet reaped (a
    zombie: a sender's worker whose parent died, where nothing reaps orphans) sends nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: as before, alive


def lease() -> timedelta:
    return timedelta(seconds=current_app.config["HOTNET_SEND_LEASE_SECONDS"])


def release_dead_claims(model) -> int:
    """Give back rows claimed by senders on this host whose process no longer exists."""
    host = socket.gethostname()
    owners = db.session.scalars(select(model.claimed_by).where(
        model.status == "sending", model.claimed_by.like(f"{host}:%")).distinct()).all()
    dead = [o for o in owners if (pid := _pid_of(o, host)) is not None and not _pid_alive(pid)]
    released = 0
    for owner in dead:
        released += db.session.execute(update(model).where(
            model.status == "sending", model.claimed_by == owner).values(
            status="waiting", claimed_by="", claimed_at=None)).rowcount
    db.session.commit()
    return released


def due(model, now=None):
    """Rows that may be claimed now: waiting or deferred and due, or claimed by a sender
    whose last heartbeat is older than the lease."""
    now = now or utcnow()
    return or_(and_(model.status.in_(("waiting", "deferred")), model.next_attempt_at <= now),
               and_(model.status == "sending", model.claimed_at < now - lease()))


# Held (PostgreSQL) by a claim bounded by a limit that all senders share.
SHARED_LIMIT_LOCK_KEY = 0x486F744E6543  # "HotNeC"


def claim(model, worker: str, size: int, candidates=None, most=None) -> list[int]:
    """Claim up to `size` due rows; returns their ids in order. `candidates` may narrow the
    choice (a select of model.id with extra joins and conditions).

    `most`: a SQL expression for a bound that every sender shares (the daily cap: how many
    may still be claimed, counting what all senders hold). It is evaluated by the claiming
    statement itself, and such claims are made one at a time (PostgreSQL: a transaction-level
    advisory lock; SQLite: one writer at a time anyway), so senders together never exceed it."""
    now = utcnow()
    if candidates is None:
        candidates = select(model.id)
    limit = size
    if most is not None:
        limit = case((most <= 0, 0), (most < size, most), else_=size)
        if db.engine.dialect.name == "postgresql":
            db.session.execute(select(func.pg_advisory_xact_lock(SHARED_LIMIT_LOCK_KEY)))
    candidates = candidates.where(due(model, now)).order_by(model.id).limit(limit)
    if db.engine.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=model)
    ids = list(db.session.scalars(
        update(model).where(model.id.in_(candidates.scalar_subquery()))
        .values(status="sending", claimed_at=now, claimed_by=worker)
        .returning(model.id)))
    db.session.commit()
    return sorted(ids)


class Heartbeat:
    """Renews a batch's claim every few seconds while it is being sent, and tells which rows
    this sender no longer holds (taken over after a stall longer than the lease)."""

    def __init__(self, model, worker: str, ids: list[int]):
        self.model, self.worker = model, worker
        self.held = set(ids)
        self.interval = max(1.0, lease().total_seconds() / 10)
        self.last = time.monotonic()

    def beat(self, force: bool = False) -> set[int]:
        """Renew if due; returns the ids still held."""
        now = time.monotonic()
        if self.held and (force or now - self.last >= self.interval):
            model = self.model
            kept = set(db.session.scalars(
                update(model).where(model.id.in_(self.held), model.claimed_by == self.worker,
                                    model.status == "sending")
                .values(claimed_at=utcnow()).returning(model.id)))
            db.session.commit()
            self.held = kept
            self.last = now
        return self.held

    def done(self, row_id: int) -> None:
        self.held.discard(row_id)


def mark_sent_sql(table: str, extra: str = "") -> str:
    """The statement that marks one row sent — only if this sender still holds it."""
    return (f"UPDATE {table} SET status = 'sent', sent_at = {{p}}, attempts = attempts + 1, "
            f"claimed_by = '', last_error = ''{extra} "
            f"WHERE id = {{p}} AND claimed_by = {{p}} AND status = 'sending'")


class Marks:
    """The marks of one connection's accepted messages, committed on a ledger connection of
    their own while the next exchange begins. One at a time: `settle` waits for the mark in
    flight (the sender calls it before the next message's final dot). A context manager (it
    opens and closes the ledger connection).

    On PostgreSQL a mark is a prepared UPDATE sent without waiting (libpq's asynchronous
    commands, autocommit): the server works on it and flushes its commit while the next
    envelope goes out, and `settle` reads the reply. No thread: handing each mark to one cost
    more CPU than the commit itself (measured with bench/newsletter_send.py, issue 16). On
    SQLite the commit is a local write, in this thread: `submit` keeps the mark and `commit`
    makes it while the SMTP server reads the next envelope (the sender calls it then; `settle`
    makes it if it was not). Either way an error surfaces at `settle`.

    The connection is the driver's own (engine.raw_connection()): a mark runs once per
    message. SQLite keeps timestamps as UTC text in the format SQLAlchemy writes."""

    def __init__(self, sql: str):
        self.sql = sql
        # Named for this ledger connection's use only: one left behind by a failure can
        # never be mistaken for the next one.
        self.name = f"hotnet_mark_{uuid.uuid4().hex[:12]}"
        self.pending: bool | BaseException | None = None
        self.in_flight = False
        self.kept: tuple | None = None  # SQLite: a mark submitted, not yet made (`commit`)

    def __enter__(self) -> Marks:
        self.sqlite = db.engine.dialect.name == "sqlite"
        self.connection = db.engine.raw_connection()
        if self.sqlite:
            self.statement = self.sql.format(p="?")
            return self
        parts = self.sql.split("{p}")  # libpq numbers its parameters: $1, $2 …
        self.statement = "".join(part + (f"${n}" if n < len(parts) else "")
                                 for n, part in enumerate(parts, start=1))
        driver = self.connection.driver_connection
        driver.autocommit = True
        self.pgconn = driver.pgconn
        self._check(self.pgconn.prepare(self.name.encode(), self.statement.encode()))
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.settle()
        finally:
            try:
                if not self.sqlite:
                    self._forget_statement()
            finally:
                self.connection.close()

    def _forget_statement(self) -> None:
        """Give the connection back to the pool as it was taken (no statement of ours, not
        in autocommit); one that cannot be put back so is closed instead."""
        driver = self.connection.driver_connection
        try:
            driver.execute(f"DEALLOCATE {self.name}")
            driver.autocommit = False
        except Exception:  # noqa: BLE001 - broken, or a reply still unread
            self.connection.invalidate()

    def submit(self, row_id: int, worker: str) -> None:
        if self.pending is not None or self.in_flight or self.kept is not None:
            raise RuntimeError("the previous mark was not settled")
        now = utcnow()
        if self.sqlite:
            self.kept = (now.strftime("%Y-%m-%d %H:%M:%S.%f"), row_id, worker)
            return
        try:
            self.pgconn.send_query_prepared(self.name.encode(), [
                now.isoformat().encode(), str(row_id).encode(), worker.encode()])
            self._flush()
            self.in_flight = True
        except Exception as exc:  # noqa: BLE001 - raised where the mark is waited for
            self.pending = exc

    def commit(self) -> None:
        """SQLite: make the mark submitted last, if not yet made (PostgreSQL: nothing to do,
        the server is at it)."""
        if self.kept is not None:
            kept, self.kept = self.kept, None
            try:
                self.pending = self._mark_now(*kept)
            except Exception as exc:  # noqa: BLE001 - raised where the mark is waited for
                self.pending = exc

    def settle(self) -> bool | None:
        """Wait for the mark in flight: True marked, False no longer ours (another sender
        took the row over: it may repeat the message), None: there was none."""
        self.commit()
        if self.in_flight:
            self.in_flight = False
            try:
                self.pending = self._reply()
            except Exception as exc:  # noqa: BLE001
                self.pending = exc
        pending, self.pending = self.pending, None
        if isinstance(pending, BaseException):
            raise pending
        return pending

    def _mark_now(self, value, row_id: int, worker: str) -> bool:
        cursor = self.connection.cursor()
        try:
            cursor.execute(self.statement, (value, row_id, worker))
            count = cursor.rowcount
        finally:
            cursor.close()
        self.connection.commit()
        return count == 1

    def _flush(self) -> None:
        """Send what libpq holds (psycopg keeps its connections non-blocking)."""
        while self.pgconn.flush():
            readable, _writable, _ = wait_for_socket([self.pgconn.socket],
                                                     [self.pgconn.socket], [])
            if readable:  # what the server says meanwhile is read, or it could wait on us
                self.pgconn.consume_input()

    def _reply(self) -> bool:
        """The reply to the mark in flight: whether it marked the row."""
        last = None
        while True:  # libpq's results of one command, then None
            while self.pgconn.is_busy():
                wait_for_socket([self.pgconn.socket], [], [])
                self.pgconn.consume_input()
            result = self.pgconn.get_result()
            if result is None:
                break
            last = result
        if last is None:
            raise RuntimeError("no reply to the mark")
        self._check(last)
        return last.command_tuples == 1

    def _check(self, result) -> None:
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            message = (result.error_message or b"").decode(errors="replace").strip()
            raise pg_errors.DatabaseError(message or f"the mark failed ({result.status.name})")


def mark_problem(model, row_id: int, attempts_before: int, reply: str, permanent: bool,
                 worker: str) -> str | None:
    """Deferred (retried later, with doubling back-off) or failed; None if not ours."""
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
    changed = db.session.execute(update(model).where(
        model.id == row_id, model.claimed_by == worker, model.status == "sending").values(
        status=status, attempts=attempts, next_attempt_at=next_at, claimed_by="",
        last_error=reply[:2000])).rowcount
    db.session.commit()
    return status if changed else None


def mark_skipped(model, row_id: int, reason: str, worker: str) -> bool:
    """A row that cannot be sent at all (no address any more, one that does not parse, a
    message that cannot be built): set aside with its reason, never retried by itself."""
    changed = db.session.execute(update(model).where(
        model.id == row_id, model.claimed_by == worker, model.status == "sending").values(
        status="skipped", claimed_by="", last_error=reason[:2000])).rowcount
    db.session.commit()
    return bool(changed)


def give_back(model, ids, worker: str) -> None:
    """Return claimed rows unsent (an issue was paused, the sender is stopping)."""
    if ids:
        db.session.execute(update(model).where(
            model.id.in_(list(ids)), model.claimed_by == worker, model.status == "sending")
            .values(status="waiting", claimed_by="", claimed_at=None))
        db.session.commit()


# --- SMTP -------------------------------------------------------------------------------------

class TimedConnection(flask_mail.Connection):
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

    def exchange(self, prepared: Prepared, before_end=None, after_envelope=None,
                 after_payload=None) -> None:
        """Send one message as smtplib's sendmail does (same replies, same errors), except
        that `before_end` is called between the server's 354 and the final dot: the message
        is accepted only after it returned. If it raises, the connection is dropped and the
        server keeps nothing of the message.

        When the server offers PIPELINING (RFC 2920), MAIL FROM, RCPT TO and DATA go in one
        write and their replies are read together: two round trips per message, not four.
        While the server works on what it was just sent, `after_envelope` is called once the
        envelope went out (the last message's mark is committed then) and `after_payload` once
        the message did (the next message is made then: the server takes longer over it)."""
        smtp = self.host
        smtp.ehlo_or_helo_if_needed()
        options = []
        if smtp.does_esmtp:
            options = ([f"size={prepared.size}"] if smtp.has_extn("size") else []) \
                + prepared.mail_options
        commands = [f"MAIL FROM:{prepared.mail_from}{_options(options)}"] + [
            f"RCPT TO:{address}{_options(prepared.rcpt_options)}" for address in prepared.rcpt_to]
        pipelined = smtp.does_esmtp and smtp.has_extn("pipelining")
        if pipelined:
            smtp.send("".join(f"{command}\r\n" for command in commands + ["DATA"]))
        if after_envelope is not None:
            after_envelope()
        replies = (smtp.getreply() if pipelined else smtp.docmd(command) for command in commands)
        code, reply = next(replies)
        if code != 250:
            for _ in commands[1:] if pipelined else ():
                next(replies)  # the replies to RCPT TO, sent already
            _refused_before_data(smtp, pipelined, code)
            raise smtplib.SMTPSenderRefused(code, reply, prepared.mail_from)
        refused = {}
        for address in prepared.rcpt_to:
            code, reply = next(replies)
            if code not in (250, 251):
                refused[address] = (code, reply)
            if code == 421:
                smtp.close()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(prepared.rcpt_to):
            _refused_before_data(smtp, pipelined, 0)
            raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = smtp.getreply() if pipelined else smtp.docmd("data")
        if code != 354:
            _reset(smtp, code)  # else the next MAIL FROM meets "503 nested MAIL"
            raise smtplib.SMTPDataError(code, reply)
        if before_end is not None:
            try:
                before_end()
            except BaseException:
                smtp.close()  # no QUIT: inside DATA it would be taken for the message
                raise
        smtp.send(prepared.payload)
        if after_payload is not None:
            after_payload()
        code, reply = smtp.getreply()
        if code != 250:
            _reset(smtp, code)
            raise smtplib.SMTPDataError(code, reply)
        flask_mail.email_dispatched.send(current_app._get_current_object(),
                                         message=prepared.message)

    def __exit__(self, exc_type, exc_value, tb):
        try:
            super().__exit__(exc_type, exc_value, tb)
        except (smtplib.SMTPException, OSError):
            pass  # the server already went away; nothing left to close cleanly


def _options(options: list[str]) -> str:
    return " " + " ".join(options) if options else ""


def _refused_before_data(smtp, pipelined: bool, code: int) -> None:
    """MAIL FROM or every RCPT TO refused. Pipelined, the DATA was sent too: its reply is
    read, and should the server have said 354 all the same, the connection is dropped
    rather than ending an empty message."""
    if pipelined:
        data_code, _reply = smtp.getreply()
        if data_code == 354:
            smtp.close()
            raise smtplib.SMTPServerDisconnected(
                "the server took DATA after refusing the message; connection closed")
    _reset(smtp, code)


def _reset(smtp, code: int) -> None:
    """After a refusal: 421 means the server is closing; otherwise start over with RSET."""
    if code == 421:
        smtp.close()
    else:
        smtp._rset()


@dataclass
class Prepared:
    """One message ready for the SMTP exchange: its envelope as the commands write it
    (<address>), and its bytes as they go after DATA (signed, dot-stuffed, ending in
    CRLF . CRLF). Made ahead of the exchange."""

    mail_from: str
    rcpt_to: list[str]
    payload: bytes
    size: int
    mail_options: list
    rcpt_options: list
    message: object  # for Flask-Mail's email_dispatched signal


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _begins_a_line_with_a_dot(data: bytes) -> bool:
    """Whether a line of the message begins with "." (SMTP doubles it). Only the dots are
    looked at, found by bytes.find (memchr): `b"\\n." in data` goes byte by byte, 25 µs for a
    newsletter, a sixth of making one, and a message has few dots (base64 has none)."""
    at = data.find(b".")
    while at != -1:
        if at == 0 or data[at - 1] == 0x0A:
            return True
        at = data.find(b".", at + 1)
    return False


_PLAIN_ADDRESS = re.compile(r'^[^<>()\[\]\\,;:\s@"]+@[^<>()\[\]\\,;:\s@"]+$')


def _angle(address: str) -> str:
    """<address> as MAIL FROM and RCPT TO write it (smtplib.quoteaddr, which parses the
    address, only when it is more than a plain one)."""
    return f"<{address}>" if _PLAIN_ADDRESS.match(address) else _quoted(address)


_quoted = functools.lru_cache(maxsize=64)(smtplib.quoteaddr)  # the From address, named


def prepare(message, data: bytes, kind: str, row_id: int) -> Prepared:
    """A message and its bytes (`message.as_bytes()`) signed and ready for the exchange.
    `kind` names the ledger in the return path ("d" deliveries, "o" outbox) so that a bounce
    finds the row (VERP). A DKIM key that cannot be used stops the sender, as it should."""
    message.return_path = return_path(kind, row_id)
    data = dkim_sign(data)
    payload = data
    if _begins_a_line_with_a_dot(payload):  # rare: a substitution over the whole is dearer
        payload = _LEADING_DOT.sub(b"..", payload)
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    sender = message.return_path or address_header(message.sender)
    return Prepared(mail_from=_angle(sender), rcpt_to=[_angle(a) for a in message.send_to],
                    payload=payload + b".\r\n", size=len(data),
                    mail_options=list(message.mail_options),
                    rcpt_options=list(message.rcpt_options), message=message)


def address_problem(address: str | None) -> str:
    """Why mail cannot go to this address at all ("" when it can): none (withdrawn, erased),
    one outside ASCII (山田@example.jp: SMTP without SMTPUTF8 cannot carry it), or one that
    does not parse. Every ledger sets such a row aside with the reason, for staff."""
    if not address:
        return "no address (the person withdrew or the address was erased)"
    if not address.isascii():
        return "the address is not ASCII (mail servers take ASCII addresses only)"
    local, _at, domain = address.rpartition("@")
    if len(address) <= 254 and _DOT_ATOM.match(local) and not _domain_problem(domain):
        return ""  # what validate_email would say, without checking each domain again
    return _parse_problem(address)


# A plain local part (RFC 5322 dot-atom), the one validate_email accepts without more ado:
# with it, an address parses when its domain does and it is not too long (254 characters).
_DOT_ATOM = re.compile(r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+(?:\.[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+)*\Z")


def _parse_problem(address: str) -> str:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"the address does not parse: {exc}"
    return ""


@functools.lru_cache(maxsize=1024)
def _domain_problem(domain: str) -> str:
    """Whether a domain parses, checked once per domain (the dearer half of validate_email:
    a newsletter's thousands of addresses share a few dozen domains)."""
    return _parse_problem(f"a@{domain}")


def open_connection() -> TimedConnection:
    connection = TimedConnection(current_app.extensions["mail"],
                                 current_app.config["HOTNET_SMTP_TIMEOUT"])
    connection.__enter__()
    return connection


def address_header(value) -> str:
    """An address header value; a display name outside ASCII is encoded (RFC 2047)."""
    if isinstance(value, str) and value.isascii() and "<" not in value:
        return value  # a bare address, as every recipient is
    return _named_address(value)


_NAMED: dict = {}


def _named_address(value) -> str:
    found = _NAMED.get(value)
    if found is None:
        found = _NAMED[value] = flask_mail.sanitize_address(value, "utf-8")
    return found


def smtp_code(exc: Exception) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return codes[0] if codes else None
    return getattr(exc, "smtp_code", None)


def smtp_reply(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                         for code, msg in exc.recipients.values())
    error = getattr(exc, "smtp_error", None)
    if isinstance(error, bytes):
        error = error.decode(errors="replace")
    code = getattr(exc, "smtp_code", None)
    return f"{code} {error}" if code else f"{type(exc).__name__}: {exc}"


# What one attempt to send came to.
SENT, DEFERRED, FAILED, DROPPED = "sent", "deferred", "failed", "dropped"


def attempt(connection: TimedConnection, prepared: Prepared, before_end=None,
            after_envelope=None, after_payload=None) -> tuple[str, str, bool]:
    """Send one message; returns (outcome, the server's reply, whether the connection is
    still usable). 4xx and a dropped connection are worth another try; 5xx is not."""
    try:
        connection.exchange(prepared, before_end, after_envelope, after_payload)
    except smtplib.SMTPServerDisconnected as exc:
        return DEFERRED, smtp_reply(exc), False
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
            smtplib.SMTPSenderRefused, smtplib.SMTPResponseException) as exc:
        code = smtp_code(exc) or 451
        return (FAILED if code >= 500 else DEFERRED), smtp_reply(exc), code != 421
    except OSError as exc:  # timeout, reset: the connection is unusable
        return DEFERRED, smtp_reply(exc), False
    except UnicodeError as exc:  # an address SMTP cannot carry: never sendable as it is
        return FAILED, f"{type(exc).__name__}: {exc}", False
    return SENT, "", True


class Batch:
    """One claimed batch on its way out: the heartbeat, one SMTP connection (opened at the
    first message, opened again after a drop), pacing, and the marks. Used as a context
    manager; what is still held at the end is given back unsent.

    `marks` commits the marks of this connection (see Marks; one per connection, kept from
    batch to batch); `pacer` is the process's HOTNET_SEND_RATE (one of its own by default)."""

    def __init__(self, model, worker: str, ids: list[int], report: RunReport, marks: Marks,
                 pacer: Pacer | None = None):
        self.model, self.worker, self.report, self.marks = model, worker, report, marks
        self.heartbeat = Heartbeat(model, worker, ids)
        self.pacer = pacer or Pacer(current_app.config["HOTNET_SEND_RATE"])
        self.connection = None
        self.broken = False  # the server could not be reached: the rest are deferred

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._settle()
        finally:
            self._close()
            give_back(self.model, self.heartbeat.held, self.worker)

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.__exit__(None, None, None)
            self.connection = None

    def holds(self, row_id: int) -> bool:
        """Whether this sender still holds the row (renewing the claim when due)."""
        if row_id in self.heartbeat.beat():
            return True
        self.report.lost += 1
        return False

    def set_aside(self, row_id: int, reason: str) -> None:
        """A row that can never be sent as it is: skipped with its reason."""
        self.report.skipped += mark_skipped(self.model, row_id, reason, self.worker)
        self.heartbeat.done(row_id)

    def send_prepared(self, row, prepared: Prepared, make_ahead=None) -> None:
        """Send one message; its mark is committed while the next one starts (and before
        the next one is accepted). After a connection failure, defer it. `make_ahead` makes
        the next messages while the server reads this one (see TimedConnection.exchange)."""
        if self.pacer.interval:
            self.marks.commit()  # not kept waiting through the pause
        self.pacer.wait()
        if self.connection is None and not self.broken:
            try:
                self.connection = open_connection()
            except Exception as exc:  # noqa: BLE001 - refused, timed out, TLS …
                self.broken = True
                self.reply = smtp_reply(exc)
                self.report.errors.append(self.reply)
        if self.broken:
            self._problem(row, self.reply, permanent=False)
            return
        outcome, reply, usable = attempt(self.connection, prepared, self._settle,
                                         self.marks.commit, make_ahead)
        if outcome == SENT:
            self.heartbeat.done(row.id)
            self.marks.submit(row.id, self.worker)
        else:
            self._problem(row, reply, permanent=outcome == FAILED)
        if not usable:
            self._close()

    def _settle(self) -> None:
        """Wait until the last accepted message's mark is committed, and count it."""
        marked = self.marks.settle()
        if marked is not None:
            self.report.sent += marked
            self.report.lost += not marked

    def _problem(self, row, reply: str, permanent: bool) -> None:
        self.heartbeat.done(row.id)
        status = mark_problem(self.model, row.id, row.attempts, reply, permanent, self.worker)
        self.report.deferred += status == "deferred"
        self.report.failed += status == "failed"

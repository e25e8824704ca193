"""The newsletter sender: works through each issue's delivery ledger over SMTP.

The ledger rules (claims, heartbeat, lease, owner-checked marks, retries) are the outbox's,
in app/outbox/ledger.py. Here: which rows are due (those of issues that are sending), the
message of each recipient, and stopping when an issue is paused or cancelled.

One process drives HOTNET_SEND_CONNECTIONS SMTP connections (default 1), each in a thread
of its own with its own database session and worker id (host:pid/cN). On each connection
three things overlap: the SMTP exchange; the making of the next messages (rendered,
serialised, signed: `Lookahead`, at most two ahead), done while the server reads the message
just sent — in the same thread, for in one process threads take turns on the interpreter
lock and a renderer thread would hold up the exchange; and the commit of the last message's
mark, made while the server reads the next message's MAIL FROM, RCPT TO and DATA
(PostgreSQL works on it meanwhile; SQLite's is made in this thread then), and waited for
before that message's final dot (see ledger.py).
So a crash repeats at most one message per open connection. The connections share the
process's pace (HOTNET_SEND_RATE is per process) and today's cap (`Shared`): no batch claims
more than is left, counting what the other connections hold, and what other senders' batches
hold (other processes, other machines).

`flask hotnet sender` can also fork HOTNET_SEND_PROCESSES worker processes (default 1), each
driving HOTNET_SEND_CONNECTIONS connections as above (`run_processes`): they take no turns on
an interpreter lock and the start-up is paid once. Each is a sender of its own (host:pid), so
every bound above holds per connection, and the workers end with the process that forked
them.
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import signal
import threading
import time
from datetime import datetime

from flask import current_app
from flask_mail import Message
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import aliased

from app.dbtypes import utcnow
from app.extensions import db
from app.formatting import TOKYO, today_tokyo
from app.geography.models import District
from app.newsletters.mime import build_message
from app.newsletters.models import Delivery, Newsletter
from app.newsletters.recipients import Links, area_infos
from app.newsletters.rendering import TemplateCache
from app.outbox import ledger
from app.outbox.ledger import RunReport, worker_id
from app.outbox.overlap import Lookahead, Pacer
from app.supporters.models import Supporter, salutation

log = logging.getLogger("hotnet.sender")


def claim_batch(worker: str, size: int) -> list[int]:
    """Claim up to `size` due rows of issues that are sending; returns their ids. Under a daily
    cap, no more than is left of it, counting the rows every sender holds (see ledger.claim)."""
    candidates = (select(Delivery.id).join(Newsletter, Newsletter.id == Delivery.newsletter_id)
                  .where(Newsletter.status == "sending"))
    cap = current_app.config["HOTNET_SEND_DAILY_CAP"]
    most = cap - _used_today().scalar_subquery() if cap else None
    return ledger.claim(Delivery, worker, size, candidates, most)


_COUNTED = aliased(Delivery)  # the rows counted against the cap: not the claimed table's


def _used_today(besides: str | None = None):
    """A count of what uses up today's cap: messages sent since midnight (Japan time) and rows
    a sender has claimed and not yet sent — besides those of `besides` (a worker id, and its
    connections'), which that sender counts itself."""
    claimed = _COUNTED.status == "sending"
    if besides is not None:
        claimed = and_(claimed, _COUNTED.claimed_by != besides,
                       ~_COUNTED.claimed_by.startswith(f"{besides}/", autoescape=True))
    return select(func.count(_COUNTED.id)).where(or_(
        claimed, and_(_COUNTED.status == "sent", _COUNTED.sent_at >= _midnight())))


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


def _load_issues(rows, state: dict) -> None:
    """The issues of a batch's rows and their rendered shells, kept for the run."""
    for newsletter_id in {row.newsletter_id for row in rows} - set(state["newsletters"]):
        newsletter = db.session.get(Newsletter, newsletter_id)
        # Keep it out of the session: committing after each message would
        # otherwise expire it and reload it for the next one.
        db.session.expunge(newsletter)
        state["newsletters"][newsletter_id] = newsletter
        state["caches"][newsletter_id] = TemplateCache(newsletter)
    db.session.commit()


def _prepared(rows, state: dict):
    """(row, the message ready for SMTP or None, why it cannot be sent) for each row, made
    ahead while the server is busy (see Lookahead)."""
    for row in rows:
        reason, prepared = ledger.address_problem(row.email), None
        if not reason:
            try:
                message = _message(row, state["newsletters"][row.newsletter_id],
                                   state["caches"][row.newsletter_id], state["areas"],
                                   state["links"])
                data = message.as_bytes()
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the rest
                log.exception("delivery %s cannot be rendered", row.id)
                reason = f"cannot be rendered: {type(exc).__name__}: {exc}"
            else:
                prepared = ledger.prepare(message, data, "d", row.id)
        yield row, prepared, reason


def send_batch(ids: list[int], report: RunReport, state: dict) -> None:
    """Send one claimed batch over one connection (reconnecting after a drop).

    A row that cannot be sent (no address, one that no longer parses, a message that cannot
    be rendered) is set aside with its reason and never stops the batch or other issues.
    """
    with ledger.Batch(Delivery, state["worker"], ids, report, state["marks"],
                      state["pacer"]) as batch:
        # Inside the batch: should loading fail, its rows are given back at once.
        rows = _load(ids)
        _load_issues(rows, state)
        ahead = Lookahead(_prepared(rows, state))
        for row, prepared, reason in ahead:
            if not batch.holds(row.id) or _stopped(row.newsletter_id, state):
                continue  # a stopped issue's rows are given back when the batch ends
            if reason:
                batch.set_aside(row.id, reason)
            else:
                batch.send_prepared(row, prepared, ahead.make_one)


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


class Shared:
    """What the connections of one sender process share: the pace (HOTNET_SEND_RATE is a
    limit for the process), today's cap (rows claimed by batches still being sent count
    against what is left, so no connection overshoots it), `max_batches`, and a stop when
    one connection fails."""

    def __init__(self, max_batches: int | None, owner: str):
        self.owner = owner  # this process's worker id (its connections' ids begin with it)
        self.pacer = Pacer(current_app.config["HOTNET_SEND_RATE"])
        self.max_batches = max_batches
        self.batches = 0
        self.held = 0  # rows claimed by this process's batches in progress
        self.changed = threading.Condition()
        self.failure: BaseException | None = None

    def reserve(self, size: int) -> int | None:
        """How many rows the next batch may claim: `size`, fewer near the cap, 0 at the cap;
        None when the run is over (max_batches reached, another connection failed). Near the
        cap, waits for the other connections' batches before saying 0."""
        with self.changed:
            while True:
                if self.failure is not None or self.batches == self.max_batches:
                    return None
                left = left_today(besides=self.owner)
                allowed = size if left is None else min(size, max(0, left - self.held))
                if allowed or not self.held:
                    self.held += allowed
                    self.batches += bool(allowed)
                    return allowed
                self.changed.wait(1.0)

    def claimed(self, reserved: int, ids: list[int]) -> None:
        """The claim got `ids` of the `reserved` rows (none: the batch does not count)."""
        with self.changed:
            self.held -= reserved - len(ids)
            self.batches -= not ids
            self.changed.notify_all()

    def done(self, ids: list[int]) -> None:
        """The batch ended: what it sent counts in left_today() now."""
        with self.changed:
            self.held -= len(ids)
            self.changed.notify_all()

    def fail(self, error: BaseException) -> None:
        with self.changed:
            self.failure = self.failure or error
            self.changed.notify_all()


def run(until_idle: bool = True, max_batches: int | None = None, worker: str | None = None,
        idle_sleep: float = 5.0) -> RunReport:
    """Work through the ledger over HOTNET_SEND_CONNECTIONS connections. With until_idle,
    return once nothing is due now."""
    connections = current_app.config["HOTNET_SEND_CONNECTIONS"]
    release_dead_claims()
    shared = Shared(max_batches, worker or worker_id())
    report = RunReport()
    if connections == 1:
        _connection(worker or worker_id(), shared, report, until_idle, idle_sleep)
    else:
        app = current_app._get_current_object()
        reports = [RunReport() for _ in range(connections)]
        threads = [threading.Thread(target=_connection_thread, name=f"hotnet-send-c{n}", args=(
            app, f"{worker}/c{n}" if worker else worker_id(n), shared, reports[n - 1],
            until_idle, idle_sleep)) for n in range(1, connections + 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for each in reports:
            report.add(each)
        if shared.failure is not None:
            raise shared.failure
    _finish_done_issues()
    if report.batches:
        log.info("sender: %s", report)
    return report


def run_processes(processes: int, until_idle: bool = True, idle_sleep: float = 5.0) -> RunReport:
    """`run` in `processes` worker processes forked from this one (HOTNET_SEND_PROCESSES), their
    reports added up. When a worker fails, the others finish what is due (until_idle) or are
    stopped (a sender that runs for good); then the failed one's rows are given back (its
    process is gone) and the failure is raised."""
    if processes == 1:
        return run(until_idle=until_idle, idle_sleep=idle_sleep)
    app = current_app._get_current_object()
    db.session.remove()
    db.engine.dispose()  # no database connection may be shared across the fork
    context = multiprocessing.get_context("fork")
    reports = context.SimpleQueue()
    workers = [context.Process(target=_worker_process, name=f"hotnet-send-p{n}", daemon=True,
                               args=(app, until_idle, idle_sleep, reports))
               for n in range(1, processes + 1)]
    for process in workers:
        process.start()
    running = {process.sentinel: process for process in workers}
    while running:
        for sentinel in multiprocessing.connection.wait(list(running)):
            ended = running.pop(sentinel)
            ended.join()  # its pipe closes a moment before its exit status is there
            if ended.exitcode and not until_idle:
                # A sender that runs for good stops whole, as one process would (its service
                # starts it again), rather than go on with a worker fewer.
                for process in running.values():
                    process.terminate()
    report = RunReport()
    while not reports.empty():
        report.add(reports.get())
    failed = [process.name for process in workers if process.exitcode]
    if failed:
        release_dead_claims()
        raise RuntimeError(f"sender worker processes failed: {', '.join(failed)}")
    return report


def _worker_process(app, until_idle: bool, idle_sleep: float, reports) -> None:
    _end_with_parent()
    with app.app_context():
        db.engine.dispose(close=False)  # the parent's pool is not this process's
        report = run(until_idle=until_idle, idle_sleep=idle_sleep)
    del report.errors[20:]  # the report goes through a pipe; it stays small
    reports.put(report)


def _end_with_parent() -> None:
    """Linux: this worker gets SIGTERM when the process that forked it dies, however it dies
    (else a killed sender would leave workers sending on their own)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _connection_thread(app, worker: str, shared: Shared, report: RunReport, until_idle: bool,
                       idle_sleep: float) -> None:
    with app.app_context():
        try:
            _connection(worker, shared, report, until_idle, idle_sleep)
        except BaseException as exc:  # noqa: BLE001 - raised again by run()
            log.exception("sender connection %s failed", worker)
            shared.fail(exc)


def _connection(worker: str, shared: Shared, report: RunReport, until_idle: bool,
                idle_sleep: float) -> None:
    """One SMTP connection's work: claim a batch, send it, until nothing is due."""
    state = _fresh_state()
    state.update(worker=worker, pacer=shared.pacer)
    size = current_app.config["HOTNET_SEND_BATCH"]
    with ledger.Marks(_MARK_SENT) as marks:
        state["marks"] = marks
        while True:
            allowed = shared.reserve(size)
            if allowed is None:
                break
            if allowed == 0:
                log.info("sender: today's cap of %d messages is reached; the rest goes tomorrow",
                         current_app.config["HOTNET_SEND_DAILY_CAP"])
                report.capped = True
                break
            ids = []
            try:
                ids = claim_batch(worker, allowed)
            finally:
                shared.claimed(allowed, ids)
            if not ids:
                _finish_done_issues()
                if until_idle:
                    break
                time.sleep(idle_sleep)
                state.update(_fresh_state())
                continue
            report.batches += 1
            try:
                send_batch(ids, report, state)
            finally:
                shared.done(ids)


def _midnight() -> datetime:
    """Today's start, Japan time: providers count per day."""
    return datetime.combine(today_tokyo(), datetime.min.time(), tzinfo=TOKYO)


def left_today(besides: str | None = None) -> int | None:
    """How many more may go today under HOTNET_SEND_DAILY_CAP (None: no cap), counting what
    senders hold (see _used_today). A send that meets the cap waits, still "sending", and the
    scheduler goes on after midnight."""
    cap = current_app.config["HOTNET_SEND_DAILY_CAP"]
    if not cap:
        return None
    left = cap - db.session.scalar(_used_today(besides))
    db.session.rollback()
    return max(0, left)

"""The scheduler process (`flask hotnet scheduler`) and the jobs it runs.

Several may run for failover; exactly one is active (app/heartbeat.py: a PostgreSQL advisory
lock, or a lease row on SQLite), so APScheduler's job store — in the application database
(SQLAlchemyJobStore), so a restart picks up where it stopped — is only ever used by one
scheduler at a time. Never in web workers.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

log = logging.getLogger("hotnet.scheduler")
_app: Flask | None = None


def purge_expired_links_job() -> None:
    """Delete one-time sign-in links that expired more than a day ago, and imports staged
    more than a day ago that nobody decided on."""
    from app.supporters.csvio import purge_stale_imports
    from app.supporters.signin import purge_expired_links

    with _app.app_context():
        removed = purge_expired_links()
        imports = purge_stale_imports(hours=24)
    log.info("purged %d expired sign-in links and %d undecided imports", removed, imports)


def start_due_newsletters_job() -> None:
    """Start scheduled newsletters whose time has come (also those missed while we were down)."""
    from app.newsletters.services import start_due

    with _app.app_context():
        started = start_due()
    if started:
        log.info("started newsletters %s", started)


def deliver_newsletters_job() -> None:
    """Work through the delivery ledger until nothing is due."""
    from app.newsletters.sender import run

    with _app.app_context():
        run(until_idle=True)


def read_bounces_job() -> None:
    """Read the bounce mailbox: hold addresses that no longer take mail."""
    from app.newsletters.bounces import read_mailbox

    with _app.app_context():
        result = read_mailbox()
    if result.read:
        log.info("bounces: %d read, %d bounces, %d addresses held", result.read, result.bounces,
                 result.held)


def housekeeping_job() -> None:
    """Forget what is no longer needed: old submission keys, old sent mail."""
    from app.outbox.services import purge_old
    from app.submissions import purge

    with _app.app_context():
        keys, mails = purge(days=30), purge_old(days=90)
    if keys or mails:
        log.info("housekeeping: %d submission keys, %d old messages removed", keys, mails)


def deliver_outbox_job() -> None:
    """Send what the app queued (sign-in links, receipts, confirmations …) until none is due."""
    from app.outbox.sender import deliver

    with _app.app_context():
        deliver(until_idle=True)


def concern_digest_job() -> None:
    """Send today's digests (once per day and coordinator, from the configured hour)."""
    from app.concerns.digest import send_daily_digests

    with _app.app_context():
        sent = send_daily_digests()
    if sent:
        log.info("sent %d concern digests", sent)


def purge_expired_concerns_job() -> None:
    """Erase personal details of concerns closed longer ago than the retention period."""
    from app.concerns.retention import purge_expired_concerns

    with _app.app_context():
        erased = purge_expired_concerns()
    if erased:
        log.info("erased personal details of %d concerns", erased)


def training_reminders_job() -> None:
    """Remind people of sessions in the next few days (once per registration)."""
    from app.trainings.services import send_reminders

    with _app.app_context():
        sent = send_reminders()
    if sent:
        log.info("sent %d training reminders", sent)


def backup_job() -> None:
    """The nightly backup (from HOTNET_BACKUP_HOUR, once a day), keeping the newest N."""
    from app.backup import nightly_backup

    with _app.app_context():
        result = nightly_backup()
    if result is not None:
        log.info("backup written: %s (%d bytes)", result.path, result.bytes)


def build_scheduler(app: Flask, scheduler_class=BlockingScheduler) -> BaseScheduler:
    """The scheduler with its job store in the application database and every job added."""
    global _app
    _app = app
    scheduler = scheduler_class(
        jobstores={"default": SQLAlchemyJobStore(
            url=app.config["SQLALCHEMY_DATABASE_URI"], tablename="scheduler_job")},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone="Asia/Tokyo",
    )
    scheduler.add_job(purge_expired_links_job, "interval", hours=1, id="purge_expired_links",
                      replace_existing=True)
    # Both run at once when the scheduler starts, so a send that fell due while it was
    # down goes out straight away (once: starting a send is a guarded state change).
    now = datetime.now(timezone.utc)
    scheduler.add_job(start_due_newsletters_job, "interval", seconds=20, next_run_time=now,
                      id="start_due_newsletters", replace_existing=True)
    scheduler.add_job(deliver_newsletters_job, "interval", seconds=10, next_run_time=now,
                      id="deliver_newsletters", replace_existing=True)
    # Sign-in links and receipts go out within seconds; a separate job (and connection)
    # from the newsletters, so that a long send never holds them up.
    scheduler.add_job(deliver_outbox_job, "interval", seconds=2, next_run_time=now,
                      id="deliver_outbox", replace_existing=True)
    # The digest job runs often and does its work once a day: a restart after the digest
    # hour still sends today's digest, and a table of sent digests stops a second one.
    scheduler.add_job(concern_digest_job, "interval", minutes=10, next_run_time=now,
                      id="concern_digest", replace_existing=True)
    scheduler.add_job(training_reminders_job, "interval", minutes=10, next_run_time=now,
                      id="training_reminders", replace_existing=True)
    scheduler.add_job(purge_expired_concerns_job, "interval", hours=6, next_run_time=now,
                      id="purge_expired_concerns", replace_existing=True)
    scheduler.add_job(housekeeping_job, "interval", hours=6, next_run_time=now,
                      id="housekeeping", replace_existing=True)
    scheduler.add_job(read_bounces_job, "interval", minutes=5, next_run_time=now,
                      id="read_bounces", replace_existing=True)
    scheduler.add_job(backup_job, "interval", minutes=15, next_run_time=now,
                      id="backup", replace_existing=True)
    return scheduler


def run(app: Flask) -> int:
    """Wait to become the active scheduler, then run the jobs while the lock or lease holds.

    Returns 0 when stopped (SIGTERM, Ctrl-C), 1 when the lock or lease was lost: the process
    then exits, and systemd starts it again as a standby."""
    import time

    from apscheduler.schedulers.background import BackgroundScheduler

    from app.heartbeat import Leadership, beat

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Every run of a 10-second job is not news; failures still are (WARNING and up).
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    import signal
    import sys

    # systemd stops with SIGTERM: let go of the lock or lease at once for the standby.
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(0))
    every = app.config["HOTNET_SCHEDULER_POLL_SECONDS"]
    leader = Leadership(app.config["HOTNET_SCHEDULER_LEASE_SECONDS"])
    try:
        if not leader.try_acquire():
            log.info("scheduler standing by: another scheduler is active")
            while not leader.try_acquire():
                time.sleep(every)
        log.info("scheduler active (%s)", leader.me)
        beat("scheduler", {"role": "active"}, holder=leader.me)
        scheduler = build_scheduler(app, BackgroundScheduler)
        runs: dict[str, dict] = {}  # job id → its last run, in the heartbeat (health checks)

        def note_run(event) -> None:
            runs[event.job_id] = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  "ok": event.exception is None}

        scheduler.add_listener(note_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start()
        try:
            while True:
                time.sleep(every)
                if not leader.renew({"jobs": dict(runs)}):
                    log.error("scheduler lost its lock or lease: stopping, another takes over")
                    return 1
        finally:
            scheduler.shutdown(wait=False)
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        leader.release()

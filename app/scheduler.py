"""The one scheduler process (`flask hotnet scheduler`) and the jobs it may run.

APScheduler 3 keeps its jobs in the application database (SQLAlchemyJobStore), so a
restart picks up where it stopped. It runs in exactly one process, never in web workers.
"""
from __future__ import annotations

import logging

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

log = logging.getLogger("hotnet.scheduler")
_app: Flask | None = None


def purge_expired_links_job() -> None:
    """Delete one-time sign-in links that expired more than a day ago."""
    from app.accounts.services import purge_expired_links

    with _app.app_context():
        removed = purge_expired_links()
    log.info("purged %d expired sign-in links", removed)


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
    return scheduler


def run(app: Flask) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    scheduler = build_scheduler(app)
    log.info("scheduler started")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass

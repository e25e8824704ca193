"""Signs of life, and one active scheduler among several.

`service_status` keeps one row per thing worth watching: the scheduler's heartbeat, the last
backup, the last bounce read. Health checks (`app/health.py`) read it.

Several `flask hotnet scheduler` processes may run, on one host or several; exactly one is
active. On PostgreSQL it holds a session-level advisory lock on a connection of its own: the
database frees the lock the moment that process or its connection dies, and a standby that
polls takes over. On SQLite it holds a lease row that it renews every few seconds; a standby
takes over once the lease has run out. An active scheduler that cannot renew stops at once
(and systemd starts it again, as a standby).
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import JSON, String, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db

# Any fixed 64-bit number that no other application on the same database uses.
ADVISORY_LOCK_KEY = 0x486F744E6574  # "HotNet"


class ServiceStatus(db.Model):
    """The latest sign of one thing: when (`at`), by whom (`holder`), until when a lease runs
    (`until`), and what it reported (`detail`)."""

    __tablename__ = "service_status"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(name: str, detail: dict | None = None, *, holder: str = "") -> None:
    """Record a sign of life (committed at once, in a transaction of its own)."""
    values = {"at": utcnow(), "holder": holder or process_id(), "detail": detail or {}}
    with db.engine.begin() as conn:
        done = conn.execute(update(ServiceStatus).where(ServiceStatus.name == name)
                            .values(**values)).rowcount
        if not done:
            try:
                conn.execute(ServiceStatus.__table__.insert().values(name=name, **values))
            except IntegrityError:  # another process wrote it first: update instead
                conn.rollback()
                with db.engine.begin() as again:
                    again.execute(update(ServiceStatus).where(ServiceStatus.name == name)
                                  .values(**values))


def last(name: str) -> ServiceStatus | None:
    return db.session.get(ServiceStatus, name)


class Leadership:
    """Who runs the scheduler. `try_acquire()` until it says True; then `renew()` every few
    seconds; a False from `renew()` means another process may be active now: stop."""

    def __init__(self, lease_seconds: int):
        self.me = process_id()
        self.lease = timedelta(seconds=lease_seconds)
        self.postgres = db.engine.dialect.name == "postgresql"
        self._conn = None

    def try_acquire(self) -> bool:
        if self.postgres:
            return self._try_lock()
        return self._take_lease()

    def renew(self, detail: dict | None = None) -> bool:
        """Keep the lock or lease, and beat with `detail` (the jobs' last runs)."""
        try:
            held = self._lock_alive() if self.postgres else self._take_lease()
        except OperationalError:
            held = False if self.postgres else not self._lease_ran_out()
        if held:
            try:
                beat("scheduler", {"role": "active", **(detail or {})}, holder=self.me)
            except OperationalError:
                pass  # a busy database: the next beat will do
        return held

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # the session ends: PostgreSQL frees the lock
            except Exception:  # noqa: BLE001 - the process is stopping anyway
                pass
            self._conn = None
        elif not self.postgres:
            with db.engine.begin() as conn:
                conn.execute(update(ServiceStatus).where(
                    ServiceStatus.name == "scheduler-lease", ServiceStatus.holder == self.me)
                    .values(until=utcnow()))

    # --- PostgreSQL: an advisory lock on a connection kept open --------------------------

    def _try_lock(self) -> bool:
        if self._conn is None:
            self._conn = db.engine.connect()
        got = self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                 {"key": ADVISORY_LOCK_KEY}).scalar()
        self._conn.commit()  # never idle in a transaction; the lock belongs to the session
        if not got:
            self._conn.close()
            self._conn = None
        return bool(got)

    def _lock_alive(self) -> bool:
        if self._conn is None:
            return False
        held = self._conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = :key"),
            {"key": ADVISORY_LOCK_KEY}).scalar()
        self._conn.commit()
        return bool(held)

    # --- SQLite: a lease row ------------------------------------------------------------------

    def _take_lease(self) -> bool:
        now = utcnow()
        with db.engine.begin() as conn:
            taken = conn.execute(
                update(ServiceStatus)
                .where(ServiceStatus.name == "scheduler-lease",
                       (ServiceStatus.holder == self.me) | (ServiceStatus.until < now)
                       | ServiceStatus.until.is_(None))
                .values(holder=self.me, at=now, until=now + self.lease)).rowcount
            if taken:
                return True
            exists = conn.execute(select(ServiceStatus.name).where(
                ServiceStatus.name == "scheduler-lease")).first()
            if exists:
                return False
        try:
            with db.engine.begin() as conn:
                conn.execute(ServiceStatus.__table__.insert().values(
                    name="scheduler-lease", holder=self.me, at=now, until=now + self.lease,
                    detail={}))
            return True
        except IntegrityError:
            return False

    def _lease_ran_out(self) -> bool:
        row = db.session.get(ServiceStatus, "scheduler-lease")
        db.session.rollback()
        return row is None or row.holder != self.me or row.until is None or row.until < utcnow()

"""Many people take the last seats at the same instant: capacity holds, the waitlist keeps its
order, and freed seats go to exactly the next in line. Each thread has its own app context,
so its own database session and connection."""
from __future__ import annotations

import threading
from datetime import time, timedelta

from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.formatting import today_tokyo
from app.supporters import services as supporters
from app.trainings import services
from app.trainings.models import Registration, TrainingSession
from tests.conftest import district

PEOPLE, SEATS, CANCELLING = 200, 30, 10


def run_together(app, jobs) -> list[Exception]:
    """Start every job at once (a barrier), each in its own thread and app context."""
    barrier = threading.Barrier(len(jobs))
    errors: list[Exception] = []

    def worker(job):
        with app.app_context():
            barrier.wait()
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - collected and asserted on
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


def test_200_at_once_for_30_seats_then_10_cancellations(app, geography, mailbox, backend):
    training = services.save_training(None, {"title": "登録研修", "kind": "registration",
                                             "published": True}, actor=None)
    session = services.add_session(training, {
        "day": today_tokyo() + timedelta(days=20), "start_time": time(10), "end_time": time(12),
        "venue_name": "田無公民館", "capacity": SEATS}, actor=None)
    ids = []
    for n in range(PEOPLE):
        person = supporters.add_supporter({
            "kind": "person", "name": f"参加 {n:03d}", "kana": "さんか", "delivery": "email",
            "email": f"p{n:03d}@example.jp", "status": "active", "joined_via": "staff",
            "district_id": district("d01").id, "phone": "", "postal_code": "", "address": ""},
            "created", actor=None)
        ids.append(person.id)
    db.session.commit()
    session_id = session.id
    # Its own engine: up to 60 connections at the same instant (PostgreSQL allows 100 here);
    # the other threads wait for a connection and then race like the rest.
    worker_app = create_app(dict(app.config, SQLALCHEMY_ENGINE_OPTIONS={
        "pool_size": 60, "max_overflow": 0, "pool_timeout": 120}))

    def sign_up(supporter_id):
        return lambda: services.sign_up(session_id, db.session.get(
            services.Supporter, supporter_id), actor=None)

    errors = run_together(worker_app, [sign_up(i) for i in ids])
    assert errors == []
    db.session.expire_all()
    rows = list(db.session.scalars(select(Registration).where(Registration.session_id == session_id)))
    confirmed = [r for r in rows if r.status == "confirmed"]
    waiting = services.waitlist(db.session.get(TrainingSession, session_id))
    print(f"\n{backend}: {PEOPLE} sign-ups at once for {SEATS} seats: "
          f"{len(confirmed)} confirmed, {len(waiting)} waitlisted, {len(rows)} rows")
    assert len(confirmed) == SEATS and len(waiting) == PEOPLE - SEATS
    assert db.session.get(TrainingSession, session_id).confirmed == SEATS

    next_in_line = [r.supporter_id for r in waiting[:CANCELLING]]
    leaving = [r.id for r in confirmed[:CANCELLING]]
    mailbox.clear()

    def cancel(registration_id):
        return lambda: services.cancel(registration_id, actor=None)

    errors = run_together(worker_app, [cancel(i) for i in leaving])
    assert errors == []
    db.session.expire_all()
    promoted = sorted(r.supporter_id for r in db.session.scalars(
        select(Registration).where(Registration.session_id == session_id,
                                   Registration.status == "confirmed"))
        if r.supporter_id not in {c.supporter_id for c in confirmed})
    still_waiting = services.waitlist(db.session.get(TrainingSession, session_id))
    from app.outbox.sender import deliver
    deliver(until_idle=True)  # what the sender process does within seconds
    promotion_mails = [m for _r, m in mailbox if "繰り上がり" in m.get_body(("plain",)).get_content()]
    print(f"{backend}: {CANCELLING} cancellations at once: {len(promoted)} promoted "
          f"(the next {CANCELLING} in line: {sorted(next_in_line) == promoted}), "
          f"{len(still_waiting)} still waiting, {len(promotion_mails)} promotion e-mails")
    assert promoted == sorted(next_in_line)
    assert len(still_waiting) == PEOPLE - SEATS - CANCELLING
    assert db.session.get(TrainingSession, session_id).confirmed == SEATS
    assert len(promotion_mails) == CANCELLING
    with worker_app.app_context():
        db.engine.dispose()

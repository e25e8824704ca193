"""A scheduled send that fell due while no scheduler ran goes out once when it comes back."""
import collections
from datetime import timedelta

from sqlalchemy import update

from app.dbtypes import utcnow
from app.extensions import db
from app.heartbeat import ServiceStatus
from app.newsletters import services
from app.newsletters.models import Newsletter
from tests.reliability.conftest import add_recipients, flask_process, wait_for


def jobs_run_by(pid: int) -> dict:
    """The jobs the active scheduler with this pid has run (its heartbeat), else {}."""
    db.session.expire_all()
    row = db.session.get(ServiceStatus, "scheduler")
    db.session.rollback()
    if row is None or not row.holder.endswith(f":{pid}"):
        return {}
    return row.detail.get("jobs", {})


def test_send_due_while_scheduler_was_down_goes_out_once(geography, mailbox, process_env):
    addresses = add_recipients(30)
    newsletter = services.save_draft(None, {
        "layout": "regular", "number": "第3号", "title": "春の通信", "subject": "春の通信",
        "body_md": "桜が咲きました。"}, services.audiences.Audience(), None)
    services.schedule(newsletter, utcnow() + timedelta(minutes=1), actor=None)
    # The scheduler has been down a long while: the due time passed five hours ago, far
    # beyond APScheduler's default grace time. With no scheduler, nothing was sent.
    db.session.execute(update(Newsletter).values(scheduled_at=utcnow() - timedelta(hours=5)))
    db.session.commit()
    assert mailbox == [] and db.session.get(Newsletter, newsletter.id).status == "scheduled"

    env = dict(process_env, HOTNET_SCHEDULER_POLL_SECONDS="1")
    scheduler = flask_process(env, "scheduler")
    try:
        assert wait_for(lambda: len(mailbox) >= len(addresses), timeout=60)
        # Idle: the issue is sent and every delivery marked, so nothing is left to repeat.
        assert wait_for(lambda: services.progress(newsletter.id)["sent"] == len(addresses),
                        timeout=30)
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=20)
    # Started again, the scheduler does not send the issue a second time: wait until it has
    # run the jobs that start due issues and deliver them.
    scheduler = flask_process(env, "scheduler")
    try:
        assert wait_for(lambda: {"start_due_newsletters", "deliver_newsletters"}
                        <= set(jobs_run_by(scheduler.pid)), timeout=60)
    finally:
        scheduler.terminate()
        output, _ = scheduler.communicate(timeout=20)
    received = collections.Counter(a for recipients, _m in mailbox for a in recipients)
    assert set(received) == set(addresses) and set(received.values()) == {1}, output.decode()
    db.session.expire_all()
    assert db.session.get(Newsletter, newsletter.id).status == "sent"

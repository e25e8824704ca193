"""A scheduled send that fell due while no scheduler ran goes out once when it comes back."""
import collections
import time
from datetime import timedelta

from sqlalchemy import update

from app.dbtypes import utcnow
from app.extensions import db
from app.newsletters import services
from app.newsletters.models import Newsletter
from tests.reliability.conftest import add_recipients, flask_process, wait_for


def test_send_due_while_scheduler_was_down_goes_out_once(geography, mailbox, process_env):
    addresses = add_recipients(30)
    newsletter = services.save_draft(None, {
        "layout": "regular", "number": "第3号", "title": "春の通信", "subject": "春の通信",
        "body_md": "桜が咲きました。"}, services.audiences.Audience(), None)
    services.schedule(newsletter, utcnow() + timedelta(seconds=2), actor=None)
    time.sleep(3)  # the due time passes; no scheduler is running
    assert mailbox == []
    # The scheduler has been down a long while: far beyond APScheduler's default grace time.
    db.session.execute(update(Newsletter).values(scheduled_at=utcnow() - timedelta(hours=5)))
    db.session.commit()

    scheduler = flask_process(process_env, "scheduler")
    try:
        assert wait_for(lambda: len(mailbox) >= len(addresses), timeout=60)
        time.sleep(2)  # give a wrongly repeated send the chance to show itself
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=20)
    # Started again, the scheduler does not send the issue a second time.
    scheduler = flask_process(process_env, "scheduler")
    try:
        time.sleep(4)
    finally:
        scheduler.terminate()
        output, _ = scheduler.communicate(timeout=20)
    received = collections.Counter(a for recipients, _m in mailbox for a in recipients)
    assert set(received) == set(addresses) and set(received.values()) == {1}, output.decode()
    db.session.expire_all()
    assert db.session.get(Newsletter, newsletter.id).status == "sent"

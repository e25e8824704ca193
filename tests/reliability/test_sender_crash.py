"""Kill -9 the real sender mid-send, several times; starting it again finishes the send with
no recipient skipped and at most one duplicate per kill."""
import collections
import signal

from sqlalchemy import select

from app.extensions import db
from app.newsletters import services
from app.newsletters.models import Delivery, Newsletter
from tests.reliability.conftest import add_recipients, flask_process, wait_for

RECIPIENTS = 240
KILL_AT = (25, 90, 170)  # messages received when each kill lands


def test_sender_killed_with_sigkill_resumes_without_loss(geography, mailbox, process_env):
    addresses = add_recipients(RECIPIENTS)
    newsletter = services.save_draft(None, {
        "layout": "announcement", "number": "", "title": "停電対策", "subject": "停電対策のお知らせ",
        "body_md": "懐中電灯の用意を。"}, services.audiences.Audience(), None)
    assert services.start_send(newsletter.id, actor=None) == RECIPIENTS
    env = dict(process_env, HOTNET_SEND_BATCH="20", HOTNET_SEND_RATE="150",
               HOTNET_SEND_LEASE_SECONDS="3600")  # only the dead-process check can free claims
    kills = 0
    for threshold in KILL_AT:
        sender = flask_process(env, "sender", "--until-idle")
        assert wait_for(lambda threshold=threshold: len(mailbox) >= threshold, timeout=60), sender.communicate()
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=10)
        kills += 1
    sender = flask_process(env, "sender", "--until-idle")
    output, _ = sender.communicate(timeout=120)
    assert sender.returncode == 0, output.decode()

    received = collections.Counter(address for recipients, _m in mailbox for address in recipients)
    missing = set(addresses) - set(received)
    duplicates = sum(n - 1 for n in received.values())
    print(f"crash test: {RECIPIENTS} recipients, {kills} kills, {sum(received.values())} "
          f"messages received, {duplicates} duplicates, {len(missing)} missing")
    assert not missing
    assert duplicates <= kills
    db.session.expire_all()
    statuses = collections.Counter(db.session.scalars(select(Delivery.status)))
    assert statuses == {"sent": RECIPIENTS}
    assert db.session.get(Newsletter, newsletter.id).status == "sent"

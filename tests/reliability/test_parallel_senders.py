"""Several senders share one send: every recipient gets exactly one message. (PostgreSQL
claims with FOR UPDATE SKIP LOCKED; SQLite serialises the claiming UPDATE … RETURNING.)"""
import collections

from sqlalchemy import func, select

from app.extensions import db
from app.newsletters import services
from app.newsletters.models import Delivery
from tests.reliability.conftest import add_recipients, flask_process


def test_three_senders_share_the_work_without_duplicates(geography, mailbox, process_env):
    addresses = add_recipients(300)
    newsletter = services.save_draft(None, {
        "layout": "announcement", "number": "", "title": "並行", "subject": "並行送信",
        "body_md": "本文"}, services.audiences.Audience(), None)
    services.start_send(newsletter.id, actor=None)
    env = dict(process_env, HOTNET_SEND_BATCH="10")
    senders = [flask_process(env, "sender", "--until-idle") for _ in range(3)]
    outputs = [s.communicate(timeout=180)[0].decode() for s in senders]
    assert all(s.returncode == 0 for s in senders), outputs
    received = collections.Counter(a for recipients, _m in mailbox for a in recipients)
    assert set(received) == set(addresses) and set(received.values()) == {1}
    statuses = set(db.session.scalars(select(func.distinct(Delivery.status))))
    assert statuses == {"sent"}
    assert sum(int(o.split("\nsent ")[1].split(",")[0]) for o in outputs) == 300
    print("parallel senders:", [o.strip().splitlines()[-1] for o in outputs])

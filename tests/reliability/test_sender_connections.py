"""One sender process driving several SMTP connections (HOTNET_SEND_CONNECTIONS), and one
forking worker processes (HOTNET_SEND_PROCESSES): a kill -9 repeats at most one message per
open connection, the rate is the process's, the daily cap holds across connections,
processes and other senders, and claims of a dead process's connections are given back."""
import collections
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.config import ConfigError, from_environment
from app.dbtypes import utcnow
from app.extensions import db
from app.newsletters import services
from app.newsletters.models import Delivery, Newsletter
from app.newsletters.sender import claim_batch, release_dead_claims, run
from app.outbox.ledger import _pid_alive
from tests.reliability.conftest import ROOT, add_recipients, flask_process, wait_for

CONNECTIONS = 4


def start(title: str, expected: int) -> int:
    newsletter = services.save_draft(None, {
        "layout": "announcement", "number": "", "title": title, "subject": title,
        "body_md": "本文"}, services.audiences.Audience(), None)
    assert services.start_send(newsletter.id, actor=None) == expected
    return newsletter.id


@contextmanager
def ledger_writes_held():
    """Nobody can write to the delivery ledger meanwhile (their writes wait); reads go on.
    Yields a function that runs a query on the connection that holds the lock."""
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if db.engine.dialect.name == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        else:
            raw.execute("LOCK TABLE delivery IN EXCLUSIVE MODE")
        try:
            yield lambda sql: raw.execute(sql).fetchall()
        finally:
            raw.rollback()


def other_queries_running() -> int:
    """Statements other sessions still run in this database (none on SQLite)."""
    if db.engine.dialect.name == "sqlite":
        return 0
    with db.engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active'").scalar()


def kill_9_while_marks_wait(env: dict, mailbox: list) -> tuple[int, set[str], int, int]:
    """Start a sender on 300 queued recipients, lock the ledger once 40 are out, wait, kill -9
    it: (its pid, the workers that held batches, messages accepted while the marks could not
    be committed, rows marked sent by then)."""
    sender = flask_process(env, "sender", "--until-idle")
    assert wait_for(lambda: len(mailbox) >= 40, timeout=60), sender.communicate()
    with ledger_writes_held() as query:
        before = len(mailbox)
        owners = {owner for (owner,) in query(
            "SELECT DISTINCT claimed_by FROM delivery WHERE status = 'sending'")}
        time.sleep(1.5)  # at 150 messages a second, ~200 would go if nothing waited
        during = len(mailbox) - before
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=10)
    assert len(mailbox) < 300, "the send was over before the kill"
    # A mark the sender had sent to PostgreSQL before the kill still commits once the lock is
    # gone (its message was accepted: no repeat); the count waits for the server to finish it.
    assert wait_for(lambda: not other_queries_running(), timeout=10)
    db.session.expire_all()
    marked = db.session.scalar(select(func.count(Delivery.id)).where(Delivery.status == "sent"))
    db.session.rollback()
    return sender.pid, owners, during, marked


def send_the_rest(env: dict, mailbox: list, addresses: list[str], newsletter_id: int,
                  connections: int, during: int, marked: int) -> None:
    """A new sender finishes the send: everyone got it, and at most one message per open
    connection of the killed one arrived twice."""
    sender = flask_process(env, "sender", "--until-idle")
    output, _ = sender.communicate(timeout=120)
    assert sender.returncode == 0, output.decode()
    assert output.decode().strip().splitlines()[-1].startswith(f"sent {300 - marked},")
    received = collections.Counter(a for recipients, _m in mailbox for a in recipients)
    repeated = sum(n - 1 for n in received.values())
    print(f"{connections} connections: {during} accepted while the ledger was locked, "
          f"{repeated} repeated")
    assert set(received) == set(addresses)
    assert during <= connections and repeated <= connections
    db.session.expire_all()
    assert collections.Counter(db.session.scalars(select(Delivery.status))) == {"sent": 300}
    assert db.session.get(Newsletter, newsletter_id).status == "sent"


def test_kill_9_with_four_connections_repeats_at_most_one_message_per_connection(
        geography, mailbox, process_env):
    """While the marks cannot be committed (the ledger is locked) no connection may get a
    second message accepted; after the kill every recipient gets the newsletter, and at most
    one message per open connection arrives twice."""
    addresses = add_recipients(300)
    newsletter_id = start("四本の接続", 300)
    env = dict(process_env, HOTNET_SEND_CONNECTIONS=str(CONNECTIONS), HOTNET_SEND_BATCH="10",
               HOTNET_SEND_RATE="150", HOTNET_SEND_LEASE_SECONDS="3600")
    pid, owners, during, marked = kill_9_while_marks_wait(env, mailbox)
    pattern = re.compile(rf"^{re.escape(socket.gethostname())}:{pid}/c[1-4]$")
    assert owners and all(pattern.match(owner) for owner in owners), owners
    send_the_rest(env, mailbox, addresses, newsletter_id, CONNECTIONS, during, marked)


def test_kill_9_of_a_sender_with_forked_workers_ends_them_and_repeats_at_most_one_per_connection(
        geography, mailbox, process_env):
    """Two worker processes of two connections each (four in all): the kill of the sender ends
    its workers too, and the repeats stay within one per open connection."""
    addresses = add_recipients(300)
    newsletter_id = start("二つの作業プロセス", 300)
    env = dict(process_env, HOTNET_SEND_PROCESSES="2", HOTNET_SEND_CONNECTIONS="2",
               HOTNET_SEND_BATCH="10", HOTNET_SEND_RATE="75", HOTNET_SEND_LEASE_SECONDS="3600")
    pid, owners, during, marked = kill_9_while_marks_wait(env, mailbox)
    pattern = re.compile(rf"^{re.escape(socket.gethostname())}:(\d+)/c[12]$")
    assert owners and all(pattern.match(owner) for owner in owners), owners
    workers = {int(pattern.match(owner)[1]) for owner in owners}
    assert pid not in workers and len(workers) <= 2 and len(owners) <= 4
    assert wait_for(lambda: not any(_pid_alive(worker) for worker in workers), timeout=10), \
        "the workers went on after their sender was killed"
    send_the_rest(env, mailbox, addresses, newsletter_id, 4, during, marked)


def test_a_failing_worker_stops_a_sender_that_runs_for_good(app, geography, monkeypatch,
                                                            tmp_path):
    """With workers forked, one that fails stops the whole sender (its service starts it again)
    instead of leaving it running a worker short; the failure is raised, not swallowed."""
    from app.newsletters import sender

    def worker_run(until_idle, idle_sleep):
        try:  # the first worker fails; the other would wait for work for good
            os.close(os.open(tmp_path / "first", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            while True:
                time.sleep(0.1)
        raise OSError("the SMTP server's certificate changed")

    monkeypatch.setattr(sender, "run", worker_run)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="sender worker processes failed: hotnet-send-p"):
        sender.run_processes(2, until_idle=False)
    assert time.monotonic() - started < 30


def test_the_rate_is_for_the_whole_process_with_four_connections(geography, mailbox,
                                                                 process_env):
    add_recipients(60)
    start("速さの上限", 60)
    env = dict(process_env, HOTNET_SEND_CONNECTIONS=str(CONNECTIONS), HOTNET_SEND_BATCH="5",
               HOTNET_SEND_RATE="30")
    sender = flask_process(env, "sender", "--until-idle")
    output, _ = sender.communicate(timeout=120)
    assert sender.returncode == 0, output.decode()
    assert len(mailbox) == 60
    first, last = db.session.execute(select(func.min(Delivery.sent_at),
                                            func.max(Delivery.sent_at))).one()
    # 60 messages at 30 a second take 59/30 s from the first to the last (one connection
    # each at 30 a second would take a quarter of that); only a lower bound is asserted.
    assert (last - first).total_seconds() >= 59 / 30 - 0.5


def test_the_daily_cap_holds_across_connections(app, geography, mailbox):
    add_recipients(9)
    start("上限", 9)
    app.config.update(HOTNET_SEND_CONNECTIONS=3, HOTNET_SEND_BATCH=2, HOTNET_SEND_DAILY_CAP=5)
    report = run(until_idle=True)
    assert report.sent == 5 and report.capped
    assert len(mailbox) == 5
    db.session.execute(update(Delivery).where(Delivery.status == "sent")
                       .values(sent_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    assert run(until_idle=True).sent == 4
    received = collections.Counter(a for recipients, _m in mailbox for a in recipients)
    assert len(received) == 9 and set(received.values()) == {1}


def test_the_daily_cap_counts_what_other_senders_hold(app, geography, mailbox):
    """Another sender (another machine) holds two rows it has not sent yet: this one sends
    only what is left of the cap besides them, and nothing more once they are sent."""
    add_recipients(9)
    start("上限", 9)
    app.config.update(HOTNET_SEND_BATCH=10, HOTNET_SEND_DAILY_CAP=5)
    assert len(claim_batch("other-host:4242", 2)) == 2
    report = run(until_idle=True)
    assert report.sent == 3 and report.capped and len(mailbox) == 3
    db.session.execute(update(Delivery).where(Delivery.claimed_by == "other-host:4242")
                       .values(status="sent", sent_at=utcnow(), claimed_by=""))
    db.session.commit()
    report = run(until_idle=True)
    assert report.sent == 0 and report.capped
    db.session.execute(update(Delivery).where(Delivery.status == "sent")
                       .values(sent_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    assert run(until_idle=True).sent == 4


def test_the_daily_cap_holds_across_forked_workers(geography, mailbox, process_env):
    """Three worker processes racing for batches of two under a cap of five: five go today."""
    add_recipients(12)
    newsletter_id = start("三つの作業プロセス", 12)
    env = dict(process_env, HOTNET_SEND_PROCESSES="3", HOTNET_SEND_BATCH="2",
               HOTNET_SEND_DAILY_CAP="5")
    sender = flask_process(env, "sender", "--until-idle")
    output, _ = sender.communicate(timeout=120)
    assert sender.returncode == 0, output.decode()
    lines = output.decode().strip().splitlines()
    assert lines[-2].startswith("sent 5,")
    assert lines[-1] == ("today's cap of 5 messages (HOTNET_SEND_DAILY_CAP) is reached: the rest "
                         "goes after midnight, Japan time")
    received = collections.Counter(a for recipients, _m in mailbox for a in recipients)
    assert len(received) == 5 and set(received.values()) == {1}
    db.session.expire_all()
    assert collections.Counter(db.session.scalars(select(Delivery.status))) == {
        "sent": 5, "waiting": 7}
    assert db.session.get(Newsletter, newsletter_id).status == "sending"  # the rest: tomorrow


def test_claims_of_a_dead_process_connections_are_given_back_not_a_live_ones(app, geography):
    add_recipients(3)
    start("後始末", 3)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = gone.pid
    host = socket.gethostname()
    ids = list(db.session.scalars(select(Delivery.id).order_by(Delivery.id)))
    for row_id, owner in zip(ids, (f"{host}:{dead}/c2", f"{host}:{os.getpid()}/c1",
                                   f"{host}:{dead}"), strict=True):
        db.session.execute(update(Delivery).where(Delivery.id == row_id).values(
            status="sending", claimed_by=owner, claimed_at=utcnow()))
    db.session.commit()
    assert release_dead_claims() == 2
    left = dict(db.session.execute(select(Delivery.id, Delivery.claimed_by)).all())
    assert left == {ids[0]: "", ids[1]: f"{host}:{os.getpid()}/c1", ids[2]: ""}


@pytest.mark.parametrize("value", ["0", "17", "four"])
def test_a_wrong_number_of_connections_stops_the_app_with_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("HOTNET_SEND_CONNECTIONS", value)
    with pytest.raises(ConfigError, match="HOTNET_SEND_CONNECTIONS must be a whole number "
                                          "from 1 to 16"):
        from_environment("/tmp")


@pytest.mark.parametrize("value", ["0", "9", "-1", "two"])
def test_a_wrong_number_of_worker_processes_stops_the_app_with_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("HOTNET_SEND_PROCESSES", value)
    with pytest.raises(ConfigError, match="HOTNET_SEND_PROCESSES must be a whole number "
                                          "from 1 to 8"):
        from_environment("/tmp")


@pytest.mark.parametrize("setting, value, says", [
    ("HOTNET_SEND_PROCESSES", "0", "HOTNET_SEND_PROCESSES must be a whole number from 1 to 8"),
    ("HOTNET_SEND_PROCESSES", "abc", "HOTNET_SEND_PROCESSES must be a whole number from 1 to 8"),
    ("HOTNET_SEND_DAILY_CAP", "abc", "HOTNET_SEND_DAILY_CAP must be a whole number, 0 or more"),
    ("HOTNET_SEND_DAILY_CAP", "-3", "HOTNET_SEND_DAILY_CAP must be a whole number, 0 or more"),
])
def test_the_sender_command_says_which_setting_is_wrong_without_a_traceback(tmp_path, setting,
                                                                           value, says):
    env = dict(os.environ, HOTNET_ENV="development", HOTNET_INSTANCE_PATH=str(tmp_path),
               DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3", **{setting: value})
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "hotnet", "sender",
                           "--until-idle"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr

"""Two schedulers: one is active, the other stands by and takes over within seconds when the
active one is killed with SIGKILL — in the middle of a newsletter send and of the digests."""
import collections
import signal
import time

from app.accounts.services import create_staff
from app.concerns.services import list_categories, submit_concern
from app.extensions import db
from app.heartbeat import ServiceStatus
from app.newsletters import services
from tests.conftest import district
from tests.reliability.conftest import add_recipients, flask_process, wait_for

RECIPIENTS = 150


def active_pid() -> int | None:
    db.session.expire_all()
    row = db.session.get(ServiceStatus, "scheduler")
    db.session.rollback()
    return int(row.holder.rsplit(":", 1)[1]) if row is not None and row.holder else None


def coordinators_with_waiting_concerns(n: int) -> list[str]:
    addresses = []
    for i, code in enumerate(("d01", "d06", "d11", "d16")[:n]):
        area = district(code).area
        staff = create_staff(f"area{i}@example.jp", f"地域 担当{i}", "area-password-123",
                             "coordinator", area_ids=[area.id], actor=None)
        submit_concern({"category_id": list_categories()[0].id, "body": "ごみが出されたまま", "district_id":
                        district(code).id, "urgency": "normal", "channel": "web"})
        addresses.append(staff.email)
    return addresses


def test_standby_takes_over_a_killed_scheduler_and_nothing_goes_twice(
        geography, mailbox, process_env, backend):
    recipients = add_recipients(RECIPIENTS)
    coordinators = coordinators_with_waiting_concerns(4)
    newsletter = services.save_draft(None, {
        "layout": "regular", "number": "第5号", "title": "秋の通信", "subject": "秋の通信",
        "body_md": "紅葉の季節です。"}, services.audiences.Audience(), None)
    assert services.start_send(newsletter.id, actor=None) == RECIPIENTS
    env = dict(process_env, HOTNET_SEND_BATCH="10", HOTNET_SEND_RATE="40", HOTNET_DIGEST_HOUR="0",
               HOTNET_SEND_LEASE_SECONDS="3600",  # only the dead-process check frees claims
               HOTNET_SCHEDULER_POLL_SECONDS="1", HOTNET_SCHEDULER_LEASE_SECONDS="4")
    processes = [flask_process(env, "scheduler")]
    try:
        assert wait_for(lambda: active_pid() == processes[0].pid, timeout=30)
        processes.append(flask_process(env, "scheduler"))  # the standby
        takeovers = []
        for threshold in (3, RECIPIENTS // 2):
            active = processes[-2] if active_pid() == processes[-2].pid else processes[-1]
            standby = processes[-1] if active is processes[-2] else processes[-2]
            assert wait_for(lambda threshold=threshold: len(mailbox) >= threshold, timeout=60)
            active.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            active.wait(timeout=10)
            assert wait_for(lambda standby=standby: active_pid() == standby.pid, timeout=30), \
                "the standby did not take over"
            takeovers.append(time.monotonic() - killed_at)
            processes.remove(active)
            processes.append(flask_process(env, "scheduler"))  # systemd starts it again
        everyone = set(recipients) | set(coordinators)
        assert wait_for(lambda: everyone <= {a for r, _m in mailbox for a in r}, timeout=120), \
            f"missing: {sorted(everyone - {a for r, _m in mailbox for a in r})[:10]}"
        # Let a wrongly repeated send show itself: the queue must be idle first.
        assert wait_for(lambda: services.progress(newsletter.id)["waiting"] == 0, timeout=30)
    finally:
        for process in processes:
            process.terminate()
        outputs = [process.communicate(timeout=30)[0].decode() for process in processes]

    received = collections.defaultdict(list)
    for rcpts, message in mailbox:
        for address in rcpts:
            received[address].append(message["Message-ID"])
    message_ids = {a: set(ids) for a, ids in received.items()}
    repeats = sum(len(ids) - 1 for ids in received.values())
    digests = [len(message_ids.get(a, ())) for a in coordinators]
    print(f"\n{backend}: failover: takeover after SIGKILL in "
          f"{', '.join(f'{t:.1f} s' for t in takeovers)}; {RECIPIENTS} recipients, "
          f"{sum(len(v) for v in received.values())} messages, {repeats} repeats "
          f"(same Message-ID), digests per coordinator {digests}")
    # Every recipient got the one issue (one Message-ID); each coordinator one digest. (A
    # repeat of the same message, which a kill can cause, carries the same Message-ID.)
    assert all(len(message_ids[a]) == 1 for a in recipients)
    assert digests == [1] * len(coordinators), outputs
    # A kill can repeat at most the one message in flight on the open connection.
    assert repeats <= len(takeovers)
    assert max(takeovers) < 10

"""Benchmark: sending a newsletter to 10,000 and 100,000 recipients.

The sender (`flask hotnet sender`, a separate process, as in production) delivers to Postfix's
`smtp-sink`, a fast SMTP server that accepts and discards, so that the sender is what is
measured. The baseline in the same run is raw smtplib sending pre-built messages of the same
size over one connection to the same server, measured before the first run and again after
each; each run is compared with the mean of the baselines just before and after it (these
shared virtual machines speed up and slow down over minutes).

Runs: one connection (HOTNET_SEND_CONNECTIONS=1) for both sizes on --db; then four
connections on PostgreSQL at the first size, three ways: one process with
HOTNET_SEND_CONNECTIONS=4, four processes with one each, and one sender forking four worker
processes of one connection each (HOTNET_SEND_PROCESSES=4) — on PostgreSQL whenever it is
reachable, also when --db is sqlite. Prints messages/s, the sender's peak RSS and its CPU
time per message (user + sys of the sender processes and their workers, from wait4; the sink
and the database use CPU too, on the same cores).

Targets: ratio (one connection / baseline) >= 0.8; ratio_4conn (four connections on
PostgreSQL, the best of the three ways, / the one-connection baseline) >= 1.0; rss_ratio
(peak RSS 100k/10k) <= 1.3. The last line holds the figures.
"""
from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select

from app import create_app
from app.config import database_url
from app.dbtypes import utcnow
from app.extensions import db
from app.geography.models import District
from app.geography.services import load_geography
from app.newsletters import services
from app.newsletters.models import Delivery
from app.supporters.models import Supporter
from bench.common import (
    create_database,
    debian_program,
    drop_database,
    free_port,
    postgres_reachable,
)

ROOT = Path(__file__).resolve().parent.parent
PARAGRAPH = ("地域の見守り活動にご協力いただき、ありがとうございます。最近は朝晩の冷え込みが厳しくなり、"
             "ご近所で体調を崩される方も増えています。いつもと違うと感じたら、どうぞお気軽に"
             "ステーションまでお知らせください。")


def body_markdown() -> str:
    sections = []
    for n in range(1, 6):
        sections.append(f"## お知らせ {n}\n\n" + PARAGRAPH * 4 + "\n\n- 研修の日程\n- 申込みの方法\n")
    return "\n".join(sections)


def fill(url: str, size: int) -> int:
    """`size` active supporters who take the newsletter by e-mail, and a draft issue."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        load_geography(app.config["HOTNET_GEOGRAPHY"])
        districts = list(db.session.scalars(select(District.id)))
        stamp = utcnow()
        for start in range(0, size, 10000):
            db.session.execute(insert(Supporter), [{
                "kind": "person", "name": f"推進員 {i:06d}", "kana": "すいしんいん",
                "email": f"r{i:06d}@example.jp", "email_key": f"r{i:06d}@example.jp",
                "delivery": "email", "status": "active", "joined_via": "staff",
                "district_id": districts[i % len(districts)], "business_name": "",
                "business_kana": "", "contact_person": "", "phone": "", "postal_code": "",
                "address": "", "notes": "", "consent_version": "", "sort_key": "すいしんいん",
                "created_at": stamp, "updated_at": stamp,
            } for i in range(start, min(size, start + 10000))])
            db.session.commit()
        newsletter = services.save_draft(None, {
            "layout": "regular", "number": "第1号", "title": "冬の通信",
            "subject": "ほっとネット通信 第1号", "body_md": body_markdown()},
            services.audiences.Audience(), None)
        queued_at = time.perf_counter()
        queued = services.start_send(newsletter.id, actor=None)
        print(f"    queued {queued:,} deliveries in {time.perf_counter() - queued_at:.2f}s",
              flush=True)
        db.engine.dispose()
        return newsletter.id


def sample_message(url: str, port: int) -> bytes:
    """One message exactly as the sender builds it, for the baseline and the size."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "MAIL_PORT": port})
    with app.app_context():
        from app.newsletters.mime import build_message
        from app.newsletters.models import Newsletter
        from app.newsletters.recipients import area_infos, personal_for
        from app.newsletters.rendering import TemplateCache
        newsletter = db.session.scalar(select(Newsletter))
        personal = personal_for(1, "推進員 000001", newsletter.id)
        areas = area_infos()
        area_id = next(iter(areas))
        rendered = TemplateCache(newsletter).for_recipient(area_id, areas[area_id], personal)
        message = build_message(newsletter, "r000001@example.jp", rendered, personal,
                                supporter_id=1)
        data = message.as_bytes()
        db.engine.dispose()
        return data


def run_sender(url: str, port: int, size: int, connections: int = 1, processes: int = 1,
               forked: int = 1) -> dict:
    """`processes` sender processes, each of `forked` worker processes (HOTNET_SEND_PROCESSES)
    of `connections` connections, until nothing is left."""
    env = dict(os.environ, DATABASE_URL=url, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port),
               FLASK_APP="wsgi", HOTNET_SEND_BATCH="200", HOTNET_SEND_RATE="0",
               HOTNET_SEND_CONNECTIONS=str(connections), HOTNET_SEND_PROCESSES=str(forked))
    started = time.perf_counter()
    senders = [subprocess.Popen([sys.executable, "-m", "flask", "hotnet", "sender", "--until-idle"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(processes)]
    cpu, rss = 0.0, 0.0
    for process in senders:
        _pid, status, usage = os.wait4(process.pid, 0)
        output = process.stdout.read().decode()
        assert status == 0, output
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss / 1024)
    wall = time.perf_counter() - started
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        sent = db.session.scalar(select(func.count(Delivery.id)).where(Delivery.status == "sent"))
        first, last = db.session.execute(select(func.min(Delivery.claimed_at),
                                                func.max(Delivery.sent_at))).one()
        db.engine.dispose()
    assert sent == size, (sent, size, output)
    span = (last - first).total_seconds()
    return {"rate": sent / span, "wall": wall, "rss_mb": rss, "sent": sent,
            "cpu_ms": cpu * 1000 / sent}


def startup_cpu_ms(url: str, port: int) -> float:
    """CPU time of a sender process that finds nothing to send (start-up and exit)."""
    env = dict(os.environ, DATABASE_URL=url, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port),
               FLASK_APP="wsgi")
    process = subprocess.Popen([sys.executable, "-m", "flask", "hotnet", "sender", "--until-idle"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, _status, usage = os.wait4(process.pid, 0)
    return (usage.ru_utime + usage.ru_stime) * 1000


def fresh_database(kind: str, label: str) -> tuple[str, callable]:
    """(URL, clean-up) of an empty database: SQLite in a temporary folder, or PostgreSQL."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="hotnet-send-")
        return ("sqlite:///" + os.path.join(folder, "send.sqlite3"),
                lambda: shutil.rmtree(folder, ignore_errors=True))
    name = f"hotnet_send_{os.getpid()}_{label}"
    return database_url(create_database(name)), lambda: drop_database(name)


def describe(label: str, r: dict, base_rate: float) -> None:
    print(f"    {label}: {r['rate']:.0f} messages/s, wall {r['wall']:.1f}s, "
          f"peak RSS {r['rss_mb']:.1f} MB, CPU {r['cpu_ms']:.2f} ms/message, "
          f"ratio to baseline {r['rate'] / base_rate:.2f}", flush=True)


def baseline(port: int, message: bytes, count: int) -> float:
    """Raw smtplib: the same message `count` times over one connection."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        started = time.perf_counter()
        for i in range(count):
            smtp.sendmail("hotnet@example.jp", [f"r{i:06d}@example.jp"], message)
        return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--baseline", type=int, default=10000,
                        help="messages of the first raw baseline (half as many after each run)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    sink = debian_program("smtp-sink", "postfix", "/usr/sbin/smtp-sink")
    port = free_port()
    sink_process = subprocess.Popen([sink, "-u", "nobody", f"127.0.0.1:{port}", "256"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    results, four, size_kb, startup = {}, {}, 0.0, 0.0
    bases: list[float] = []  # the raw baseline, measured again after each run
    handled = 0  # messages the sink received

    def measured_again() -> float:
        """The baseline after a run; the run's ratio is to the mean of the baselines just
        before and just after it, so that a machine that slows or speeds up meanwhile (a
        shared virtual machine does) moves both sides of the ratio alike."""
        nonlocal handled
        bases.append(baseline(port, message, args.baseline // 2))
        handled += args.baseline // 2
        return (bases[-2] + bases[-1]) / 2

    try:
        for size in sizes:
            url, clean_up = fresh_database(args.db, str(size))
            print(f"  {size:,} recipients ({args.db}), one connection:", flush=True)
            fill(url, size)
            if not bases:
                message = sample_message(url, port)
                size_kb = len(message) / 1024
                bases.append(baseline(port, message, args.baseline))
                handled += args.baseline
                print(f"    baseline raw smtplib: {bases[0]:.0f} messages/s "
                      f"({size_kb:.1f} KB each, {args.baseline:,} messages, one connection; measured "
                      f"again after each run)", flush=True)
            results[size] = run_sender(url, port, size)
            if not startup:
                startup = startup_cpu_ms(url, port)  # the ledger is empty now
                print(f"    a sender process that finds nothing to send uses {startup:.0f} ms "
                      f"of CPU (counted in each figure of CPU per message)", flush=True)
            handled += size
            results[size]["base"] = measured_again()
            describe("sender", results[size], results[size]["base"])
            clean_up()
        if args.db == "postgresql" or postgres_reachable():
            size = sizes[0]
            for label, connections, processes, forked in (
                    ("one process, 4 connections", 4, 1, 1),
                    ("4 processes, 1 connection each", 1, 4, 1),
                    ("one sender forking 4 workers of 1 connection", 1, 1, 4)):
                url, clean_up = fresh_database("postgresql", f"{connections}x{processes}x{forked}")
                print(f"  {size:,} recipients (postgresql), {label}:", flush=True)
                fill(url, size)
                four[label] = run_sender(url, port, size, connections, processes, forked)
                handled += size
                four[label]["base"] = measured_again()
                describe("senders", four[label], four[label]["base"])
                clean_up()
        else:
            print("  PostgreSQL is not reachable: no four-connection run", flush=True)
    finally:
        sink_process.terminate()
        _pid, _status, sink_usage = os.wait4(sink_process.pid, 0)
    base_rate = sum(bases) / len(bases)
    print("  baselines (messages/s, before the first run and after each): "
          + ", ".join(f"{b:.0f}" for b in bases), flush=True)
    sink_ms = (sink_usage.ru_utime + sink_usage.ru_stime) * 1000 / handled
    small, large = results[sizes[0]], results[sizes[-1]]
    ratio = small["rate"] / small["base"]
    rss_ratio = large["rss_mb"] / small["rss_mb"]
    print(f"  smtp-sink used {sink_ms:.2f} ms of CPU per message received (the database's "
          f"CPU is not counted anywhere here); the sender's CPU is per message sent")
    print(f"  ratio sender/baseline at {sizes[0]:,} = {ratio:.2f} (target >= 0.8), "
          f"peak RSS {sizes[-1]:,}/{sizes[0]:,} = {rss_ratio:.2f} (target <= 1.3)")
    line = (f"newsletter_send db={args.db} rate_10k={small['rate']:.0f} "
            f"rate_100k={large['rate']:.0f} baseline={base_rate:.0f} ratio={ratio:.2f} ")
    if four:
        best = max(four, key=lambda k: four[k]["rate"] / four[k]["base"])
        ratio_4conn = four[best]["rate"] / four[best]["base"]
        one_process, processes, forked = (four[k]["rate"] / four[k]["base"] for k in four)
        short = dict(zip(four, ("1proc", "4proc", "fork"), strict=True))
        print(f"  four connections on PostgreSQL at {sizes[0]:,}: one process {one_process:.2f}, "
              f"four processes {processes:.2f}, one sender forking four workers {forked:.2f} of "
              f"the one-connection baseline; the best is {best} (ratio_4conn = "
              f"{ratio_4conn:.2f}, target >= 1.0), its senders used "
              f"{four[best]['cpu_ms']:.2f} ms of CPU per message")
        line += (f"ratio_4conn={ratio_4conn:.2f} ratio_4conn_1proc={one_process:.2f} "
                 f"ratio_4conn_4proc={processes:.2f} ratio_4conn_fork={forked:.2f} "
                 f"best_4conn={short[best]} cpu_ms_per_msg={four[best]['cpu_ms']:.2f} ")
    else:
        line += f"ratio_4conn=nan cpu_ms_per_msg={small['cpu_ms']:.2f} "
    print(line + f"cpu_ms_per_msg_1conn={small['cpu_ms']:.2f} sink_cpu_ms_per_msg={sink_ms:.2f} "
          f"rss_ratio={rss_ratio:.2f} size_kb={size_kb:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

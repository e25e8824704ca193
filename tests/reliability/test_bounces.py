"""Bounces that arrive after the relay accepted the message (issue 12), end to end with real
servers started by the test: the app sends through Postfix (Debian's), which relays to a
recipient server that refuses some addresses; Postfix's delivery reports go to the VERP
return path, into a Maildir that Dovecot (Debian's) serves over IMAP; the app's job reads
them, holds the dead addresses and moves those supporters to the postal edition."""
from __future__ import annotations

import collections
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.newsletters import services
from app.supporters import services as supporters
from app.supporters.models import Supporter
from tests.conftest import IN_CI, district, free_port
from tests.reliability.conftest import Relay, flask_process, wait_for

POSTFIX, DOVECOT = shutil.which("postfix") or "/usr/sbin/postfix", \
    shutil.which("dovecot") or "/usr/sbin/dovecot"


def need(program: str) -> None:
    if not os.path.exists(program):
        message = f"{program} is needed (apt-get install postfix dovecot-imapd)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


class RemoteServer(Relay):
    """The recipients' mail server: 550 5.1.1 for gone*@, 552 5.2.2 (mailbox full) for full*@."""

    def __init__(self):
        super().__init__()
        relay = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address.startswith("gone"):
                    return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
                if address.startswith("full"):
                    return f"552 5.2.2 <{address}>: Mailbox full"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                import email
                import email.policy
                relay.messages.append((envelope.rcpt_tos, email.message_from_bytes(
                    envelope.content, policy=email.policy.default)))
                return "250 OK"

        self.controller.stop()
        from aiosmtpd.controller import Controller
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


@pytest.fixture
def mail_servers():
    """Postfix (relay + bounce mailbox) and Dovecot (IMAP), each on its own ports, in a folder
    their own users can reach (pytest's tmp_path is private to root)."""
    import tempfile
    need(POSTFIX)
    need(DOVECOT)
    tmp_path = Path(tempfile.mkdtemp(prefix="hotnet-mail-", dir="/tmp"))
    tmp_path.chmod(0o755)
    remote = RemoteServer()
    smtp_port, imap_port = free_port(), free_port()
    base = tmp_path / "mail"
    conf, queue, data, maildir = base / "postfix", base / "queue", base / "data", base / "boxes"
    for folder in (conf, queue, data, maildir):
        folder.mkdir(parents=True)
    shutil.chown(data, "postfix")
    shutil.chown(maildir, "mail", "mail")
    master = Path("/etc/postfix/master.cf").read_text()
    lines = []
    for line in master.splitlines():
        if line.startswith("smtp ") and " inet " in line:
            line = f"127.0.0.1:{smtp_port} inet n - n - - smtpd"
        elif line and not line[0].isspace() and not line.startswith("#"):
            parts = line.split()
            if len(parts) > 4 and parts[4] == "y":  # no chroot outside the system's queue
                parts[4] = "n"
                line = " ".join(parts)
        lines.append(line)
    (conf / "master.cf").write_text("\n".join(lines) + "\n")
    (conf / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.test
mydomain = relay.test
myorigin = relay.test
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
transport_maps = inline:{{ remote.example.jp=smtp:[127.0.0.1]:{remote.port} }}
virtual_mailbox_domains = bounces.test
virtual_mailbox_base = {maildir}
virtual_mailbox_maps = static:bounces/
virtual_uid_maps = static:8
virtual_gid_maps = static:8
virtual_minimum_uid = 8
maillog_file = {base}/maillog
maillog_file_prefixes = {tmp_path}
alias_maps =
alias_database =
smtp_dns_support_level = disabled
""")
    for folder in (base, conf, queue):
        folder.chmod(0o755)
    started = subprocess.run([POSTFIX, "-c", str(conf), "start"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    assert started.returncode == 0, (base / "maillog").read_text() \
        if (base / "maillog").exists() else "postfix did not start"
    run_dir = base / "dovecot"
    run_dir.mkdir()
    (base / "dovecot.conf").write_text(f"""base_dir = {run_dir}/run
state_dir = {run_dir}/state
instance_name = hotnet-test-{imap_port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {base}/dovecot.log
mail_location = maildir:{maildir}/bounces
first_valid_uid = 8
passdb {{
  driver = static
  args = password=bounce-secret
}}
userdb {{
  driver = static
  args = uid=8 gid=8 home={maildir}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
""")
    # Daemons keep inherited pipes open: their output goes to their own log files.
    subprocess.run([DOVECOT, "-c", str(base / "dovecot.conf")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: _listening(smtp_port) and _listening(imap_port), timeout=20), \
            (base / "maillog").read_text() if (base / "maillog").exists() else "postfix did not start"
        yield {"smtp": smtp_port, "imap": imap_port, "remote": remote,
               "maildir": maildir / "bounces", "log": base / "maillog"}
    finally:
        subprocess.run([POSTFIX, "-c", str(conf), "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run(["doveadm", "-c", str(base / "dovecot.conf"), "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        remote.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _reports(maildir: Path) -> int:
    return sum(len(list((maildir / sub).glob("*"))) for sub in ("new", "cur")
               if (maildir / sub).exists())


def test_later_bounces_are_read_and_dead_addresses_move_to_post(app, geography, mail_servers,
                                                                 process_env):
    app.config["HOTNET_BOUNCE_ADDRESS"] = "bounces@bounces.test"
    env = dict(process_env, MAIL_PORT=str(mail_servers["smtp"]),
               HOTNET_BOUNCE_ADDRESS="bounces@bounces.test",
               HOTNET_BOUNCE_IMAP_HOST="127.0.0.1", HOTNET_BOUNCE_IMAP_PORT=str(mail_servers["imap"]),
               HOTNET_BOUNCE_IMAP_SSL="false", HOTNET_BOUNCE_IMAP_USER="bounces",
               HOTNET_BOUNCE_IMAP_PASSWORD="bounce-secret", HOTNET_BOUNCE_SOFT_LIMIT="2")
    names = [f"ok{n}" for n in range(12)] + ["gone1", "gone2", "gone3", "full1", "full2"]
    for n, local in enumerate(names):
        supporters.add_supporter({
            "kind": "person", "name": f"受信 {local}", "kana": "じゅしん", "status": "active",
            "email": f"{local}@remote.example.jp", "delivery": "both" if n % 2 else "email",
            "postal_code": "1880012" if n % 2 else "", "address": "西東京市南町1-1" if n % 2 else "",
            "district_id": district("d01").id, "phone": "", "joined_via": "staff"}, "created", actor=None)
    db.session.commit()

    def send(title: str) -> int:
        issue = services.save_draft(None, {"layout": "announcement", "number": "", "title": title,
                                           "subject": title, "body_md": "本文"},
                                    services.audiences.Audience(), None)
        queued = services.start_send(issue.id, actor=None)
        sender = flask_process(env, "sender", "--until-idle")
        output = sender.communicate(timeout=120)[0].decode()
        assert sender.returncode == 0, output
        print(f"{title}: queued {queued}; sender: {output.strip().splitlines()[-1:]}")
        return queued

    first = send("第1号")
    # Postfix accepted every message; the recipients' server refused 5 of them afterwards.
    assert wait_for(lambda: _reports(mail_servers["maildir"]) >= 5, timeout=60), \
        mail_servers["log"].read_text()[-3000:]
    reader = flask_process(env, "read-bounces")
    output = reader.communicate(timeout=60)[0].decode()
    assert reader.returncode == 0 and "bounces 5" in output, output
    db.session.expire_all()
    held = {s.email for s in db.session.scalars(select(Supporter).where(
        Supporter.email_held_at.is_not(None)))}
    assert held == {"gone1@remote.example.jp", "gone2@remote.example.jp", "gone3@remote.example.jp"}

    second = send("第2号")  # the held three get no mail; the full mailboxes bounce again
    assert second == first - 3
    assert wait_for(lambda: _reports(mail_servers["maildir"]) >= 7, timeout=60)
    reader = flask_process(env, "read-bounces")
    output = reader.communicate(timeout=60)[0].decode()
    assert "bounces 2" in output, output
    db.session.expire_all()
    people = {s.email: s for s in db.session.scalars(select(Supporter))}
    held = {e for e, s in people.items() if s.email_held_at is not None}
    moved = collections.Counter(people[e].delivery for e in held)
    delivered = mail_servers["remote"].recipients()
    print(f"bounces via Postfix and Dovecot: {first} + {second} sent, "
          f"{_reports(mail_servers['maildir'])} bounced later, {len(held)} held "
          f"({moved['post']} moved to post, {moved['none']} to none: no postal address), "
          f"{sum(delivered.values())} delivered")
    assert held == {f"{n}@remote.example.jp" for n in ("gone1", "gone2", "gone3", "full1", "full2")}
    for email in held:
        expected = "post" if people[email].address else "none"
        assert people[email].delivery == expected
    assert sum(delivered.values()) == 12 * 2
    # The same reports read again count once.
    from app.newsletters.models import Bounce
    assert len(db.session.scalars(select(Bounce)).all()) == 7

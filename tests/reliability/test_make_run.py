"""`make run` stops completely however it is stopped (issue 11): Ctrl-C, a signal to its
process group (what a supervisor or a script does), twice in a row, or a signal to make alone.
Nothing may be left listening on the web or the mail port."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import free_port
from tests.reliability.conftest import ROOT


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("make-run")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_of(folder) -> list[int]:
    """Processes whose environment points at this demo's folder (ours, started by make)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if f"HOTNET_INSTANCE_PATH={folder}".encode() in fh.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("how", ["ctrl-c", "group-term", "group-term-twice", "make-only"])
def test_every_way_of_stopping_make_run_stops_all_three(demo_folder, how):
    web, smtp = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    env.update(PORT=str(web), MAIL_PORT=str(smtp), HOTNET_INSTANCE_PATH=str(demo_folder),
               DATABASE_URL=f"sqlite:///{demo_folder}/demo.sqlite3",
               HOTNET_MAILCATCHER_DIR=str(demo_folder / "mail"))
    make = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{web}/healthz", timeout=2).read()
                break
            except OSError:
                assert make.poll() is None, make.communicate()[0].decode()
                time.sleep(0.5)
        assert listening(web) and listening(smtp)
        assert len(processes_of(demo_folder)) >= 4  # make, devserver, web, scheduler, catcher
        if how == "ctrl-c":
            os.killpg(make.pid, signal.SIGINT)
        elif how == "group-term":
            os.killpg(make.pid, signal.SIGTERM)
        elif how == "group-term-twice":
            os.killpg(make.pid, signal.SIGTERM)
            time.sleep(0.05)
            os.killpg(make.pid, signal.SIGTERM)
        else:
            make.send_signal(signal.SIGTERM)
        output = make.communicate(timeout=60)[0].decode()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (listening(web) or listening(smtp)
                                               or processes_of(demo_folder)):
            time.sleep(0.2)
        left = processes_of(demo_folder)
        print(f"make run stopped by {how}: web port open {listening(web)}, mail port open "
              f"{listening(smtp)}, {len(left)} processes left")
        assert not listening(web) and not listening(smtp) and left == [], output
    finally:
        for pid in processes_of(demo_folder):
            os.kill(pid, signal.SIGKILL)

"""`make run`: the web server, the scheduler and the demo mail catcher, stopped together by Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _stop(signum, frame):
    # Stop once: a second signal (`kill -- -PGID` reaches this process and make, and make
    # passes it on) must not interrupt the stopping of the children half way.
    _ignore_signals()
    raise KeyboardInterrupt


def _ignore_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def _die_with_parent() -> None:
    """In each child: if this process is killed outright (SIGKILL), the child gets SIGTERM
    (Linux's parent-death signal), so nothing is left listening on the ports."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 20) -> None:
    import socket
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)


def main() -> int:
    # Ctrl-C (and a plain kill) stop everything, even when started from a script whose
    # shell set SIGINT to "ignore" for background jobs.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    # When whatever started us (make) is stopped without passing the signal on, stop too.
    _die_with_parent()
    env = dict(os.environ)
    env.setdefault("FLASK_APP", "wsgi")
    env.setdefault("HOTNET_ENV", "development")
    env.setdefault("HOTNET_MAILCATCHER_DIR", str(ROOT / "instance" / "mail"))
    env.setdefault("MAIL_SERVER", "127.0.0.1")
    env.setdefault("MAIL_PORT", "8025")
    port = env.get("PORT", "5000")
    env.setdefault("HOTNET_BASE_URL", f"http://127.0.0.1:{port}")
    flask = [sys.executable, "-m", "flask"]
    commands = {
        "mail catcher": flask + ["hotnet", "mailcatcher", "--port", env["MAIL_PORT"]],
        "scheduler": flask + ["hotnet", "scheduler"],
        "web": flask + ["run", "--host", "127.0.0.1", "--port", port],
    }
    procs = {}
    code = 0
    try:
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                                           preexec_fn=_die_with_parent)
            if name == "mail catcher":
                # The scheduler mails at once on start (digests, due newsletters): wait for SMTP.
                _wait_for_port(int(env["MAIL_PORT"]), procs[name])
        print(f"""
  Hot-Net is running: http://127.0.0.1:{port}/
  Staff sign-in:  admin@hotnet.example.jp / hotnet-demo-2026  (admin)
                  coordinator1@hotnet.example.jp … coordinator8@ / hotnet-demo-2026
  Caught mail:    http://127.0.0.1:{port}/staff/mailbox  (signed in as staff)
  Supporter sign-in: /login/link with e.g. demo0001@example.jp, then open the link
                  from the caught mail.
  Ctrl-C stops the web server, the scheduler and the mail catcher.
""", flush=True)
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} stopped (exit {proc.returncode}); stopping the rest", flush=True)
                    code = proc.returncode or 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        _ignore_signals()
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    return code


if __name__ == "__main__":
    sys.exit(main())

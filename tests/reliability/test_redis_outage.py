"""Redis goes away: the site goes on (issue 16, the shared cache of its pages).

Production shares one Redis between the web workers (deploy/hotnet.env.example): the cache of
pick lists, places and the filters' panels (HOTNET_CACHE_URL) and the rate limits' counts
(RATELIMIT_STORAGE_URI). Here gunicorn with two workers, as the unit starts it, uses a Redis
server of the test's own, which is killed, then replaced by one that takes connections and
never answers, then started again. Meanwhile staff search the registry and open the concern
dashboard, rename a category (shown renamed at once), sign in, and a neighbour sends a report;
sign-in attempts stay limited. Once Redis is back, the pages are kept in it again.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from app.concerns.models import Concern
from app.concerns.services import list_categories
from app.extensions import db
from app.supporters.models import BusinessCategory
from tests.conftest import PASSWORD, district, free_port, make_supporter
from tests.reliability.test_deploy import browser, hidden, missing

ROOT = Path(__file__).resolve().parents[2]
SIGN_IN_LIMIT = 3  # failed sign-ins per account and minute, in this test
WORKERS = 2


def redis_server_binary() -> str:
    for candidate in ("/usr/bin/redis-server", "/usr/sbin/redis-server"):
        if Path(candidate).exists():
            return candidate
    missing("redis-server is missing (Debian's redis-server package; .ci/run installs it)")


def start_redis(port: int, folder: Path) -> subprocess.Popen:
    """A Redis server of this test's own, keeping nothing on disk (as a restarted one would
    come back empty)."""
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.1)


def signed_in(fetch, base: str, email: str, password: str) -> int:
    """The answer to a sign-in through the form (302: signed in)."""
    page = fetch(f"{base}/login")[2]
    return fetch(f"{base}/login", {"csrf_token": hidden(page, "csrf_token"), "email": email,
                                   "password": password})[0]


def timed(fetch, url: str) -> tuple[int, str, float]:
    """(status, page, seconds it took)."""
    started = time.monotonic()
    status, _headers, page = fetch(url)
    return status, page, time.monotonic() - started


def category_options(page: str) -> list[str]:
    found = re.search(r'<select id="category"[^>]*>(.*?)</select>', page, re.S)
    assert found, "no category filter on the page"
    return re.findall(r"<option [^>]*>([^<]*)</option>", found.group(1))[1:]


def cached_pages(server: redis.Redis) -> list[bytes]:
    return [key for key in server.scan_iter("hotnet:*") if b"supporter-filters" in key]


@pytest.fixture
def silent_port():
    """Taken by a socket that accepts connections (the kernel does, up to its backlog) and
    never answers: a Redis that hangs."""
    def listen(port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        return sock
    return listen


def test_search_dashboard_renames_sign_in_and_reports_work_while_redis_is_down_or_hangs(
        app, geography, admin, coordinator, tmp_path, silent_port):
    make_supporter(name="鈴木 花子", kana="すずき はなこ", district_id=district("d01").id)
    real_estate = db.session.scalar(
        select(BusinessCategory).where(BusinessCategory.code == "real_estate"))
    redis_port, web_port = free_port(), free_port()
    server = start_redis(redis_port, tmp_path)
    env = {
        "PATH": os.environ["PATH"], "LANG": "C.UTF-8",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": app.config["SECRET_KEY"], "HOTNET_BASE_URL": f"http://127.0.0.1:{web_port}",
        "HOTNET_INSTANCE_PATH": str(tmp_path / "instance"),
        "HOTNET_UPLOAD_DIR": str(tmp_path / "uploads"),
        "HOTNET_GEOGRAPHY": app.config["HOTNET_GEOGRAPHY"],
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(app.config["MAIL_PORT"]),
        "HOTNET_BIND": f"127.0.0.1:{web_port}", "HOTNET_WORKERS": str(WORKERS),
        "HOTNET_ACCESS_LOG": str(tmp_path / "access.log"),
        "HOTNET_CACHE_URL": f"redis://127.0.0.1:{redis_port}/2",
        "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{redis_port}/1",
        "HOTNET_LOGIN_RATE_LIMIT": f"{SIGN_IN_LIMIT} per minute",
        "HOTNET_LOGIN_IP_RATE_LIMIT": "1000 per minute",
        "HOTNET_PUBLIC_FORM_RATE_LIMIT": "1000 per minute",
    }
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cache = redis.Redis(port=redis_port, db=2)
    base = f"http://127.0.0.1:{web_port}"
    staff, other = browser()[0], browser()[0]
    silent = None
    try:
        deadline = time.monotonic() + 60
        while web.poll() is None and time.monotonic() < deadline:
            try:
                if staff(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        assert web.poll() is None, web.communicate()[0].decode()[-3000:]

        # Redis up: the registry's filters are kept in it.
        assert signed_in(staff, base, admin.email, PASSWORD) == 302
        status, _h, page = staff(f"{base}/staff/supporters?q=%E3%81%99%E3%81%9A%E3%81%8D")
        assert status == 200 and "鈴木 花子" in page and "不動産" in category_options(page)
        assert cached_pages(cache)

        # Redis killed (connections refused).
        server.kill()
        server.wait()
        for path, shown in (("/staff/supporters?q=%E3%81%99%E3%81%9A%E3%81%8D", "鈴木 花子"),
                            ("/staff/supporters", "鈴木 花子"), ("/staff/concerns", "<h1>気になること</h1>")):
            for _each_worker in range(WORKERS):
                status, _h, page = staff(base + path)
                assert status == 200 and shown in page, (path, status, page[-2000:])
        # A category renamed meanwhile is shown renamed at once (the copy kept by Redis could
        # not be deleted, but no page reads it while Redis is away).
        page = staff(f"{base}/admin/categories")[2]
        status, _h, _page = staff(f"{base}/admin/categories", {
            "csrf_token": hidden(page, "csrf_token"), "category_id": str(real_estate.id),
            "name": "不動産・住まい", "name_en": "Real estate"})
        assert status == 302, status
        for _each_worker in range(WORKERS):
            options = category_options(staff(f"{base}/staff/supporters")[2])
            assert "不動産・住まい" in options and "不動産" not in options
        # Signing in works, and failed attempts are still limited (counted in each worker
        # while Redis is away: at most the limit per worker get through).
        assert signed_in(other, base, coordinator.email, PASSWORD) == 302
        answers = [signed_in(browser()[0], base, admin.email, "wrong-password")
                   for _attempt in range(WORKERS * SIGN_IN_LIMIT + 3)]
        assert set(answers) == {200, 429}, answers
        assert answers.count(200) <= WORKERS * SIGN_IN_LIMIT, answers
        # Monitoring is told (a warning: the site works), without the server's address.
        ready = staff(f"{base}/healthz/ready")[2].replace(" ", "")
        assert '"redis":{"status":"warning"}' in ready and str(redis_port) not in ready, ready
        # A neighbour's report is taken and kept.
        neighbour = browser()[0]
        page = neighbour(f"{base}/report")[2]
        status, headers, _page = neighbour(f"{base}/report", {
            "csrf_token": hidden(page, "csrf_token"),
            "submission_key": hidden(page, "submission_key"),
            "category_id": str(list_categories()[0].id), "body": "Redisが止まっている間の相談",
            "district_id": str(district("d01").id), "place": "", "address": "", "noticed_on": "",
            "urgency": "normal", "reporter_name": "", "reporter_email": "", "reporter_phone": ""})
        assert status == 302 and "/report/thanks" in headers["Location"], (status, headers)
        db.session.expire_all()
        assert db.session.scalar(select(Concern.body).where(Concern.body.like("Redis%")))

        # A Redis that takes connections and never answers: pages still come, after at most
        # about a second of waiting for it.
        silent = silent_port(redis_port)
        time.sleep(11)  # past the cache's pause after the last failure: it asks again
        for path in ("/staff/supporters?q=%E3%81%99%E3%81%9A%E3%81%8D", "/staff/concerns"):
            for _each_worker in range(WORKERS):
                status, _page, took = timed(staff, base + path)
                assert status == 200 and took < 5, (path, status, took)
        assert signed_in(browser()[0], base, coordinator.email, PASSWORD) == 302

        # Redis back (empty, as after a restart): the pages are kept in it again.
        silent.close()
        silent = None
        server = start_redis(redis_port, tmp_path)
        deadline = time.monotonic() + 30
        while not cached_pages(cache):
            assert time.monotonic() < deadline, "the pages were not cached again"
            status, _h, page = staff(f"{base}/staff/supporters")
            assert status == 200 and "不動産・住まい" in category_options(page)
            time.sleep(0.5)
    finally:
        if silent is not None:
            silent.close()
        web.terminate()
        output = web.communicate(timeout=30)[0].decode()
        server.kill()
        server.wait()
    assert "Traceback" not in output, output[-5000:]
    assert "the shared cache (Redis) cannot be reached" in output
    assert "the shared cache (Redis) can be reached again" in output

"""Benchmark: the coordinator dashboard and the anonymous report form under load.

PostgreSQL with 200,000 concerns and 100,000 supporters; the app served by gunicorn with
2 workers; wrk (Debian's package, installed when missing) drives 32 concurrent connections
for 30 s at /healthz, at the dashboard (signed in as a coordinator) and at the report
form (POST with a CSRF token, as a browser sends it), one after the other in the same run.

Prints requests/s, p50/p99 and the error count for each, and the p99 ratios to /healthz.
Target: 0 errors, dashboard p99 <= 10 x /healthz p99. The last line holds the figures.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import psycopg

from app import create_app
from app.config import database_url
from app.extensions import db
from bench.common import PG_URL, create_database, debian_program, drop_database, free_port, postgres_reachable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = "hotnet-bench"
PASSWORD = "bench-password-2026"


def fill(url: str, supporters: int, concerns: int) -> None:
    """Schema, geography, staff, then supporters and concerns written by the server itself."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url(url),
                      "HOTNET_PASSWORD_METHOD": "pbkdf2:sha256:1000"})
    started = time.time()
    with app.app_context():
        from app.accounts.services import create_staff
        from app.concerns.services import ensure_concern_categories as concern_categories
        from app.geography.models import District
        from app.geography.services import load_geography
        from app.supporters.services import ensure_business_categories

        db.create_all()
        load_geography(app.config["HOTNET_GEOGRAPHY"])
        ensure_business_categories()
        concern_categories()
        districts = [(d.id, d.area_id) for d in
                     db.session.scalars(db.select(District).order_by(District.id))]
        area = db.session.get(District, districts[0][0]).area
        create_staff("coordinator@bench.example.jp", "調整 花子", PASSWORD, "coordinator",
                     station_id=area.station_id, area_ids=[area.id], actor=None)
        db.engine.dispose()
    district_ids = "ARRAY[" + ",".join(str(d) for d, _a in districts) + "]"
    area_ids = "ARRAY[" + ",".join(str(a) for _d, a in districts) + "]"
    n = len(districts)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"""
            INSERT INTO supporter (kind, name, kana, business_name, business_kana, contact_person,
                email, email_key, phone, postal_code, address, district_id, delivery, status,
                joined_via, notes, consent_version, sort_key, can_help, help_times, created_at,
                updated_at)
            SELECT 'person', '推進員 ' || i, 'すいしんいん ' || i, '', '', '',
                'u' || i || '@example.jp', 'u' || i || '@example.jp', '042-000-' || i,
                '188-0012', '西東京市南町1-1-1', ({district_ids})[1 + i % {n}], 'email', 'active',
                'staff', '', '', 'すいしんいん' || lpad(i::text, 6, '0'), '[]', '', now(), now()
            FROM generate_series(1, {supporters}) AS i""")
        categories = conn.execute("SELECT array_agg(id) FROM concern_category").fetchone()[0]
        conn.execute(f"""
            INSERT INTO concern (reference, category_id, body, district_id, area_id, place, address,
                urgency, photo, may_contact, channel, reporter_supporter_id, reporter_name,
                reporter_email, reporter_phone, status, assignee_id, connected_to, created_at,
                month, acknowledged_at, closed_at, updated_at)
            SELECT 'HN-' || to_char(t AT TIME ZONE 'Asia/Tokyo', 'YYYY') || '-' || lpad(i::text, 6, '0'),
                (ARRAY{categories})[1 + i % {len(categories)}],
                '一人暮らしの方を最近見かけません。新聞がたまっています。(' || i || ')',
                ({district_ids})[1 + (i * 7) % {n}], ({area_ids})[1 + (i * 7) % {n}],
                '公園の近く', '', CASE WHEN i % 50 = 0 THEN 'urgent' ELSE 'normal' END, '',
                i % 2 = 0, 'web', CASE WHEN i % 3 = 0 THEN 1 + i % {supporters} END, '', '', '',
                CASE WHEN t > now() - interval '3 days' THEN 'received'
                     WHEN t > now() - interval '60 days' THEN (ARRAY['acknowledged','in_progress','connected'])[1 + i % 3]
                     ELSE (ARRAY['closed','closed','closed','connected','duplicate'])[1 + i % 5] END,
                NULL, '', t, to_char(t AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM'),
                CASE WHEN t > now() - interval '3 days' THEN NULL ELSE t + interval '1 day' END,
                CASE WHEN t > now() - interval '60 days' THEN NULL ELSE t + interval '10 days' END, t
            FROM (SELECT i, now() - (i::float / {concerns}) * interval '1825 days' AS t
                  FROM generate_series(1, {concerns}) AS i) AS g""")
        conn.execute("""INSERT INTO concern_reference_counter (year, last)
                        SELECT extract(year FROM now() AT TIME ZONE 'Asia/Tokyo')::int, %s""",
                     (concerns,))
        conn.execute("VACUUM ANALYZE")
    print(f"  filled {supporters:,} supporters and {concerns:,} concerns in "
          f"{time.time() - started:.1f}s", flush=True)


class Browser:
    """Just enough of a browser to sign in and read a CSRF token (cookies, a User-Agent)."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> str:
        request = urllib.request.Request(self.base + path, headers={"User-Agent": AGENT})
        return self.opener.open(request).read().decode()

    def post(self, path: str, data: dict) -> None:
        request = urllib.request.Request(self.base + path, urllib.parse.urlencode(data).encode(),
                                         headers={"User-Agent": AGENT})
        self.opener.open(request).read()

    def csrf(self, path: str) -> str:
        return re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"',
                         self.get(path)).group(1)

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def start_server(url: str, port: int, folder: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url, HOTNET_INSTANCE_PATH=folder,
               HOTNET_PUBLIC_FORM_RATE_LIMIT="10000000 per minute",
               HOTNET_LOGIN_RATE_LIMIT="10000 per minute", MAIL_SUPPRESS_SEND="true",
               PYTHONPATH=ROOT)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=env)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse(output: str) -> dict:
    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M).groups()
        return float(value) * UNITS[unit]

    errors = 0
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket:
        errors += sum(int(g) for g in socket.groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        errors += int(bad.group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": latency("50%"), "p99": latency("99%"), "errors": errors,
            "requests": int(re.search(r"(\d+) requests in", output).group(1))}


def load(wrk: str, url: str, seconds: int, connections: int, headers: list[str],
         script: str | None = None) -> dict:
    command = [wrk, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
               "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    return parse(output)


def post_script(folder: str, csrf: str, category_id: int, district_id: int) -> str:
    body = urllib.parse.urlencode({
        "csrf_token": csrf, "category_id": category_id, "body": "ごみがたまっているお宅があります。",
        "district_id": district_id, "place": "駅の近く", "urgency": "normal"})
    path = os.path.join(folder, "post.lua")
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n'
                f'wrk.body = "{body}"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concerns", type=int, default=200_000)
    parser.add_argument("--supporters", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not postgres_reachable():
        print(f"  postgresql: not reachable at {PG_URL}; concerns_load needs it")
        print("concerns_load skipped=postgresql_unreachable")
        return 1
    wrk = debian_program("wrk", "wrk", "/usr/bin/wrk")
    name = f"hotnet_bench_concerns_{os.getpid()}"
    url = create_database(name)
    folder = tempfile.mkdtemp(prefix="hotnet-bench-")
    server = None
    try:
        fill(url, args.supporters, args.concerns)
        port = free_port()
        server = start_server(url, port, folder)
        base = f"http://127.0.0.1:{port}"
        staff = Browser(base)
        staff.post("/login", {"csrf_token": staff.csrf("/login"),
                              "email": "coordinator@bench.example.jp", "password": PASSWORD})
        assert "HN-" in staff.get("/staff/concerns"), "the coordinator could not open the dashboard"
        visitor = Browser(base)
        token = visitor.csrf("/report")
        with psycopg.connect(url) as conn:
            category_id = conn.execute("SELECT min(id) FROM concern_category").fetchone()[0]
            district_id = conn.execute("SELECT min(id) FROM district").fetchone()[0]
            before = conn.execute("SELECT count(*) FROM concern").fetchone()[0]
        agent = f"User-Agent: {AGENT}"
        runs = {}
        runs["healthz"] = load(wrk, base + "/healthz", args.seconds, args.connections, [agent])
        runs["dashboard"] = load(wrk, base + "/staff/concerns", args.seconds, args.connections,
                                 [agent, f"Cookie: {staff.cookie()}"])
        script = post_script(folder, token, category_id, district_id)
        runs["form"] = load(wrk, base + "/report", args.seconds, args.connections,
                            [agent, f"Cookie: {visitor.cookie()}"], script)
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM concern").fetchone()[0] - before
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        drop_database(name)
        shutil.rmtree(folder, ignore_errors=True)

    for key, r in runs.items():
        print(f"  {key:<9} {r['rps']:8.1f} req/s  p50 {r['p50']:8.2f} ms  p99 {r['p99']:8.2f} ms  "
              f"errors {r['errors']}  ({r['requests']} requests, {args.connections} connections, "
              f"{args.seconds}s)", flush=True)
    # wrk stops counting at the deadline; requests still in flight may be stored too.
    lost = max(0, runs["form"]["requests"] - stored)
    print(f"  form: {runs['form']['requests']} answered, {stored} concerns stored, {lost} lost")
    errors = sum(r["errors"] for r in runs.values()) + lost
    dashboard_ratio = runs["dashboard"]["p99"] / runs["healthz"]["p99"]
    form_ratio = runs["form"]["p99"] / runs["healthz"]["p99"]
    print(f"  p99 ratio to /healthz: dashboard {dashboard_ratio:.2f} (target <= 10), "
          f"form {form_ratio:.2f}; errors {errors} (target 0)", flush=True)
    print(f"concerns_load errors={errors} dashboard_p99_ratio={dashboard_ratio:.2f} "
          f"form_p99_ratio={form_ratio:.2f} healthz_rps={runs['healthz']['rps']:.0f} "
          f"dashboard_rps={runs['dashboard']['rps']:.0f} form_rps={runs['form']['rps']:.0f} "
          f"concerns={args.concerns} supporters={args.supporters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

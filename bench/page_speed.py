"""Pages on an old phone over a slow line (issue 16, part 3).

Loads /, /report, /trainings, /me (a signed-in supporter) and a staff concern page in
Debian's Chromium at 360 px with the network throttled to a slow mobile profile (400 kbit/s
both ways, 400 ms round trip) and the CPU slowed 4×, each with an empty browser cache (a
first visit), and prints per page the bytes transferred, the number of requests and the
Largest Contentful Paint. Targets (issue 16): every page ≤ 60 KB, ≤ 6 requests, LCP ≤ 2.5 s.

The app runs on a demo database (SQLite, in a temporary folder) behind Werkzeug's threaded
server on loopback. The last line is key=value figures: max_kb, max_requests, max_lcp_ms.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

from werkzeug.serving import make_server

CHROMIUM = os.environ.get("HOTNET_CHROMIUM", "/usr/bin/chromium")
KBIT = 1000 / 8  # bytes per second in one kbit/s
PROFILE = {"offline": False, "latency": 400, "downloadThroughput": 400 * KBIT,
           "uploadThroughput": 400 * KBIT}
CPU_SLOWDOWN = 4
TARGETS = {"kb": 60, "requests": 6, "lcp_ms": 2500}

LCP_OBSERVER = """
window.__lcp = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) { window.__lcp = Math.max(window.__lcp, entry.startTime); }
}).observe({type: 'largest-contentful-paint', buffered: true});
"""


def start_app(folder: Path):
    os.environ.update(HOTNET_ENV="development", HOTNET_INSTANCE_PATH=str(folder / "instance"),
                      DATABASE_URL=f"sqlite:///{folder / 'bench.sqlite3'}", RATELIMIT_ENABLED="false",
                      MAIL_SUPPRESS_SEND="true")
    import logging

    from flask_migrate import upgrade
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from app import create_app
    from app.demo import seed_demo

    app = create_app()
    with app.app_context():
        upgrade()
        seed_demo()
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return app, server, f"http://127.0.0.1:{port}"


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def supporter_link(app) -> str:
    """A sign-in link for a demo supporter who reads e-mail (made as the app makes them)."""
    from sqlalchemy import select

    from app.dbtypes import utcnow
    from app.extensions import db
    from app.supporters.models import LoginLink, Supporter
    with app.app_context():
        supporter = db.session.scalar(select(Supporter).where(
            Supporter.status == "active", Supporter.email.is_not(None)).limit(1))
        token = "bench-" + hashlib.sha256(str(supporter.id).encode()).hexdigest()[:24]
        db.session.add(LoginLink(supporter_id=supporter.id,
                                 token_hash=hashlib.sha256(token.encode()).hexdigest(),
                                 expires_at=utcnow() + timedelta(minutes=30)))
        db.session.commit()
        return token


def a_concern_id(app) -> int:
    from sqlalchemy import select

    from app.concerns.models import Concern
    from app.extensions import db
    with app.app_context():
        return db.session.scalar(select(Concern.id).where(Concern.status == "connected").limit(1))


def measure(page, cdp, url: str) -> dict:
    cdp.send("Network.clearBrowserCache")
    sizes = {}

    def on_finished(params):
        sizes[params["requestId"]] = params.get("encodedDataLength", 0)

    cdp.on("Network.loadingFinished", on_finished)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(1500)  # LCP settles after load; the throttled line is slow
    lcp = page.evaluate("window.__lcp")
    cdp.remove_listener("Network.loadingFinished", on_finished)
    return {"bytes": sum(sizes.values()), "requests": len(sizes), "lcp_ms": lcp}


def main() -> int:
    if not os.path.exists(CHROMIUM):
        print(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hotnet-page-speed-") as work:
        app, server, base = start_app(Path(work))
        token, concern_id = supporter_link(app), a_concern_id(app)
        results = {}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                     args=["--no-sandbox", "--disable-gpu"])
                context = browser.new_context(viewport={"width": 360, "height": 780},
                                              locale="ja-JP", device_scale_factor=2)
                context.add_init_script(LCP_OBSERVER)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                def throttle(on: bool) -> None:
                    cdp.send("Network.emulateNetworkConditions", PROFILE if on else {
                        **PROFILE, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN if on else 1})

                throttle(True)
                for path in ("/", "/report", "/trainings"):  # a visitor, signed out
                    results[path] = measure(page, cdp, base + path)
                # Signing in is not measured; the signed-in pages are, from a cold cache.
                throttle(False)
                page.goto(f"{base}/login/link/{token}")
                page.get_by_role("button").last.click()
                page.wait_for_url("**/me")
                throttle(True)
                results["/me"] = measure(page, cdp, base + "/me")
                throttle(False)
                page.request.post(base + "/logout", form={"csrf_token": page.locator(
                    'input[name="csrf_token"]').first.get_attribute("value")})
                page.goto(base + "/login")
                page.get_by_label("メールアドレス").fill("admin@hotnet.example.jp")
                page.get_by_label("パスワード").fill("hotnet-demo-2026")
                page.get_by_role("button", name="ログイン").click()
                page.wait_for_load_state("load")
                throttle(True)
                staff_path = f"/staff/concerns/{concern_id}"
                results[staff_path] = measure(page, cdp, base + staff_path)
                browser.close()
        finally:
            server.shutdown()
    print(f"{'page':28} {'KB':>7} {'requests':>9} {'LCP ms':>8}   (400 kbit/s, 400 ms RTT, CPU ×{CPU_SLOWDOWN}, "
          "cold cache, 360 px)")
    for path, r in results.items():
        flags = []
        if r["bytes"] / 1000 > TARGETS["kb"]:
            flags.append("over 60 KB")
        if r["requests"] > TARGETS["requests"]:
            flags.append("over 6 requests")
        if r["lcp_ms"] > TARGETS["lcp_ms"]:
            flags.append("LCP over 2.5 s")
        print(f"{path:28} {r['bytes'] / 1000:7.1f} {r['requests']:9d} {r['lcp_ms']:8.0f}   "
              f"{', '.join(flags) or 'ok'}")
    max_kb = max(r["bytes"] for r in results.values()) / 1000
    max_requests = max(r["requests"] for r in results.values())
    max_lcp = max(r["lcp_ms"] for r in results.values())
    print(f"max_kb={max_kb:.1f} max_requests={max_requests} max_lcp_ms={max_lcp:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

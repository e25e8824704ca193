"""Pages: Japanese by default, English by a visible switch, every string translated,
real labels on every field, readable dates, and no 500 for odd input."""
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo

from app.formatting import format_date, format_datetime
from tests.conftest import login_staff, make_supporter, page_text, post

ROOT = Path(__file__).resolve().parent.parent


class FieldAudit(HTMLParser):
    """Collects form controls and the ids that labels point at."""

    def __init__(self):
        super().__init__()
        self.controls, self.label_for, self.styles = [], set(), 0
        self.in_label = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs:
            self.styles += 1
        if tag == "label":
            self.in_label += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        if tag in ("input", "select", "textarea"):
            if attrs.get("type") in ("hidden", "submit", "button"):
                return
            self.controls.append((attrs.get("id"), attrs.get("name"), bool(self.in_label)))

    def handle_endtag(self, tag):
        if tag == "label":
            self.in_label -= 1


def audit(html: str) -> FieldAudit:
    parser = FieldAudit()
    parser.feed(html)
    return parser


PUBLIC = ["/", "/apply", "/apply/business", "/login", "/login/link", "/privacy", "/newsletters"]
STAFF = ["/staff/supporters", "/staff/supporters/new", "/staff/supporters/import",
         "/admin/staff/new", "/admin/categories", "/admin/audit", "/admin/geography",
         "/staff/newsletters", "/staff/newsletters/new"]


def test_every_field_has_a_label_and_pages_fit_phones(client, admin):
    make_supporter()
    pages = {url: page_text(client.get(url)) for url in PUBLIC}
    login_staff(client, admin)
    pages.update({url: page_text(client.get(url)) for url in STAFF + ["/staff/supporters/1/edit"]})
    for url, html in pages.items():
        assert '<html lang="ja">' in html, url
        assert 'name="viewport" content="width=device-width, initial-scale=1"' in html, url
        assert '<link rel="icon" href="data:image/svg+xml,' in html, url  # no /favicon.ico asked for
        result = audit(html)
        assert result.styles == 0, f"inline style on {url} (blocked by our CSP)"
        for control_id, name, wrapped in result.controls:
            assert wrapped or control_id in result.label_for, f"{url}: {name} has no label"


def test_japanese_by_default_and_english_by_the_switch(client, geography):
    assert "推進員に申し込む" in page_text(client.get("/apply"))
    response = post(client, "/language", {"lang": "en", "next": "/apply"})
    assert response.headers["Location"].endswith("/apply")
    body = page_text(client.get("/apply"))
    assert '<html lang="en">' in body
    assert "Apply to become a Hot-Net supporter" in body and "日本語" in body
    assert "I have read and agree to the privacy notice" in body
    assert "Nishitokyo Council of Social Welfare" in body and "社会福祉協議会" not in body
    body = page_text(post(client, "/apply", {"name": "", "kana": "", "delivery": "post"}))
    assert "Please enter the name." in body and "Please tick this box if you agree." in body
    post(client, "/language", {"lang": "ja", "next": "/"})
    assert "推進員に申し込む" in page_text(client.get("/"))
    assert "西東京市社会福祉協議会" in page_text(client.get("/"))


def test_the_layouts_that_come_with_hot_net_are_named_in_english_too(client, coordinator):
    login_staff(client, coordinator)
    assert '<option selected value="regular">通信（定期号）</option>' in page_text(
        client.get("/staff/newsletters/new"))
    post(client, "/language", {"lang": "en", "next": "/"})
    page = page_text(client.get("/staff/newsletters/new"))
    assert '<option selected value="regular">Newsletter (regular issue)</option>' in page
    assert "Notice (short)" in page and "通信（定期号）" not in page


def test_language_switch_ignores_foreign_redirects(client, geography):
    response = post(client, "/language", {"lang": "en", "next": "https://evil.example/"})
    assert response.headers["Location"] in ("/", "http://localhost/")


def test_every_string_has_an_english_translation():
    method_map = [("app/**.py", "python"), ("templates/**.html", "jinja2"),
                  ("templates/**.txt", "jinja2")]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    msgids = {message for _f, _l, message, _c, _x in
              extract_from_dir(str(ROOT), method_map, keywords=keywords)
              if isinstance(message, str)}
    with open(ROOT / "app/translations/en/LC_MESSAGES/messages.mo", "rb") as fh:
        catalog = read_mo(fh)
    translated = {m.id for m in catalog if m.id and m.string}
    missing = sorted(msgids - translated)
    assert missing == [], f"untranslated (run `make i18n-update` and fill messages.po): {missing}"


def test_dates_read_the_japanese_way(app):
    with app.test_request_context():
        assert format_date(date(2026, 12, 5)) == "2026年12月5日(土)"
        # 2026-12-05 15:30 UTC is the next morning in Tokyo.
        assert format_datetime(datetime(2026, 12, 5, 15, 30, tzinfo=timezone.utc)) == \
            "2026年12月6日(日) 00:30"


@pytest.mark.parametrize("url", [
    "/staff/supporters?page=abc&area=x&district=-1&kind=zzz&status=%00&q=" + "あ" * 300,
    "/staff/supporters?q=%25%5F%27%22%3B--",
    "/staff/supporters/999999",
    "/staff/supporters/999999/edit",
    "/admin/audit?page=-5",
])
def test_odd_input_never_gives_a_server_error(client, admin, url):
    login_staff(client, admin)
    assert client.get(url).status_code in (200, 400, 404)


def test_security_headers(client, geography):
    headers = client.get("/").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_healthz(client, geography):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("url,staff", [("/apply", False), ("/apply/business", False),
                                       ("/staff/supporters/new", True)])
def test_the_error_summary_lists_problems_in_the_order_of_the_page(client, admin, url, staff):
    """Sent empty, a form's summary of problems goes down the page as the fields do (the
    name before the address), not in the order the form's parts were written."""
    import re
    if staff:
        login_staff(client, admin)
    page = page_text(post(client, url, {"postal_code": "12", "phone": "1"}))
    summary = page[page.index('class="error-summary"'):]
    summary = summary[:summary.index("</div>")]
    targets = re.findall(r'<a href="#([a-z_]+)', summary)
    form = page[page.index("</div>", page.index('class="error-summary"')):]
    fields = re.findall(r'<(?:input|select|textarea|fieldset)[^>]* id="([a-z_]+)(?:-\d+)?"', form)
    in_page = [f for f in fields if f in targets]
    assert targets and targets == sorted(set(in_page), key=in_page.index), (targets, in_page)


def test_counts_brackets_and_venues_read_as_each_language_writes_them(app, geography):
    """A published range, a bracketed remark and a station's name as a venue: 1〜2, （…）
    and 田無ステーション in Japanese; 1–2, " (…)" and Tanashi Station in English."""
    from flask import g
    from sqlalchemy import select

    from app.extensions import db
    from app.formatting import bracketed, show_count
    from app.geography.models import Station
    from app.smallcounts import Shown
    from app.trainings.models import TrainingSession
    station = db.session.scalar(select(Station).order_by(Station.position))
    session = TrainingSession(station=station, venue_name="")
    for language, expected in (("ja", ("1〜2", "7", "（定員 30 人）", station.name)),
                               ("en", ("1–2", "7", " (定員 30 人)", station.name_en))):
        with app.test_request_context():
            g._hotnet_language = language
            assert (show_count(Shown(1, 2)), show_count(Shown(7, 7)),
                    bracketed("定員 30 人"), session.venue) == expected, language

"""Property-based fuzzing (Hypothesis) of every public form and every staff query string, on
both databases: whatever is sent, never a server error, and on a validation error what was
typed comes back (issue 9)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from app.site import strip_control_characters
from tests.conftest import login_staff, make_supporter

EDGE = ["", " ", "0", "-1", "9223372036854775808", "2147483648", "99999999999999999999999",
        "²", "١٢", "０１２", "1e9", "NaN", "\x00", "a\x00b", "\x1b[31m", "\u202eabc", "%00",
        "'; DROP TABLE supporter; --", "\" onmouseover=\"x", "<script>alert(1)</script>",
        "=HYPERLINK(\"http://evil.example\")", "0006-02-02", "9999-12-31", "2026-02-30",
        "あ" * 400, "x" * 6000, "㈱①髙", "\r\n", "\t", "a@b", "@", "../../etc/passwd"]
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=120)
VALUE = st.one_of(st.sampled_from(EDGE), TEXT,
                  st.integers(-2**70, 2**70).map(str))
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


class FormFields(HTMLParser):
    """The fields of the first form posting to `action` (None: the page's main form)."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}   # name -> kind ("text", "select", "hidden", …)
        self.options: dict[str, list[str]] = {}
        self._select = None
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("method") == "post" and "language" not in (a.get("action") or "") \
                and "logout" not in (a.get("action") or ""):
            self._in_form = True
        if not self._in_form:
            return
        if tag == "input" and a.get("name"):
            self.fields.setdefault(a["name"], a.get("type", "text"))
            if a.get("type") in ("radio", "checkbox"):
                self.options.setdefault(a["name"], []).append(a.get("value", "y"))
        elif tag == "textarea" and a.get("name"):
            self.fields[a["name"]] = "textarea"
        elif tag == "select" and a.get("name"):
            self.fields[a["name"]] = "select"
            self._select = a["name"]
        elif tag == "option" and self._select:
            self.options.setdefault(self._select, []).append(a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        if tag == "form" and self._in_form:
            self._in_form = False


def fields_of(html: str) -> FormFields:
    parser = FormFields()
    parser.feed(html)
    return parser


ECHOED = ("text", "email", "tel", "search", "textarea")


def fuzz_form(client, url: str, data) -> None:
    page = client.get(url)
    assert page.status_code == 200, url
    form = fields_of(page.get_data(as_text=True))
    values = {}
    for name in form.fields:
        if name in ("csrf_token", "submission_key"):
            continue
        choices = form.options.get(name, [])
        strategy = VALUE if not choices else st.one_of(st.sampled_from(choices), VALUE)
        values[name] = data.draw(strategy, label=name)
    values["csrf_token"] = re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                                     page.get_data(as_text=True)).group(1)
    response = client.post(url, data=values)
    assert response.status_code < 500, (url, values, response.status_code)
    if response.status_code in (200, 400) and "csrf_token" in response.get_data(as_text=True):
        html = response.get_data(as_text=True)
        if "name=\"" not in html:
            return
        for name, kind in form.fields.items():
            if kind not in ECHOED or name not in values or not values[name].strip():
                continue
            typed = strip_control_characters(values[name], multiline=kind == "textarea")
            assert str(escape(typed)) in html or str(escape(typed.strip())) in html, \
                (url, name, values[name])


@pytest.fixture
def fuzz_world(app, geography):
    from tests.test_trainings import make_session
    supporter = make_supporter(email="fuzz@example.jp", delivery="email")
    session = make_session(kind="registration", capacity=1000)
    return {"supporter": supporter, "session": session}


PUBLIC_FORMS = ["/report", "/apply", "/apply/business", "VISITOR", "/login", "/login/link"]


@pytest.mark.parametrize("url", PUBLIC_FORMS)
def test_public_forms_never_fail_and_keep_what_was_typed(client, fuzz_world, url):
    if url == "VISITOR":
        url = f"/trainings/{fuzz_world['session'].id}/visitor"

    @FUZZ
    @given(data=st.data())
    def run(data):
        fuzz_form(client, url, data)

    run()


def test_the_supporters_own_forms_never_fail(client, fuzz_world, mailbox):
    from tests.conftest import login_supporter
    login_supporter(client, fuzz_world["supporter"], mailbox)

    @FUZZ
    @given(data=st.data())
    def run(data):
        fuzz_form(client, "/me", data)
        fuzz_form(client, "/report", data)

    run()


STAFF_PAGES = ["/staff/concerns", "/staff/concerns/export.csv", "/staff/supporters",
               "/staff/supporters/export.csv", "/admin/audit", "/staff/newsletters",
               "/staff/trainings", "/admin/mail", "/staff/mailbox", "NEWSLETTER/preview",
               "NEWSLETTER/labels", "SESSION"]
PARAMS = ["page", "q", "area", "district", "kind", "status", "delivery", "category", "assignee",
          "overdue", "urgency", "action", "supporter", "per_sheet", "station", "sort"]


def test_staff_query_strings_never_fail(app, client, fuzz_world, admin, tmp_path):
    app.config["HOTNET_MAILCATCHER_DIR"] = str(tmp_path)
    login_staff(client, admin)
    from tests.conftest import post
    newsletter = post(client, "/staff/newsletters/new", {
        "layout": "regular", "number": "", "title": "題", "subject": "件名", "body_md": "本文",
        "area_id": "0", "district_id": "0", "kind": "", "category_id": "0",
        "training_id": "0"}).headers["Location"]
    pages = [p.replace("NEWSLETTER", newsletter).replace(
        "SESSION", f"/staff/trainings/sessions/{fuzz_world['session'].id}") for p in STAFF_PAGES]

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(page=st.sampled_from(pages),
           query=st.dictionaries(st.sampled_from(PARAMS), VALUE, max_size=5))
    def run(page, query):
        response = client.get(page, query_string=query)
        assert response.status_code < 500, (page, query)

    run()
    for odd in ("/staff/concerns/99999999999", "/staff/supporters/2147483648",
                "/staff/mailbox/" + "x" * 300, "/staff/newsletters/2147483647/preview",
                "/staff/concerns/1/photo", "/me/reports/" + "Ｘ" * 500):
        assert client.get(odd).status_code < 500, odd

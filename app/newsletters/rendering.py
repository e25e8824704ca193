"""Turning an issue into HTML and text for one recipient.

Layouts are Jinja templates in the top-level `newsletters/` folder (`NAME.html` and
`NAME.txt`), rendered in a sandboxed environment because staff write them. The body is
Markdown, rendered with markdown-it-py and sanitised with nh3. CSS is inlined with
css-inline.

Sending to 100,000 people must not render 100,000 pages: a layout is rendered and inlined
once per area with marker strings where the personal parts go, and each message swaps the
markers for the recipient's escaped values.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import css_inline
import nh3
from flask import current_app
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt
from markupsafe import Markup

from app.dbtypes import utcnow
from app.formatting import format_date
from app.i18n import gettext, lazy_gettext
from app.newsletters.mime import MarkedPart
from app.newsletters.plaintext import to_text
from app.urls import external_url

LAYOUT_DIR = Path(__file__).resolve().parent.parent.parent / "newsletters"
_TITLE = re.compile(r"\{#\s*title:\s*(.+?)\s*#\}")
# The titles of the layouts that come with Hot-Net, for the catalog: a title is shown in the
# reader's language where the catalog has it, as written in the file otherwise (a council's own).
_BUILT_IN_TITLES = (lazy_gettext("通信（定期号）"), lazy_gettext("お知らせ（短信）"))
ALLOWED_TAGS = {"p", "br", "strong", "em", "a", "ul", "ol", "li", "h2", "h3", "h4", "blockquote",
                "hr", "table", "thead", "tbody", "tr", "th", "td", "code", "pre"}
MARK = {"name": "HNMARK0NAME", "unsubscribe": "HNMARK0UNSUB", "preferences": "HNMARK0PREFS"}


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(LAYOUT_DIR)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["jdate"] = format_date
    return env


def layouts() -> dict[str, str]:
    """Available layouts: file stem → title (from a `{# title: … #}` comment)."""
    found = {}
    for path in sorted(LAYOUT_DIR.glob("*.html")):
        if path.name.startswith("_") or not path.with_suffix(".txt").exists():
            continue
        match = _TITLE.search(path.read_text(encoding="utf-8"))
        found[path.stem] = gettext(match.group(1)) if match else path.stem
    return found


_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def body_html(markdown: str) -> Markup:
    """Markdown as safe HTML: raw HTML is not passed through, and nh3 keeps only plain tags."""
    rendered = _markdown.render(markdown or "")
    clean = nh3.clean(rendered, tags=ALLOWED_TAGS, attributes={"a": {"href", "title"}},
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener")
    return Markup(clean)


@dataclass
class Personal:
    """What changes from one recipient to the next."""

    name: str
    unsubscribe_url: str
    preferences_url: str


@dataclass
class Rendered:
    html: str
    text: str
    encoded: tuple[bytes, bytes] | None = None  # text and HTML in base64 lines (TemplateCache)


@dataclass
class AreaInfo:
    name: str
    station_name: str
    station_phone: str
    coordinators: list[str]


@dataclass
class Content:
    """The issue's content — picture, text, chosen sections — as HTML and as plain text: the
    one rendering that the e-mail (both parts), the web page and the printed edition show."""

    html: Markup
    text: str


def _newsletter_values(newsletter) -> dict:
    # A draft (its preview, a test sent to staff) carries the date it would if sent now.
    return {"number": newsletter.number, "title": newsletter.title,
            "subject": newsletter.subject,
            "date": newsletter.started_at or newsletter.scheduled_at or utcnow()}


def image_url_of(newsletter) -> str:
    return external_url("newsletters.image", newsletter_id=newsletter.id) \
        if newsletter.image else ""


def content(newsletter, blocks: dict | None = None, *, phone: str = "") -> Content:
    """Render the issue's content (the sections frozen when sending began, or live ones for a
    draft). `phone`: where the reader can call to sign up for a training (their area's
    station, in a mail to them); without one the training section offers only its link."""
    if blocks is None:
        blocks = block_context(newsletter)
    env = _environment()
    values = {"newsletter": _newsletter_values(newsletter),
              "body_html": body_html(newsletter.body_md),
              "body_text": to_text(newsletter.body_md or ""),
              "image_url": image_url_of(newsletter), "signup_phone": phone, **blocks}
    return Content(html=Markup(env.get_template("_content.html").render(values)),
                   text=env.get_template("_content.txt").render(values).strip("\n"))


def _context(newsletter, area: AreaInfo | None, personal: Personal, extra: dict) -> dict:
    rendered = content(newsletter, {k: extra.get(k) for k in BLOCKS},
                       phone=area.station_phone if area else "")
    return {
        "newsletter": _newsletter_values(newsletter),
        "content_html": rendered.html,
        "content_text": rendered.text,
        "body_html": body_html(newsletter.body_md),
        "body_text": to_text(newsletter.body_md or ""),
        "recipient": {"name": personal.name},
        "area": area,
        "org_name": current_app.config["HOTNET_ORG_NAME"],
        "unsubscribe_url": personal.unsubscribe_url,
        "preferences_url": personal.preferences_url,
        "image_url": image_url_of(newsletter),
        "archive_url": external_url("newsletters.public_issue", newsletter_id=newsletter.id)
        if newsletter.id else external_url("newsletters.public_archive"),
        **extra,
    }


BLOCKS = ("concern_statistics", "upcoming_trainings")


def block_context(newsletter) -> dict:
    """The optional sections the issue asked for, as plain values for the layout.

    Once sending has begun they are the ones frozen then (`frozen_blocks`), so the web page
    and the printed edition show what the e-mail said; a draft shows them as they are now.
    Each is None when not asked for, so layouts can test `{% if concern_statistics %}`.
    """
    frozen = getattr(newsletter, "frozen_blocks", None)
    if frozen:
        return {key: frozen.get(key) for key in BLOCKS}
    return live_blocks(newsletter)


def live_blocks(newsletter) -> dict:
    from datetime import date

    from app.concerns.statistics import newsletter_statistics

    blocks = newsletter.blocks or {}
    period = blocks.get("concern_statistics")
    stats = None
    if period:
        stats = statistics_values(newsletter_statistics(date.fromisoformat(period["from"]),
                                                        date.fromisoformat(period["to"])))
    trainings = None
    if blocks.get("upcoming_trainings"):
        trainings = upcoming_trainings()
    return {"concern_statistics": stats, "upcoming_trainings": trainings}


def statistics_values(stats) -> dict:
    """The statistics block as plain, printable values (kept with the issue as JSON)."""
    return {"start": format_date(stats.start), "end": format_date(stats.end),
            "areas": list(stats.areas), "total": str(stats.total),
            "rows": [{"category": c, "values": [str(stats.cells[(a, c)]) for a in stats.areas]}
                     for c in stats.categories],
            "totals": [str(stats.area_totals[a]) for a in stats.areas]}


def upcoming_trainings(limit: int = 8) -> list[dict]:
    """Upcoming published sessions as plain values (the layout runs in a sandbox)."""
    from app.formatting import format_datetime, format_time
    from app.trainings.services import upcoming_sessions

    return [{"title": s.training.title, "when": f"{format_datetime(s.starts_at)}〜{format_time(s.ends_at)}",
             "venue": s.venue, "seats_left": s.seats_left, "capacity": s.capacity,
             "url": external_url("trainings.session", session_id=s.id)}
            for s in upcoming_sessions(limit=limit)]


def render(newsletter, area: AreaInfo | None, personal: Personal, extra: dict | None = None,
           inline: bool = True) -> Rendered:
    """Render one recipient's HTML (CSS inlined) and text versions."""
    if extra is None:
        extra = block_context(newsletter)
    env = _environment()
    layout = newsletter.layout if newsletter.layout in layouts() else "regular"
    context = _context(newsletter, area, personal, extra or {})
    page = env.get_template(f"{layout}.html").render(context)
    text = env.get_template(f"{layout}.txt").render(context)
    if inline:
        page = css_inline.inline(page)
    return Rendered(html=page, text=text)


class TemplateCache:
    """Renders each (issue, area) once with markers, then fills in each recipient (and their
    base64 lines: see MarkedPart)."""

    def __init__(self, newsletter, extra: dict | None = None):
        self.newsletter = newsletter
        self.extra = {**block_context(newsletter), **(extra or {})}
        self._by_area: dict[object, tuple[MarkedPart, MarkedPart]] = {}  # text, HTML

    def for_recipient(self, area_key, area: AreaInfo | None, personal: Personal) -> Rendered:
        shell = self._by_area.get(area_key)
        if shell is None:
            marked = Personal(MARK["name"], MARK["unsubscribe"], MARK["preferences"])
            rendered = render(self.newsletter, area, marked, self.extra)
            shell = self._by_area[area_key] = (MarkedPart(rendered.text, MARK.values()),
                                               MarkedPart(rendered.html, MARK.values()))
        text, page = shell
        text_values = _values(personal, escape=False)
        html_values = _values(personal, escape=True)
        return Rendered(html=page.fill(html_values), text=text.fill(text_values),
                        encoded=(text.base64(text_values), page.base64(html_values)))


def _values(personal: Personal, *, escape: bool) -> dict[str, str]:
    """Each marker's value for this recipient (escaped for HTML)."""
    quote = (lambda v: html.escape(v, quote=True)) if escape else (lambda v: v)
    return {MARK["name"]: quote(personal.name),
            MARK["unsubscribe"]: quote(personal.unsubscribe_url),
            MARK["preferences"]: quote(personal.preferences_url)}

"""Dates and times as users read them: 2026年12月5日(土), shown in Asia/Tokyo."""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, dates
from flask import Flask, current_app
from jinja2 import pass_eval_context
from markupsafe import Markup

from app.i18n import current_language
from app.text import digits, show_postal

TOKYO = ZoneInfo("Asia/Tokyo")
# Babel's patterns (CLDR): 2026年12月5日(土) in Japanese, Sat 5 Dec 2026 in English.
_DATE_PATTERNS = {"ja": "y年M月d日(E)", "en": "EEE d MMM y"}
# Parsed once: Babel parses a locale given by name on every call.
_LOCALES = {language: Locale.parse(language) for language in _DATE_PATTERNS}


def to_tokyo(value: datetime) -> datetime:
    return value.astimezone(TOKYO)


def format_date(value: date | datetime | None) -> str:
    """2026年12月5日(土) — or Sat 5 Dec 2026 in English."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_tokyo(value).date()
    return _format_day(value, current_language())


@lru_cache(maxsize=4096)
def _format_day(value: date, language: str) -> str:
    """A list shows the same few days many times over: each is written out once."""
    return dates.format_date(value, _DATE_PATTERNS[language], locale=_LOCALES[language])


def format_datetime(value: datetime | None) -> str:
    """2026年12月5日(土) 14:30 in Japan time."""
    if value is None:
        return ""
    local = to_tokyo(value)
    return f"{format_date(local.date())} {format_time(local)}"


def format_time(value: datetime | None) -> str:
    """14:30 in Japan time."""
    if value is None:
        return ""
    return to_tokyo(value).strftime("%H:%M")  # the same in both languages (CLDR "HH:mm")


def today_tokyo() -> date:
    return datetime.now(TOKYO).date()


def tel_href(phone: str | None) -> str:
    """A phone number as a tel: link dials it: its digits (and a leading +), whatever else
    a number stored before today's checks holds."""
    phone = (phone or "").strip()
    return ("+" if phone.startswith("+") else "") + digits(phone)


# The punctuation that joins a page's words and data, as each language writes it: Japanese
# full-width brackets, 「・」 and 〜; in English a space and round brackets, ", " and "–".
_PUNCTUATION = {"ja": ("（%s）", "・", "〜"), "en": (" (%s)", ", ", "–")}


def bracketed(text) -> str:
    """A remark after something, in brackets, as plain text: 22 席（定員 30 人） / 22 seats
    (capacity 30)."""
    return _PUNCTUATION[current_language()][0] % text


@pass_eval_context
def aside(eval_ctx, text):
    """`bracketed` in a template: in an HTML page the text is escaped unless it is markup
    already; in a text mail it is kept as it is."""
    return Markup(_PUNCTUATION[current_language()][0]) % text if eval_ctx.autoescape \
        else bracketed(text)


@pass_eval_context
def joined(eval_ctx, *parts):
    """Parts side by side, empty ones left out: 中部圏域・田無ステーション / Central area,
    Tanashi Station (escaped as `aside` is)."""
    separator = _PUNCTUATION[current_language()][1]
    parts = [p for p in parts if p]
    return Markup(separator).join(parts) if eval_ctx.autoescape else separator.join(map(str, parts))


def show_count(value) -> str:
    """A published count (smallcounts.Shown, or a plain number): a range as the reader
    writes it, 1〜2 / 1–2."""
    low, high = getattr(value, "low", None), getattr(value, "high", None)
    if low is None or low == high:
        return str(value)
    return f"{low}{until()}{high}"


def org_name() -> str:
    """The council's name in the reader's language (HOTNET_ORG_NAME, HOTNET_ORG_NAME_EN)."""
    config = current_app.config
    english = config.get("HOTNET_ORG_NAME_EN") if current_language() == "en" else ""
    return english or config["HOTNET_ORG_NAME"]


def until() -> str:
    """Between the start and the end of a time: 13:00〜15:00 / 13:00–15:00."""
    return _PUNCTUATION[current_language()][2]


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(aside=aside, joined=joined, org_name=org_name, until=until)
    app.jinja_env.filters["jdate"] = format_date
    app.jinja_env.filters["tel"] = tel_href
    app.jinja_env.filters["count"] = show_count
    app.jinja_env.filters["jdatetime"] = format_datetime
    app.jinja_env.filters["jtime"] = format_time
    app.jinja_env.filters["postal"] = show_postal

"""Dates and times as users read them: 2026年12月5日(土), shown in Asia/Tokyo."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import get_locale

from app.text import show_postal

TOKYO = ZoneInfo("Asia/Tokyo")
_WEEKDAYS_JA = "月火水木金土日"
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _is_english() -> bool:
    locale = get_locale()
    return locale is not None and locale.language == "en"


def to_tokyo(value: datetime) -> datetime:
    return value.astimezone(TOKYO)


def format_date(value: date | datetime | None) -> str:
    """2026年12月5日(土) — or Sat 5 Dec 2026 in English."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_tokyo(value).date()
    if _is_english():
        return f"{_WEEKDAYS_EN[value.weekday()]} {value.day} {_MONTHS_EN[value.month - 1]} {value.year}"
    return f"{value.year}年{value.month}月{value.day}日({_WEEKDAYS_JA[value.weekday()]})"


def format_datetime(value: datetime | None) -> str:
    """2026年12月5日(土) 14:30 in Japan time."""
    if value is None:
        return ""
    local = to_tokyo(value)
    return f"{format_date(local.date())} {local:%H:%M}"


def format_time(value: datetime | None) -> str:
    """14:30 in Japan time."""
    return "" if value is None else f"{to_tokyo(value):%H:%M}"


def today_tokyo() -> date:
    return datetime.now(TOKYO).date()


def init_app(app: Flask) -> None:
    app.jinja_env.filters["jdate"] = format_date
    app.jinja_env.filters["jdatetime"] = format_datetime
    app.jinja_env.filters["jtime"] = format_time
    app.jinja_env.filters["postal"] = show_postal

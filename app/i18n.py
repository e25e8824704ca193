"""Fast gettext for pages and services.

Flask-Babel looks up the locale and the catalogue through several context proxies on every
call, which costs about 0.1 ms; a registry page makes a hundred such calls. Here the
catalogue is looked up once per request and kept on `g`. Japanese is the source language,
so for Japanese the catalogue is the identity.
"""
from __future__ import annotations

from flask import g, has_app_context
from flask_babel import LazyString, get_translations


def _translations():
    if not has_app_context():
        return None
    translations = g.get("_hotnet_translations")
    if translations is None:
        translations = g._hotnet_translations = get_translations()
    return translations


def gettext(string: str, **variables) -> str:
    translations = _translations()
    text = translations.gettext(string) if translations is not None else string
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    variables.setdefault("num", num)
    translations = _translations()
    if translations is None:
        text = singular if num == 1 else plural
    else:
        text = translations.ngettext(singular, plural, num)
    return text % variables


def lazy_gettext(string: str, **variables) -> LazyString:
    return LazyString(gettext, string, **variables)


def current_language() -> str:
    """"en" or "ja": the reader's language (Japanese outside a request)."""
    if not has_app_context():
        return "ja"
    from flask_babel import get_locale
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "ja"

"""Fast gettext for pages and services.

Flask-Babel looks up the locale and the catalogue through several context proxies on every
call, which costs about 0.1 ms; a registry page makes a hundred such calls. Here the
catalogue is looked up once per request and kept on `g`. Japanese is the source language,
so for Japanese the catalogue is the identity.
"""
from __future__ import annotations

from flask import g, has_app_context
from flask_babel import LazyString, get_translations
from jinja2 import pass_eval_context
from markupsafe import Markup


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
    """"en" or "ja": the reader's language (Japanese outside a request). Looked up once per
    request, like the catalogue (a page asks for every place name it shows)."""
    if not has_app_context():
        return "ja"
    language = g.get("_hotnet_language")
    if language is None:
        from flask_babel import get_locale
        locale = get_locale()
        language = g._hotnet_language = (
            "en" if locale is not None and locale.language == "en" else "ja")
    return language


# In templates. Jinja's own newstyle `_()` goes through three context calls (the `_` alias,
# the newstyle wrapper, then the function); this does the same in one: the translated text,
# made safe where the template escapes, formatted with its variables (so "%%" reads "%" as
# with Jinja's; a text with neither is left as it is).
@pass_eval_context
def template_gettext(eval_ctx, string: str, /, **variables):
    translations = _translations()
    text = translations.gettext(string) if translations is not None else string
    if eval_ctx.autoescape:
        text = Markup(text)
    if variables or "%" in text:
        text = text % variables
    return text


def init_jinja(environment) -> None:
    """Translations in templates: `_`, `gettext` and `ngettext` (newstyle: variables as
    keyword arguments, escaped where the template escapes)."""
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)
    environment.globals.update(_=template_gettext, gettext=template_gettext)

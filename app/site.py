"""Site-wide pages and behaviour: home, health check, language switch, errors, headers."""
from __future__ import annotations

import hashlib
import re
from urllib.parse import urlparse

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from werkzeug.routing import IntegerConverter

from app import actors
from app.errors import InvalidInput, NotAllowed, NotFound
from app.extensions import db, limiter
from app.i18n import gettext as _
from app.labels import all_labels
from app.text import email_key

bp = Blueprint("site", __name__)


@bp.get("/")
def home():
    return render_template("site/home.html")


@bp.get("/healthz")
def healthz():
    """Liveness and database check for load balancers and benchmarks."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")


def remember_list(name: str, keys: tuple[str, ...]) -> None:
    """Keep a list's filters, search and page as the staff member last saw them (in their
    session, under `name`), for the way back from one of its records."""
    kept = {key: request.args[key][:100] for key in keys if request.args.get(key)}
    if session.get(name, {}) != kept:
        session[name] = kept


def fragment_key(*parts) -> str:
    """A short key for a cached piece of a page ({% cache %}), made of everything the piece
    shows (names, choices, what is selected): when any of it changes, the key changes, so the
    piece is made afresh at once instead of after the cache time."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


def remembered_list(name: str, endpoint: str, keys: tuple[str, ...], anchor: str = "") -> str:
    """The address of that list as last seen (the plain list when none was kept); at
    `anchor` when it was narrowed, searched or paged."""
    kept = session.get(name)
    if not isinstance(kept, dict):
        kept = {}
    args = {key: value for key, value in kept.items() if key in keys and isinstance(value, str)}
    return url_for(endpoint, **args) + (f"#{anchor}" if args and anchor else "")


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths are followed after a form."""
    if not target or has_control_characters(target):  # a line break would split a header
        return default
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def public_form_limit() -> str:
    """The rate limit of public forms (read per request, so tests and settings can change it)."""
    return current_app.config["HOTNET_PUBLIC_FORM_RATE_LIMIT"]


# Ids and numbers that come from a URL or a form are checked against this before they
# reach the database (PostgreSQL's integer; SQLite overflows past 2**63).
MAX_ID = 2**31 - 1
MAX_PAGE = 100_000
_DIGITS = re.compile(r"[0-9]{1,10}")
# C0 controls, DEL and C1 controls: never part of what a person types.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parse_id(value: str | None, maximum: int = MAX_ID) -> int | None:
    """A whole number 0…maximum written in ASCII digits, or None (² or ١ are not numbers here)."""
    value = (value or "").strip()
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if number <= maximum else None


def sign_in_account_limit() -> str:
    return current_app.config["HOTNET_LOGIN_RATE_LIMIT"]


def sign_in_address_limit() -> str:
    return current_app.config["HOTNET_LOGIN_IP_RATE_LIMIT"]


def sign_in_account_key() -> str:
    """The account being tried (the address typed), whichever network it comes from."""
    return "account:" + (email_key(request.form.get("email")) or "")[:254]


def _sign_in_failed(response) -> bool:
    return response.status_code != 302


def form_when_limited(render_form):
    """Mark a view whose form, when too many were sent (429), is shown again with what was
    typed and the message at its top, instead of an error page that loses it. `render_form`
    renders the page (in the request that was refused) with its form."""
    def mark(view):
        view.form_when_limited = render_form  # kept on the limiter's wrappers (functools.wraps)
        return view
    return mark


def limited_form(form):
    """The form as sent, with the message that says to wait (see form_when_limited)."""
    add_error(form, None, {None: _("操作が続いたため、しばらくお待ちください。数分ほど時間をおいてから、もう一度お試しください。")})
    return form


# Sign-in attempts are limited twice, counting only failures: per account (a slow guess of
# one password is stopped wherever it comes from) and, more loosely, per network address
# (so one colleague's typos in a shared office do not lock the others out).
def sign_in_limits(view):
    view = limiter.limit(sign_in_account_limit, key_func=sign_in_account_key, methods=["POST"],
                         deduct_when=_sign_in_failed)(view)
    return limiter.limit(sign_in_address_limit, methods=["POST"], deduct_when=_sign_in_failed)(view)


def int_arg(name: str, maximum: int = MAX_ID) -> int | None:
    """A whole-number query argument, or None when it is missing, not a number or out of range."""
    return parse_id(request.args.get(name), maximum)


_PAGE = re.compile(r"[0-9]{1,100}")


def page_arg() -> int:
    """The page number asked for: 1 when missing or not a number; one past any list (above
    MAX_PAGE) as MAX_PAGE, so that the list says there is no such page and where it ends,
    as it does for page 20 of 19, instead of quietly showing the first."""
    value = (request.args.get("page") or "").strip()
    if not _PAGE.fullmatch(value):
        return 1
    return max(1, min(int(value), MAX_PAGE))


_PASTED_BREAKS = re.compile(r"[\t\r\n]+")


SEARCH_ARG = "q"  # the name of every search box: what was typed there may hold pasted breaks
SEARCH_LIMIT = 100  # characters of a search box (its maxlength); more is cut, and the page says so


def search_arg(name: str = SEARCH_ARG, limit: int = SEARCH_LIMIT) -> str:
    """What was typed in a search box, at most `limit` characters; a tab or line break pasted
    with it (two cells copied from a spreadsheet) counts as a space. Longer text (an address
    typed by hand) is cut, and the page says where (`g.search_cut`)."""
    text = _PASTED_BREAKS.sub(" ", request.args.get(name) or "").strip()
    if len(text) > limit:
        g.search_cut = limit
    return text[:limit]


def form_int(name: str) -> int | None:
    """A whole-number form value outside WTForms (a button's hidden id), range-checked."""
    return parse_id(request.form.get(name))


def has_control_characters(text: str, *, multiline: bool = False) -> bool:
    """Whether text holds characters nobody types: NUL, escapes, DEL, C1 controls (and line
    breaks or tabs where only one line is expected)."""
    pattern = _CONTROL if multiline else _CONTROL_OR_NEWLINE
    return bool(pattern.search(text))


def strip_control_characters(text: str, *, multiline: bool = False) -> str:
    pattern = _CONTROL if multiline else _CONTROL_OR_NEWLINE
    return pattern.sub("", text)


class BoundedIntConverter(IntegerConverter):
    """`<int:…>` in routes, limited to what the database can hold: a larger number in a
    URL is a 404, not an overflow deep inside a query."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def form_data(form, fields) -> dict:
    """The values of those fields the form has; a pick list's 0 ("none chosen") for an
    `…_id` field becomes None."""
    data = {}
    for key in fields:
        if hasattr(form, key):
            value = getattr(form, key).data
            data[key] = None if key.endswith("_id") and value == 0 else value
    return data


def validate_with_rules(form, problems) -> bool:
    """True when the form validates. Otherwise the service's rule problems (`problems()`)
    are shown beside the form's own, so that one try shows them all — unless the CSRF
    check failed, when only that is said."""
    if form.validate_on_submit():
        return True
    if "csrf_token" not in form.errors:
        found = problems()
        if found:
            add_error(form, InvalidInput("", None), problems=found)
    return False


def add_error(form, exc, problems: dict | None = None) -> None:
    """Show a service's InvalidInput next to its fields (or at the top of the form)."""
    from app.forms import mark_errors
    mark_errors()
    problems = problems or getattr(exc, "problems", None) or {getattr(exc, "field", None): str(exc)}
    for name, message in problems.items():
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            if message not in field.errors:
                field.errors = list(field.errors) + [message]
        else:
            form.form_errors.append(message)


def is_busy(exc: BaseException) -> bool:
    """Whether a database error means "too busy right now" (a lock or statement timeout,
    SQLite's lock): nothing was stored, and sending the same again may well work."""
    if not isinstance(exc, OperationalError):
        return False
    original = getattr(exc, "orig", None)
    if original is not None and type(original).__name__ in ("LockNotAvailable", "QueryCanceled"):
        return True
    text_ = str(original or exc).lower()
    return ("database is locked" in text_ or "lock timeout" in text_
            or "statement timeout" in text_)


def busy_message() -> str:
    return _("混み合っていて、保存できませんでした（何も保存されていません）。入力した内容はこのままです。少し待ってから、もう一度送ってください。")


def busy(form) -> None:
    """Tell the person their form was not stored because the database was busy; what they
    typed stays in the form (the caller re-renders it)."""
    db.session.rollback()
    form.busy = True
    form.form_errors.append(busy_message())


@bp.post("/language")
def set_language():
    lang = request.form.get("lang", "ja")
    session["lang"] = lang if lang in ("ja", "en") else "ja"
    return redirect(safe_next(request.form.get("next")))


def _error_page(status: int, title: str, message: str):
    return render_template("site/error.html", status=status, title=title, message=message), status


def refuse_control_characters_in_url():
    """A URL whose path or query holds control characters is refused with a plain page
    (forms report them beside the field instead: see app.forms). Only what was typed in a
    search box (SEARCH_ARG) may hold tabs and line breaks: pasted there they are spaces (search_arg)."""
    if has_control_characters(request.path) or any(
            has_control_characters(key) or has_control_characters(value, multiline=key == SEARCH_ARG)
            for key, value in request.args.items(multi=True)):
        return _error_page(400, _("アドレスに使えない文字が含まれています"),
                           _("アドレス（URL）に制御文字などの使えない文字が含まれていました。リンクをもう一度開き直してください。"))
    return None


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    from app.urls import external_url
    app.jinja_env.globals["external_url"] = external_url  # links in mail, also outside requests
    app.jinja_env.globals["actor_label"] = actors.label  # who did it, in the reader's language
    app.jinja_env.globals["SEARCH_LIMIT"] = SEARCH_LIMIT  # every search box's maxlength
    app.before_request(refuse_control_characters_in_url)

    @app.context_processor
    def inject():
        return {"labels": all_labels(), "current_locale": str(get_locale() or "ja")}

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        # Pages carry personal data more often than not (a name in the header, a record, a
        # CSV): no browser or proxy keeps any of them. Only what a view marks public
        # (a published newsletter's picture) and the static files may be cached.
        if request.endpoint != "static" and not response.cache_control.public:
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
        return response

    @app.errorhandler(403)
    def forbidden(error):
        return _error_page(403, _("このページを見る権限がありません"),
                           _("職員用のページです。必要な場合は事務局にお問い合わせください。"))

    @app.errorhandler(NotAllowed)
    def not_allowed(error):
        return _error_page(403, _("この記録を見る権限がありません"),
                           _("担当する圏域の外の個人情報は見られません。応援が必要なときは、事務局に一時的な担当（応援）の設定を依頼してください。"))

    @app.errorhandler(NotFound)
    def domain_not_found(error):
        return not_found(error)

    @app.errorhandler(404)
    def not_found(error):
        return _error_page(404, _("ページが見つかりません"),
                           _("アドレスが正しいかお確かめください。"))

    @app.errorhandler(413)
    def too_large(error):
        return _error_page(413, _("ファイルが大きすぎます"),
                           _("もっと小さいファイルを選んでください。"))

    @app.errorhandler(429)
    def too_many(error):
        view = app.view_functions.get(request.endpoint)
        again = getattr(view, "form_when_limited", None)
        if again is not None and request.method == "POST":
            return again(), 429
        return _error_page(429, _("操作が続いたため、しばらくお待ちください"),
                           _("数分ほど時間をおいてから、もう一度お試しください。"))

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _error_page(400, _("画面の有効期限が切れました"),
                           _("お手数ですが、前の画面に戻り、ページを読み込み直してからもう一度送信してください。"))

    @app.errorhandler(OperationalError)
    def database_busy(error):
        db.session.rollback()
        if not is_busy(error):
            raise error
        return _error_page(503, _("混み合っています"),
                           _("いま処理が混み合っていて、保存や表示ができませんでした（何も保存されていません）。少し待ってから、もう一度お試しください。"))

    @app.errorhandler(500)
    def server_error(error):
        return _error_page(500, _("申し訳ありません。問題が起きました"),
                           _("時間をおいてもう一度お試しください。続く場合は事務局にご連絡ください。"))

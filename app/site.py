"""Site-wide pages and behaviour: home, health check, language switch, errors, headers."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import (Blueprint, Flask, current_app, jsonify, redirect, render_template, request,
                   session)
from flask_babel import get_locale
from app.i18n import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import text

from app.errors import InvalidInput
from app.extensions import db
from app.labels import all_labels

bp = Blueprint("site", __name__)


@bp.get("/")
def home():
    return render_template("site/home.html")


@bp.get("/healthz")
def healthz():
    """Liveness and database check for load balancers and benchmarks."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths are followed after a form."""
    if not target:
        return default
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def public_form_limit() -> str:
    """The rate limit of public forms (read per request, so tests and settings can change it)."""
    return current_app.config["HOTNET_PUBLIC_FORM_RATE_LIMIT"]


def int_arg(name: str) -> int | None:
    """A whole-number query argument, or None when it is missing or not a number."""
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


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
    problems = problems or getattr(exc, "problems", None) or {getattr(exc, "field", None): str(exc)}
    for name, message in problems.items():
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            if message not in field.errors:
                field.errors = list(field.errors) + [message]
        else:
            form.form_errors.append(message)


@bp.post("/language")
def set_language():
    lang = request.form.get("lang", "ja")
    session["lang"] = lang if lang in ("ja", "en") else "ja"
    return redirect(safe_next(request.form.get("next")))


def _error_page(status: int, title: str, message: str):
    return render_template("site/error.html", status=status, title=title, message=message), status


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

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
        return response

    @app.errorhandler(403)
    def forbidden(error):
        return _error_page(403, _("このページを見る権限がありません"),
                           _("職員用のページです。必要な場合は事務局にお問い合わせください。"))

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
        return _error_page(429, _("操作が続いたため、しばらくお待ちください"),
                           _("数分ほど時間をおいてから、もう一度お試しください。"))

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _error_page(400, _("画面の有効期限が切れました"),
                           _("お手数ですが、前の画面に戻り、ページを読み込み直してからもう一度送信してください。"))

    @app.errorhandler(500)
    def server_error(error):
        return _error_page(500, _("申し訳ありません。問題が起きました"),
                           _("時間をおいてもう一度お試しください。続く場合は事務局にご連絡ください。"))

"""Admins read the audit log."""
from math import ceil

from flask import Blueprint, render_template, request

from app.accounts.services import admin_required
from app.audit.services import list_entries
from app.site import page_arg

bp = Blueprint("audit", __name__)
PER_PAGE = 50


@bp.get("/admin/audit")
@admin_required
def log():
    page = page_arg()
    action = request.args.get("action", "")[:60]
    entries, total = list_entries(page, PER_PAGE, action)
    return render_template("audit/log.html", entries=entries, page=page, action=action,
                           pages=max(1, ceil(total / PER_PAGE)), total=total)

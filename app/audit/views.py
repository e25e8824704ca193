"""Admins read the audit log."""
from math import ceil

from flask import Blueprint, render_template, request

from app.access import admin_required
from app.audit.services import actor_name, describe, list_entries, place_names
from app.labels import AUDIT_ACTION
from app.site import page_arg

bp = Blueprint("audit", __name__)
PER_PAGE = 50


@bp.get("/admin/audit")
@admin_required
def log():
    page = page_arg()
    action = request.args.get("action", "")
    action = action if action in AUDIT_ACTION else ""
    entries, total = list_entries(page, PER_PAGE, action)
    places = place_names()
    return render_template("audit/log.html", entries=entries, page=page, action=action,
                           pages=max(1, ceil(total / PER_PAGE)), total=total,
                           describe=lambda e: describe(e, places), actor_name=actor_name,
                           actions=AUDIT_ACTION)

"""Admins read the audit log; entries written during a web request get its address."""
from math import ceil

from flask import Blueprint, has_request_context, render_template, request
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.access import admin_required
from app.audit.models import AuditEntry
from app.audit.services import actor_name, describe, list_entries, place_names
from app.labels import AUDIT_ACTION
from app.site import page_arg

bp = Blueprint("audit", __name__)
PER_PAGE = 50


def _stamp_connection(session, flush_context, instances) -> None:
    """Services record who acted (their `actor` argument); the web layer adds from where."""
    if not has_request_context():
        return
    for entry in session.new:
        if isinstance(entry, AuditEntry) and not entry.ip:
            entry.ip = request.remote_addr or ""


@bp.record_once
def _listen(state) -> None:
    if not event.contains(Session, "before_flush", _stamp_connection):
        event.listen(Session, "before_flush", _stamp_connection)


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

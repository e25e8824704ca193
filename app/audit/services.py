"""Writing and reading the audit log."""
from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.extensions import db


def _actor(user=None) -> tuple[int | None, str]:
    if user is None and has_request_context() and current_user.is_authenticated:
        user = current_user
    if user is not None and getattr(user, "is_staff", False):
        return user.id, f"{user.name} <{user.email}>"
    if user is not None:
        return None, f"supporter:{user.id}"
    return None, "system"


def record(action: str, target_type: str = "", target_id: int | None = None,
           detail: str = "", actor=None) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits). `actor` is the
    acting account; without it, the signed-in user of the request (or "system")."""
    staff_id, actor = _actor(actor)
    ip = (request.remote_addr or "") if has_request_context() else ""
    entry = AuditEntry(staff_id=staff_id, actor=actor, action=action,
                       target_type=target_type, target_id=target_id, detail=detail, ip=ip)
    db.session.add(entry)
    return entry


def list_entries(page: int, per_page: int, action: str = "") -> tuple[list[AuditEntry], int]:
    """Newest first, with the total count for pagination."""
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    )
    return list(rows), total or 0

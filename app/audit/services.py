"""Writing and reading the audit log."""
from __future__ import annotations

import json
from typing import Callable

from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.extensions import db
from app.i18n import gettext as _


def _actor(user) -> tuple[int | None, str]:
    if user is not None and getattr(user, "is_staff", False):
        return user.id, f"{user.name} <{user.email}>"
    if user is not None and getattr(user, "id", None) is not None:
        return None, f"supporter:{user.id}"
    return None, "system"


def record(action: str, target_type: str = "", target_id: int | None = None,
           detail: str = "", *, actor, params: dict | None = None) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits). `actor` is the
    acting account (a staff user or a supporter), or None for the system itself: the
    scheduler, a command. The connection's address is added by the web layer (app/site.py).

    `params` are codes and numbers ({"count": 12, "from": "received", …}), stored as JSON
    and put into words when the log is read, in the reader's language (see describe)."""
    staff_id, actor = _actor(actor)
    if params is not None:
        detail = json.dumps(params, ensure_ascii=False, default=str, sort_keys=True)
    entry = AuditEntry(staff_id=staff_id, actor=actor, action=action,
                       target_type=target_type, target_id=target_id, detail=detail)
    db.session.add(entry)
    return entry


# Names of the places that filters refer to by id, by kind ("station", "area", "district"):
# the geography domain, above audit, registers a function giving {id: name} for each kind.
PLACE_NAMES: dict[str, Callable[[], dict[int, str]]] = {}


def place_names() -> dict[str, dict[int, str]]:
    """{kind: {id: name}} for describe(), from the registered sources."""
    return {kind: source() for kind, source in PLACE_NAMES.items()}


def _value(key: str, value, places: dict) -> str:
    from app.labels import CONCERN_STATUS, DELIVERY, KIND, STATUS, URGENCY

    if value is None or value == "" or value == []:
        return ""
    if key == "area_ids":
        return "、".join(places.get("area", {}).get(v, str(v)) for v in value) or _("地区不明")
    if key in ("area_id", "district_id", "station_id"):
        return places.get(key[:-3], {}).get(value, str(value))
    if key == "status":
        if value == "open":
            return _("完了・重複以外")
        return str(CONCERN_STATUS.get(value) or STATUS.get(value) or value)
    if key == "assignee":
        return {"me": _("自分"), "none": _("担当者なし")}.get(value, value)
    if key == "urgency":
        return str(URGENCY.get(value, value))
    if key == "kind":
        return str(KIND.get(value, value))
    if key == "delivery":
        return str(DELIVERY.get(value, value))
    if value is True:
        return _("はい")
    return str(value)


def describe(entry: AuditEntry, places: dict | None = None) -> str:
    """An entry's detail in words: JSON params are put into the reader's language; older
    free-text details are shown as they were written. `places` names areas, districts and
    stations by id ({"area": {1: "中部圏域"}, …}), as place_names() gives them."""
    places = places or {}
    from app.labels import CONCERN_STATUS, FILTER_NAME

    text = entry.detail or ""
    if not text.startswith("{"):
        return text
    try:
        params = json.loads(text)
    except ValueError:
        return text
    from app.labels import REGISTRATION_STATUS, ROLE

    parts = []
    if "from" in params and "to" in params:
        parts.append(f"{CONCERN_STATUS.get(params['from'], params['from'])} → "
                     f"{CONCERN_STATUS.get(params['to'], params['to'])}")
    if "count" in params:
        parts.append(_("%(n)d件", n=params["count"]))
    if "people" in params:
        parts.append(_("%(n)d人", n=params["people"]))
    if params.get("reference"):
        parts.append(params["reference"])
    if params.get("name"):
        parts.append(params["name"])
    if params.get("role"):
        parts.append(str(ROLE.get(params["role"], params["role"])))
    if params.get("area_id"):
        parts.append(_value("area_id", params["area_id"], places))
    if params.get("session"):
        parts.append(_("研修の回 #%(id)s", id=params["session"]))
    if params.get("supporter"):
        parts.append(_("推進員 #%(id)s", id=params["supporter"]))
    if params.get("registration"):
        parts.append(str(REGISTRATION_STATUS.get(params["registration"], params["registration"])))
    if params.get("when"):
        parts.append(_when(params["when"], clock=True))
    if params.get("until"):
        parts.append(_("%(day)sまで", day=_when(params["until"], clock=False)))
    if params.get("before"):
        parts.append(_("%(day)sより前に完了したもの", day=_when(params["before"], clock=False)))
    filters = params.get("filters") or {}
    shown = [f"{FILTER_NAME.get(k, k)}: {_value(k, v, places)}" for k, v in filters.items()
             if _value(k, v, places)]
    if shown:
        parts.append(_("条件: %(list)s", list="、".join(shown)))
    return " ".join(parts) or text


def _when(text: str, *, clock: bool) -> str:
    """A stored ISO date or moment, as the reader reads dates."""
    from datetime import datetime

    from app.formatting import format_date, format_datetime
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text
    if value.tzinfo is None:
        return format_date(value.date())
    return format_datetime(value) if clock else format_date(value)


def actor_name(entry: AuditEntry) -> str:
    if entry.actor == "system":
        return _("システム（自動の処理）")
    if entry.actor.startswith("supporter:"):
        return _("推進員 #%(id)s", id=entry.actor.split(":", 1)[1])
    return entry.actor


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

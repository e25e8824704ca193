"""Adding many supporters at once (the CSV import).

The same records as `records.add_supporter` makes one at a time — the editable fields, the
joining date of an active supporter, the sort key, e-mail key and search terms that
`search._refresh_derived` keeps in step, and a first history entry — written as many rows
per statement (COPY on PostgreSQL) instead of a flush per supporter.
"""
from __future__ import annotations

from types import SimpleNamespace

from app import actors
from app.dbtypes import insert_rows, insert_rows_returning_ids, utcnow
from app.supporters.models import Supporter, SupporterChange
from app.supporters.records import joining_date
from app.supporters.search import search_text_for, sort_key_for
from app.text import email_key

_TABLE = Supporter.__table__
# Every column but the id, with the model's own default (those made by a function are set
# below), so that every row gives a value for every column.
_COLUMNS = tuple(c.key for c in _TABLE.columns if c.key != "id")
_DEFAULTS = {c.key: (c.default.arg if c.default is not None and not callable(c.default.arg)
                     else None) for c in _TABLE.columns if c.key != "id"}
_HISTORY = ("supporter_id", "staff_id", "actor", "actor_kind", "action", "changes", "at")


def add_supporters(rows: list[dict], action: str, *, actor) -> list[int]:
    """Add one supporter per dict of checked data (as `add_supporter` takes it), with its
    first history entry; returns their ids in the same order (the caller commits)."""
    if not rows:
        return []
    now = utcnow()
    records = []
    for data in rows:
        record = dict(_DEFAULTS)
        record.update((k, v) for k, v in data.items() if k in _DEFAULTS)
        record["can_help"] = record["can_help"] or []
        record["joined_on"] = joining_date(record["status"], record["joined_on"])
        view = SimpleNamespace(**record)
        view.display_name = Supporter.display_name.fget(view)
        record["sort_key"] = sort_key_for(view)
        record["email_key"] = email_key(record["email"])
        record["search_terms"] = search_text_for(view)
        record["created_at"] = record["updated_at"] = now
        records.append(tuple(record[key] for key in _COLUMNS))
    ids = insert_rows_returning_ids(_TABLE, _COLUMNS, records)
    staff_id, name, kind = actors.stamp(actor)
    insert_rows(SupporterChange.__table__, _HISTORY,
                [(supporter_id, staff_id, name, kind, action, {}, now) for supporter_id in ids])
    return ids

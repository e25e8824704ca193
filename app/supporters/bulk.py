"""Adding many supporters at once (the CSV import).

The same records as `records.add_supporter` makes one at a time — the editable fields, the
joining date of an active supporter, the sort key, e-mail key and search terms that
`search._refresh_derived` keeps in step, and a first history entry. Each is made whole when
the file is checked (`record_for`, kept with the staged row); the import then writes them
with one INSERT … SELECT per thousand rows, from the staged rows to the registry inside the
database, and their history entries likewise, instead of a flush per supporter.
"""
from __future__ import annotations

from functools import cache
from types import SimpleNamespace
from typing import Iterable

from sqlalchemy import (
    JSON,
    Integer,
    String,
    bindparam,
    column,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    true,
)
from sqlalchemy.dialects.postgresql import REGCLASS

from app import actors
from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.supporters.models import (
    SEARCH_INDEX_PG,
    Supporter,
    SupporterChange,
    SupporterImportRow,
)
from app.supporters.records import joining_date
from app.supporters.search import search_text_for, sort_key_for
from app.text import email_key

_TABLE = Supporter.__table__
# Written from the time of the import, not from the record.
_TIMES = ("created_at", "updated_at")
# Every other column but the id, with the value a record leaves out stands for: the model's
# own default (those made by a function are set by record_for; a list of what one can help
# with is empty).
_COLUMNS = tuple(c.key for c in _TABLE.columns if c.key != "id" and c.key not in _TIMES)
_DEFAULTS = {c.key: (c.default.arg if c.default is not None and not callable(c.default.arg)
                     else None) for c in _TABLE.columns if c.key in _COLUMNS}
_DEFAULTS["can_help"] = []
# The fields the sort key and search terms are made from.
_NAMED_BY = ("kind", "name", "kana", "business_name", "business_kana", "contact_person",
             "phone", "email")
_HISTORY = ("supporter_id", "staff_id", "actor", "actor_kind", "action", "changes", "at")


def record_for(data: dict) -> dict:
    """The supporter row that checked data (as `add_supporter` takes it) is written as, made
    when the file is checked and kept with the staged row: the columns but the id and the
    times, each left out when it holds its default (the insert fills those in, see `whole`;
    most of a record is defaults). An active supporter without a joining date joins on the
    day the file is checked."""
    record = {key: value for key, value in data.items()
              if key in _DEFAULTS and value is not None and value != _DEFAULTS[key]}
    view = SimpleNamespace(**{key: data.get(key, _DEFAULTS[key]) for key in _NAMED_BY})
    view.display_name = Supporter.display_name.fget(view)  # (what the keys read)
    if joined := joining_date(data.get("status", _DEFAULTS["status"]), data.get("joined_on")):
        record["joined_on"] = joined
    record["sort_key"] = sort_key_for(view)
    if key := email_key(view.email):
        record["email_key"] = key
    record["search_terms"] = search_text_for(view)
    return record


def whole(record: dict) -> dict:
    """A record made by `record_for` with every column (the defaults it left out)."""
    return {key: record.get(key, default) for key, default in _DEFAULTS.items()}


def _records(dialect: str):
    """The supporter columns of the records of the staged rows `ok` from line :first to :last
    of import :import_id, in the file's order (a column the record leaves out: its default):
    on SQLite taken from the JSON one by one, on PostgreSQL by json_populate_record (the JSON
    read once, each value as its column's type)."""
    Row = SupporterImportRow
    if dialect == "postgresql":
        record = func.json_populate_record(literal_column(f"NULL::{_TABLE.name}"), Row.data) \
            .table_valued(*_COLUMNS, name="record")
        # (a function in FROM may read the rows before it: PostgreSQL joins it to each)
        values, rows = [record.c[key] for key in _COLUMNS], Row.__table__.join(record, true())
    else:  # (dates come as the ISO text SQLite keeps them in; no record holds a time)
        values = [func.json_extract(Row.data, f'$."{key}"') for key in _COLUMNS]
        rows = Row.__table__
    columns = [value if _DEFAULTS[key] is None
               else func.coalesce(value, literal(_DEFAULTS[key], _TABLE.c[key].type))
               for key, value in zip(_COLUMNS, values, strict=True)]
    return select(*columns).select_from(rows).where(
        Row.import_id == bindparam("import_id"), Row.ok,
        Row.line.between(bindparam("first"), bindparam("last"))).order_by(Row.line)


@cache
def _statements(dialect: str):
    """(add, history): the statements that add the staged rows `ok` from line :first to :last
    of import :import_id, in order, as supporters (their ids returned), and their first
    history entries (of the supporters :first_id to :last_id); on PostgreSQL the first does
    both in one.
    Built once per database: the import, the lines, the time and who acts are parameters
    (building these statements costs more than running them)."""
    now = bindparam("now", type_=UTCDateTime)
    add = insert(_TABLE).from_select(
        (*_COLUMNS, *_TIMES), _records(dialect).add_columns(now, now)).returning(_TABLE.c.id)
    entry = (bindparam("staff_id", type_=Integer), bindparam("actor", type_=String),
             bindparam("actor_kind", type_=String), bindparam("action", type_=String),
             literal({}, JSON), now)
    history = insert(SupporterChange.__table__)
    if dialect == "postgresql":  # in one statement, the new ids kept by the database
        added = add.cte("added")
        return history.from_select(_HISTORY, select(added.c.id, *entry)).returning(literal(1)), None
    return add, history.from_select(_HISTORY, select(Supporter.id, *entry).where(
        Supporter.id.between(bindparam("first_id"), bindparam("last_id"))))


def add_staged(import_id: int, chunks: Iterable[tuple[int, int]], action: str, *, actor) -> int:
    """Add the supporters of a staged import's rows that are `ok` (their `data` made by
    `record_for`), with their first history entries, in the file's order, a chunk of lines
    (first, last) at a time; returns how many (the caller commits)."""
    dialect = db.session.get_bind().dialect.name
    add, history = _statements(dialect)
    staff_id, name, kind = actors.stamp(actor)
    params = {"import_id": import_id, "now": utcnow(), "staff_id": staff_id, "actor": name,
              "actor_kind": kind, "action": action}
    count = 0
    for first, last in chunks:
        ids = db.session.scalars(add, dict(params, first=first, last=last)).all()
        if history is not None and ids:
            # One INSERT on SQLite, which holds the write lock, numbers its rows one after
            # another from one more than the largest id in use.
            first_id, last_id = min(ids), max(ids)
            if last_id - first_id + 1 != len(ids):
                raise RuntimeError("the new supporters do not have consecutive ids")
            db.session.execute(history, dict(params, first_id=first_id, last_id=last_id))
        count += len(ids)
    if dialect == "postgresql":  # their search terms filed in the index, not left pending
        db.session.execute(_FILE_PENDING_TERMS)
    return count


# PostgreSQL lets only the index's owner (the account the migrations ran as, see
# docs/deploy.md) file its pending entries; another account leaves them to autovacuum.
_INDEX_CLASS = table("pg_class", column("oid"), column("relowner"))
_FILE_PENDING_TERMS = select(func.gin_clean_pending_list(_INDEX_CLASS.c.oid)).where(
    _INDEX_CLASS.c.oid == literal(SEARCH_INDEX_PG).cast(REGCLASS),
    func.pg_has_role(_INDEX_CLASS.c.relowner, "USAGE"))

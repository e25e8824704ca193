"""Column types and helpers shared by the domain models."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
from sqlalchemy import DateTime, String, TypeDecorator


def json_text(value) -> str:
    """The JSON columns' serializer (the engine's json_serializer): UTF-8 text as it reads,
    not \\u escapes (Japanese stays a third of the size), dates as ISO text, and made several
    times quicker than the json module (the import writes a record per row)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


json_value = orjson.loads  # the JSON columns' deserializer (json_deserializer)


def insert_unless_present(model, values: dict, keys: list[str]):
    """INSERT … ON CONFLICT (keys) DO NOTHING, on PostgreSQL and SQLite alike.

    Used where a row must be written at most once even when two processes try at the same
    time (a counter's row, a day's digest); add `.returning(…)` to learn whether it was written.
    """
    from app.extensions import db

    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (we store UTC, show Asia/Tokyo)."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no time zone, so without this a value read back would be naive.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def binary_string(length: int) -> String:
    """A string compared byte by byte on every database.

    Sort keys (kana) and search terms rely on code-point order, which SQLite gives by
    default and PostgreSQL only with the "C" collation.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def insert_rows(table, columns: tuple[str, ...], rows) -> None:
    """Write many rows (tuples, in the order of `columns`) in the current transaction, as
    fast as the database takes them: COPY on PostgreSQL, the driver's executemany on SQLite.

    Values go through the columns' types as an INSERT would take them (JSON, timestamps);
    column defaults are not applied, so give every column that needs a value.
    """
    from app.extensions import db

    rows = list(rows)
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    converted = [(n, convert) for n, name in enumerate(columns)
                 if (convert := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))]
    if converted:
        rows = (_convert(row, converted) for row in rows)
    names = ", ".join(columns)
    if dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    else:
        marks = ", ".join("?" * len(columns))
        connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
                                   list(rows))


def _convert(row: tuple, converted: list) -> tuple:
    """A row with the values of the columns that have a conversion converted (only those)."""
    row = list(row)
    for n, convert in converted:
        row[n] = convert(row[n])
    return tuple(row)


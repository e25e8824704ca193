"""Column types and helpers shared by the domain models."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, String, TypeDecorator


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

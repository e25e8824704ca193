"""Upgrades keep data (issue 14): every earlier schema, with rows in every table, upgrades to
the newest on both databases with those rows intact; the last migration also goes back down.

The rows are made up from each revision's own tables (reflected), so the test needs no
change when a migration is added: it walks whatever `migrations/versions` holds.
"""
from __future__ import annotations

import contextlib
from datetime import date, datetime, time, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from app.backup import known_revisions
from app.config import database_url
from app.extensions import db
from app.models import made_by_others
from app.supporters.models import is_search_index
from tests.conftest import make_database


def include_object(obj, name, type_, reflected, compare_to):
    """As migrations/env.py: tables no model describes are left out."""
    return not (type_ == "table" and made_by_others(name))


def test_migrations_build_the_schema_the_models_describe(request, tmp_path_factory, backend,
                                                          app_config):
    url = database_url(make_database(request, tmp_path_factory, backend))
    app = create_app(dict(app_config, SQLALCHEMY_DATABASE_URI=url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "include_object": include_object})
            diff = compare_metadata(context, db.metadata)
            tables = set(inspect(conn).get_table_names())
        assert diff == []
        assert {"supporter", "staff_user", "district", "audit_entry"} <= tables
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


# Columns a migration changes on purpose: 0010 stores who acted as a code; 0007 recomputes
# the derived sort key.
CHANGED_ON_PURPOSE = {("concern_event", "actor_kind"), ("supporter_change", "actor_kind"),
                      # 0007 recomputes derived search keys from the names (the key is derived)
                      ("supporter", "sort_key")}
# Tables of derived rows that a migration rebuilds from the data (0007: search terms).
DERIVED_TABLES = {"supporter_search_term"}


@contextlib.contextmanager
def app_on(app, url: str):
    other = create_app(dict(app.config, SQLALCHEMY_DATABASE_URI=url))
    with other.app_context():
        try:
            yield other
        finally:
            db.session.remove()
            db.engine.dispose()


def value_for(column: sa.Column, step: int, parents: dict[str, dict]) -> object:
    """A value this column accepts, different for each revision step."""
    for fk in column.foreign_keys:
        target = fk.column.table.name
        if target == column.table.name:
            return None if column.nullable else parents[target][fk.column.name]
        return parents[target][fk.column.name]
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.Integer):
        return 1000 + step if column.primary_key else 1
    if isinstance(kind, sa.DateTime):
        return datetime(2024, 4, 1, 9, 0, tzinfo=timezone.utc) + timedelta(days=step)
    if isinstance(kind, sa.Date):
        return date(2024, 4, 1) + timedelta(days=step)
    if isinstance(kind, sa.Time):
        return time(10, 0)
    if isinstance(kind, sa.JSON):
        return {"step": step}
    if isinstance(kind, (sa.String, sa.Text)):
        text = f"s{step:02d}{column.name}"
        length = getattr(kind, "length", None)
        return text[:length] if length else text
    raise AssertionError(f"no made-up value for {column.table.name}.{column.name} ({kind!r})")


def add_rows(conn, step: int) -> dict[str, dict]:
    """One row in every table of the current schema; returns them by table."""
    meta = sa.MetaData()
    meta.reflect(conn, only=lambda name, _meta: not is_search_index(name))
    rows: dict[str, dict] = {}
    for table in meta.sorted_tables:
        if table.name == "alembic_version":
            continue
        row = {c.name: value_for(c, step, rows) for c in table.columns}
        conn.execute(table.insert().values(**row))
        rows[table.name] = row
    return rows


def check_rows(conn, inserted: list[dict[str, dict]]) -> None:
    meta = sa.MetaData()
    meta.reflect(conn, only=lambda name, _meta: not is_search_index(name))
    for step, rows in enumerate(inserted):
        for name, row in rows.items():
            if name in DERIVED_TABLES:
                continue
            table = meta.tables.get(name)
            assert table is not None, f"table {name} (with data from step {step}) was dropped"
            key = [table.c[c.name] == row[c.name] for c in table.primary_key.columns]
            found = conn.execute(sa.select(table).where(*key)).mappings().first()
            assert found is not None, f"a row of {name} from step {step} is gone"
            for column, value in row.items():
                if column in found and (name, column) not in CHANGED_ON_PURPOSE:
                    stored = found[column]
                    if isinstance(stored, datetime) and stored.tzinfo is None:
                        stored = stored.replace(tzinfo=timezone.utc)
                    assert stored == value, f"{name}.{column} from step {step}: {value!r} → {stored!r}"


@pytest.fixture
def empty_url(request, tmp_path_factory, backend, app):
    return database_url(make_database(request, tmp_path_factory, backend))


def test_every_revision_upgrades_to_the_newest_with_its_data(app, empty_url, backend):
    revisions = known_revisions()
    assert revisions[0] == "0001" and len(revisions) >= 11
    inserted = []
    with app_on(app, empty_url):
        for step, revision in enumerate(revisions):
            upgrade(revision=revision)
            with db.engine.begin() as conn:
                check_rows(conn, inserted)
                inserted.append(add_rows(conn, step))
        with db.engine.connect() as conn:
            check_rows(conn, inserted)
            head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        assert head == revisions[-1]
        # The last migration goes down and up again, and nothing of the older data is lost.
        downgrade(revision=revisions[-2])
        with db.engine.connect() as conn:
            check_rows(conn, inserted[:-1])
        upgrade()
        with db.engine.connect() as conn:
            check_rows(conn, inserted[:-1])


def test_0017_and_0018_keep_the_terms_the_rules_make_and_find_the_same_supporters(app, empty_url):
    """A supporter stored before 0017 has a term per word and one for the e-mail's local part;
    after it, the terms are those the rules of 0017 make, and after 0018 those of today, in
    the database's search index: every way of finding them that used a dropped term still
    finds them. 0018 goes down again to the table, with today's terms."""
    from app.supporters.models import Supporter
    from app.supporters.search import search_terms_for, where_matches

    with app_on(app, empty_url):
        upgrade(revision="0016")
        old_terms = {"山田太郎", "田太郎", "太郎", "郎", "山田", "やまだたろう", "まだたろう",
                     "だたろう", "たろう", "ろう", "う", "やまだ", "0424611234", "1234",
                     "taro@example.jp", "taro", "example.jp"}
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO supporter (id, kind, name, kana, business_name, business_kana,"
                " contact_person, email, email_key, phone, postal_code, address, delivery,"
                " status, joined_via, sort_key, notes, can_help, consent_version, created_at,"
                " updated_at) VALUES (7, 'person', '山田 太郎', 'やまだ たろう', '', '', '',"
                " 'taro@example.jp', 'taro@example.jp', '042-461-1234', '', '', 'post',"
                " 'active', 'staff', 'やまた', '', '[]', '', :now, :now)"),
                {"now": datetime(2026, 1, 5, tzinfo=timezone.utc)})
            conn.execute(sa.text(
                "INSERT INTO supporter_search_term (term, supporter_id) VALUES (:t, 7)"),
                [{"t": t} for t in old_terms])
        upgrade(revision="0017")
        with db.engine.connect() as conn:
            kept = set(conn.execute(sa.text("SELECT term FROM supporter_search_term")).scalars())
        assert old_terms - kept == {"山田", "やまだ", "taro"}  # (the words, the local part)
        upgrade()  # 0018: in a column, in the database's own search index
        supporter = db.session.get(Supporter, 7)
        now_kept = set(supporter.search_terms.split())
        assert now_kept == search_terms_for(supporter) and {"4611234", "24611234"} <= now_kept
        for typed in ("山田", "やまだ", "ヤマダ", "taro", "たろう", "田", "1234", "example.jp",
                      "461-1234", "@example.jp"):
            found = db.session.scalars(where_matches(sa.select(Supporter.id), typed)).all()
            assert found == [7], typed
        db.session.remove()
        downgrade(revision="0017")  # and back: the table's rows made again from the column
        with db.engine.connect() as conn:
            assert set(conn.execute(sa.text("SELECT term FROM supporter_search_term"))
                       .scalars()) == now_kept
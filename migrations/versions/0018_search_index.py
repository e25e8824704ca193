"""search index: a supporter's search terms in one column, indexed by the database's own text index

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 19:00:00

The rows of supporter_search_term (one per term and supporter) become one column,
supporter.search_terms (the terms separated by spaces), indexed on SQLite by an FTS5 table
kept in step by triggers and on PostgreSQL by a GIN index of the terms as a tsvector. Every
supporter's terms are made again with the current rules (app.supporters.search), which add
the phone number without its area code (its last seven and eight digits) to those of 0017.
Going down makes the table's rows again from the column.
"""
import string

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

supporter = sa.table("supporter", sa.column("id", sa.Integer),
                     sa.column("search_terms", sa.Text))
named = sa.table(
    "supporter", sa.column("id", sa.Integer), sa.column("name", sa.String),
    sa.column("kana", sa.String), sa.column("business_name", sa.String),
    sa.column("business_kana", sa.String), sa.column("contact_person", sa.String),
    sa.column("email", sa.String), sa.column("phone", sa.String))
term = sa.table("supporter_search_term", sa.column("term", sa.String),
                sa.column("supporter_id", sa.Integer))
CHUNK = 1000

# As app.supporters.models writes them at this revision (a migration keeps its own copy).
TOKENIZER = "ascii tokenchars '" + string.punctuation.replace("'", "''") + "'"
SQLITE_INDEX = (
    "CREATE VIRTUAL TABLE supporter_fts USING fts5(search_terms, content='supporter', "
    "content_rowid='id', detail=none, columnsize=0, "
    f"tokenize='{TOKENIZER.replace(chr(39), chr(39) * 2)}')",
    "CREATE TRIGGER supporter_fts_insert AFTER INSERT ON supporter BEGIN "
    "INSERT INTO supporter_fts(rowid, search_terms) VALUES (new.id, new.search_terms); END",
    "CREATE TRIGGER supporter_fts_delete AFTER DELETE ON supporter BEGIN "
    "INSERT INTO supporter_fts(supporter_fts, rowid, search_terms) "
    "VALUES ('delete', old.id, old.search_terms); END",
    "CREATE TRIGGER supporter_fts_update AFTER UPDATE OF search_terms ON supporter BEGIN "
    "INSERT INTO supporter_fts(supporter_fts, rowid, search_terms) "
    "VALUES ('delete', old.id, old.search_terms); "
    "INSERT INTO supporter_fts(rowid, search_terms) VALUES (new.id, new.search_terms); END",
)
PG_INDEX = ("CREATE INDEX ix_supporter_search_terms ON supporter USING gin "
            "(array_to_tsvector(string_to_array(search_terms, ' ')))")


def _ids(conn, table, key):
    """The ids of `table` (by its column `key`), a chunk at a time, in order."""
    last = 0
    while True:
        ids = conn.execute(sa.select(sa.distinct(key)).where(key > last)
                           .order_by(key).limit(CHUNK)).scalars().all()
        if not ids:
            return
        yield ids
        last = ids[-1]


def upgrade():
    from app.supporters.search import search_text_for

    conn = op.get_bind()
    with op.batch_alter_table("supporter") as batch_op:
        batch_op.add_column(sa.Column("search_terms", sa.Text(), server_default="",
                                      nullable=False))
    for ids in _ids(conn, named, named.c.id):
        rows = conn.execute(sa.select(named).where(named.c.id.between(ids[0], ids[-1])))
        terms = [{"i": row.id, "t": search_text_for(row)} for row in rows]
        conn.execute(sa.update(supporter).where(supporter.c.id == sa.bindparam("i"))
                     .values(search_terms=sa.bindparam("t")), terms)
    op.drop_table("supporter_search_term")
    if conn.dialect.name == "postgresql":
        op.execute(PG_INDEX)
    else:
        for statement in SQLITE_INDEX:  # (as written: no parameters in it)
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("INSERT INTO supporter_fts(supporter_fts) VALUES ('rebuild')")


def downgrade():
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("DROP INDEX ix_supporter_search_terms")
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER supporter_fts_{trigger}")
        op.execute("DROP TABLE supporter_fts")
    op.create_table(
        "supporter_search_term",
        sa.Column("term", sa.String(length=254).with_variant(
            sa.String(length=254, collation="C"), "postgresql"), nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["supporter_id"], ["supporter.id"],
                                name=op.f("fk_supporter_search_term_supporter_id_supporter"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("term", "supporter_id", name=op.f("pk_supporter_search_term")))
    with op.batch_alter_table("supporter_search_term") as batch_op:
        batch_op.create_index(batch_op.f("ix_supporter_search_term_supporter_id"),
                              ["supporter_id"], unique=False)
    for ids in _ids(conn, supporter, supporter.c.id):
        rows = [{"term": word, "supporter_id": supporter_id}
                for supporter_id, text in conn.execute(
                    sa.select(supporter.c.id, supporter.c.search_terms)
                    .where(supporter.c.id.between(ids[0], ids[-1])))
                for word in set(text.split())]
        if rows:
            conn.execute(sa.insert(term), rows)
    with op.batch_alter_table("supporter") as batch_op:
        batch_op.drop_column("search_terms")

"""fewer search terms: a word or an e-mail's local part is no longer a term of its own

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 16:40:00

Data only. Each was the start of a suffix (or of the address) that is kept, so a prefix
search finds the same supporters without them; every supporter's terms are made again with
the current rules (app.supporters.search.search_terms_for), a thousand supporters at a time.
"""
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

supporter = sa.table(
    "supporter", sa.column("id", sa.Integer), sa.column("name", sa.String),
    sa.column("kana", sa.String), sa.column("business_name", sa.String),
    sa.column("business_kana", sa.String), sa.column("contact_person", sa.String),
    sa.column("email", sa.String), sa.column("phone", sa.String))
term = sa.table("supporter_search_term", sa.column("term", sa.String),
                sa.column("supporter_id", sa.Integer))
CHUNK = 1000


def upgrade():
    from app.supporters.search import search_terms_for

    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.select(supporter).where(supporter.c.id > last)
                            .order_by(supporter.c.id).limit(CHUNK)).mappings().all()
        if not rows:
            break
        last = rows[-1]["id"]
        wanted = {(t, row["id"]) for row in rows
                  for t in search_terms_for(SimpleNamespace(**row))}
        have = set(conn.execute(sa.select(term.c.term, term.c.supporter_id).where(
            term.c.supporter_id.between(rows[0]["id"], last))).tuples())
        gone = [{"t": t, "s": s} for t, s in have - wanted]
        if gone:
            conn.execute(sa.delete(term).where(term.c.term == sa.bindparam("t"),
                                               term.c.supporter_id == sa.bindparam("s")), gone)
        new = [{"term": t, "supporter_id": s} for t, s in wanted - have]
        if new:
            conn.execute(sa.insert(term), new)


def downgrade():
    pass  # the terms left out found no one the others do not; nothing to restore

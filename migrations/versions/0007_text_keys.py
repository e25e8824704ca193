"""text keys: dictionary (五十音) sort keys, variant-kanji search terms, 7-digit postal codes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

Data only: every supporter's sort key and search terms are computed again with the current
rules (app.text), and postal codes written as 〒188-0012 or 188-0012 are stored as 7 digits.
Names and addresses are left exactly as they are.
"""
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

supporter = sa.table(
    "supporter", sa.column("id", sa.Integer), sa.column("kind", sa.String),
    sa.column("name", sa.String), sa.column("kana", sa.String),
    sa.column("business_name", sa.String), sa.column("business_kana", sa.String),
    sa.column("contact_person", sa.String), sa.column("email", sa.String),
    sa.column("phone", sa.String), sa.column("postal_code", sa.String),
    sa.column("sort_key", sa.String))
term = sa.table("supporter_search_term", sa.column("term", sa.String),
                sa.column("supporter_id", sa.Integer))


def upgrade():
    from app.supporters.services import search_terms_for
    from app.text import postal_digits, sort_key

    conn = op.get_bind()
    rows = conn.execute(sa.select(supporter)).mappings().all()
    for row in rows:
        s = SimpleNamespace(**row)
        reading = s.business_kana if s.kind == "business" else s.kana
        display = (s.business_name or s.name) if s.kind == "business" else s.name
        values = {"sort_key": sort_key(reading or display)[:200]}
        code = postal_digits(s.postal_code)
        if code:
            values["postal_code"] = code
        conn.execute(sa.update(supporter).where(supporter.c.id == s.id).values(**values))
        terms = search_terms_for(s)
        conn.execute(sa.delete(term).where(term.c.supporter_id == s.id))
        if terms:
            conn.execute(sa.insert(term), [{"term": t, "supporter_id": s.id} for t in terms])


def downgrade():
    pass  # the old keys were only a worse order; nothing to restore

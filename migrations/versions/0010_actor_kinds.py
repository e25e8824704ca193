"""Codes, not words: who acted (actor_kind), how a concern came in; English place names.

Supporter history and the concern timeline stored translated text ("本人", "報告者",
"ウェブで受け付けました。", "担当者なし") in the language of whoever acted. They now store
codes; templates put them into the reader's language (app/actors.py, the timeline).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

SELF = ("本人", "Themselves")
REPORTER = ("報告者", "Reporter")
SYSTEM = ("system", "demo")
NOBODY = ("担当者なし", "Nobody")


def upgrade():
    for table in ("concern_event", "supporter_change"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('actor_kind', sa.String(length=10), nullable=False,
                                          server_default="staff"))
    # Place names for readers of English (geography file: name_en); empty: the name itself.
    for table in ("station", "area", "district"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('name_en', sa.String(length=100), nullable=False,
                                          server_default=""))
    for table, others in (("supporter_change", SELF), ("concern_event", REPORTER)):
        kind = "self" if table == "supporter_change" else "reporter"
        rows = sa.table(table, sa.column("actor", sa.String), sa.column("actor_kind", sa.String),
                        sa.column("staff_id", sa.Integer))
        op.execute(rows.update().where(rows.c.staff_id.is_(None), rows.c.actor.in_(others))
                   .values(actor="", actor_kind=kind))
        op.execute(rows.update().where(rows.c.staff_id.is_(None), rows.c.actor.in_(SYSTEM))
                   .values(actor="", actor_kind="system"))
        op.execute(rows.update().where(rows.c.staff_id.is_(None), rows.c.actor == "")
                   .values(actor_kind="system"))
    events = sa.table("concern_event", sa.column("concern_id", sa.Integer),
                      sa.column("kind", sa.String), sa.column("body", sa.Text))
    concerns = sa.table("concern", sa.column("id", sa.Integer), sa.column("channel", sa.String))
    # "ウェブで受け付けました。" → "web": the channel's code, from the concern itself.
    op.execute(events.update().where(events.c.kind == "created").values(
        body=sa.select(concerns.c.channel).where(concerns.c.id == events.c.concern_id)
        .scalar_subquery()))
    op.execute(events.update().where(events.c.kind == "assigned", events.c.body.in_(NOBODY))
               .values(body=""))


def downgrade():
    for table in ("station", "area", "district"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('name_en')
    for table in ("supporter_change", "concern_event"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('actor_kind')

"""The deliveries' sent_at index: today's count against the daily cap reads today's rows only.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 07:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_delivery_sent_at', 'delivery', ['sent_at'], unique=False)


def downgrade():
    op.drop_index('ix_delivery_sent_at', table_name='delivery')

"""The open concerns' own index: the dashboard counts them without reading the closed ones.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 20:25:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# As the model words it (app.concerns.models._OPEN_SQL), written out: a migration stays as
# it was written even if the model changes later.
OPEN = "status IN ('received', 'acknowledged', 'in_progress', 'connected')"


def upgrade():
    op.create_index('ix_concern_open', 'concern', ['area_id', 'assignee_id', 'created_at'],
                    unique=False, postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade():
    op.drop_index('ix_concern_open', table_name='concern')

"""Import at speed: a staged import keeps its checked rows, not the file's text.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 00:34:55.387311

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('supporter_import_row',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email_key', sa.String(length=254), nullable=False),
    sa.Column('name_key', sa.String(length=300), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['supporter_import.id'], name=op.f('fk_supporter_import_row_import_id_supporter_import'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supporter_import_row'))
    )
    with op.batch_alter_table('supporter_import_row', schema=None) as batch_op:
        batch_op.create_index('ix_supporter_import_row_ok', ['import_id', 'ok', 'line'], unique=False)

    # A file staged before this version keeps its text; it is checked into rows when it is
    # next opened (app.supporters.csvio.get_pending).
    with op.batch_alter_table('supporter_import', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.alter_column('content', existing_type=sa.Text(), server_default='')


def downgrade():
    with op.batch_alter_table('supporter_import', schema=None) as batch_op:
        batch_op.alter_column('content', existing_type=sa.Text(), server_default=None)
        batch_op.drop_column('summary')

    with op.batch_alter_table('supporter_import_row', schema=None) as batch_op:
        batch_op.drop_index('ix_supporter_import_row_ok')

    op.drop_table('supporter_import_row')

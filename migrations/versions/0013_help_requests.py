"""Who can help nearby: what supporters can do and when, and requests for help (協力依頼).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 22:39:45.683929

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('help_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('concern_id', sa.Integer(), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('need', sa.String(length=20), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('staff_name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['concern_id'], ['concern.id'], name=op.f('fk_help_request_concern_id_concern'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name=op.f('fk_help_request_staff_id_staff_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_help_request_supporter_id_supporter'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_help_request'))
    )
    with op.batch_alter_table('help_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_help_request_concern_id'), ['concern_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_help_request_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_help_request_supporter_id'), ['supporter_id'], unique=False)

    with op.batch_alter_table('supporter', schema=None) as batch_op:
        batch_op.add_column(sa.Column('can_help', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('help_times', sa.String(length=200), nullable=False,
                                      server_default=''))




def downgrade():

    with op.batch_alter_table('supporter', schema=None) as batch_op:
        batch_op.drop_column('help_times')
        batch_op.drop_column('can_help')

    with op.batch_alter_table('help_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_help_request_supporter_id'))
        batch_op.drop_index(batch_op.f('ix_help_request_status'))
        batch_op.drop_index(batch_op.f('ix_help_request_concern_id'))

    op.drop_table('help_request')


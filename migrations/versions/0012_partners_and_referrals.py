"""Partner agencies (つなぎ先), the areas and districts they serve, and referrals (つなぎ).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 22:24:48.174595

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('agency',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kana', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('fax', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('postal_code', sa.String(length=10), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('hours', sa.String(length=300), nullable=False),
    sa.Column('contact_person', sa.String(length=100), nullable=False),
    sa.Column('category_codes', sa.JSON(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_key', sa.String(length=400), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agency'))
    )
    with op.batch_alter_table('agency', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agency_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_agency_sort_key'), ['sort_key'], unique=False)

    op.create_table('agency_area',
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agency.id'], name=op.f('fk_agency_area_agency_id_agency'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_agency_area_area_id_area'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agency_id', 'area_id', name=op.f('pk_agency_area'))
    )
    op.create_table('agency_district',
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agency.id'], name=op.f('fk_agency_district_agency_id_agency'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['district_id'], ['district.id'], name=op.f('fk_agency_district_district_id_district'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agency_id', 'district_id', name=op.f('pk_agency_district'))
    )
    op.create_table('referral',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('concern_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('referred_on', sa.Date(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('staff_name', sa.String(length=100), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('consent', sa.String(length=20), nullable=False),
    sa.Column('passed_on', sa.Text(), nullable=False),
    sa.Column('follow_up_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('accepted_on', sa.Date(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agency.id'], name=op.f('fk_referral_agency_id_agency')),
    sa.ForeignKeyConstraint(['concern_id'], ['concern.id'], name=op.f('fk_referral_concern_id_concern'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name=op.f('fk_referral_staff_id_staff_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral'))
    )
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_agency_id'), ['agency_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_concern_id'), ['concern_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_follow_up_on'), ['follow_up_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_status'), ['status'], unique=False)



def downgrade():
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_status'))
        batch_op.drop_index(batch_op.f('ix_referral_follow_up_on'))
        batch_op.drop_index(batch_op.f('ix_referral_concern_id'))
        batch_op.drop_index(batch_op.f('ix_referral_agency_id'))

    op.drop_table('referral')
    op.drop_table('agency_district')
    op.drop_table('agency_area')
    with op.batch_alter_table('agency', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agency_sort_key'))
        batch_op.drop_index(batch_op.f('ix_agency_kind'))

    op.drop_table('agency')

"""import key indexes: the rows of a staged import that repeat an earlier row, found in index order

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 19:30:00

The dry run groups a file's rows by e-mail and by name and phone to find those that repeat
an earlier one. Without an index the database sorts every row of the file to do it, in
memory that grows with the file; with these it reads them in order.
"""
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("supporter_import_row") as batch_op:
        batch_op.create_index("ix_supporter_import_row_email_key",
                              ["import_id", "email_key", "line"], unique=False)
        batch_op.create_index("ix_supporter_import_row_name_key",
                              ["import_id", "name_key", "line"], unique=False)


def downgrade():
    with op.batch_alter_table("supporter_import_row") as batch_op:
        batch_op.drop_index("ix_supporter_import_row_name_key")
        batch_op.drop_index("ix_supporter_import_row_email_key")

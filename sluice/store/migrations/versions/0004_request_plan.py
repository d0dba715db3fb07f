"""The plan of a request (its kind and its delivery), decided once when it is accepted.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: a request accepted before this revision has its plan worked out from its body when it runs.
    with op.batch_alter_table("requests") as table:
        table.add_column(sa.Column("plan", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("requests") as table:
        table.drop_column("plan")

"""Usage, cost and budgets: per-attempt usage and cost, the key and cost of each request, budgets and limits.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


LIMITS = ("budget_usd", "budget_period", "rpm", "tpm")


def _limit_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("budget_usd", sa.Float),
        sa.Column("budget_period", sa.String(16)),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
    ]


def upgrade() -> None:
    for name in ("projects", "api_keys"):
        with op.batch_alter_table(name) as table:
            for column in _limit_columns():
                table.add_column(column)
    with op.batch_alter_table("attempts") as table:
        table.add_column(sa.Column("cache_read_tokens", sa.Integer))
        table.add_column(sa.Column("cache_write_tokens", sa.Integer))
        table.add_column(sa.Column("reasoning_tokens", sa.Integer))
        table.add_column(sa.Column("usage_estimated", sa.Boolean))
        table.add_column(sa.Column("cost_usd", sa.Float))
        table.add_column(sa.Column("price_source", sa.String(32)))
    # Requests accepted before this revision have no key (spend by key leaves them out) and no cost.
    with op.batch_alter_table("requests") as table:
        table.add_column(sa.Column("key_id", sa.String(64)))
        table.add_column(sa.Column("cost_usd", sa.Float))
        table.add_column(sa.Column("reservation", sa.JSON))
    op.create_index("ix_requests_key_created", "requests", ["key_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_requests_key_created", "requests")
    with op.batch_alter_table("requests") as table:
        table.drop_column("reservation")
        table.drop_column("cost_usd")
        table.drop_column("key_id")
    with op.batch_alter_table("attempts") as table:
        for name in ("price_source", "cost_usd", "usage_estimated", "reasoning_tokens", "cache_write_tokens"):
            table.drop_column(name)
        table.drop_column("cache_read_tokens")
    for name in ("api_keys", "projects"):
        with op.batch_alter_table(name) as table:
            for column in LIMITS:
                table.drop_column(column)

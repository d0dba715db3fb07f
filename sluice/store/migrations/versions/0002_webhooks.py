"""Webhook secrets, settings, deliveries and attempts; callback waits.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp),
    )
    op.create_index("ix_webhook_secrets_project_id", "webhook_secrets", ["project_id"])
    op.create_table(
        "webhook_settings",
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("allow_private_urls", sa.Boolean, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", Timestamp),
        sa.Column("locked_until", Timestamp),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp),
    )
    op.create_index("ix_webhook_deliveries_request_id", "webhook_deliveries", ["request_id"])
    op.create_index("ix_webhook_deliveries_status_next", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_project_created", "webhook_deliveries", ["project_id", "created_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), sa.ForeignKey("webhook_deliveries.id"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("latency_ms", sa.Float),
        sa.Column("response_excerpt", sa.Text),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])
    op.create_table(
        "callback_waits",
        sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id"), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("on_timeout", sa.String(16), nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("result", sa.JSON),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("resolved_at", Timestamp),
    )
    op.create_index("ix_callback_waits_state_expires", "callback_waits", ["state", "expires_at"])


def downgrade() -> None:
    op.drop_table("callback_waits")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_settings")
    op.drop_table("webhook_secrets")

"""Table definitions (SQLAlchemy Core). Alembic migrations in `migrations/` create and evolve them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
Timestamp = sa.DateTime(timezone=True)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # budget and limits (migration 0005; `sluice.spend.limits`)
    sa.Column("budget_usd", sa.Float),
    sa.Column("budget_period", sa.String(16)),
    sa.Column("rpm", sa.Integer),
    sa.Column("tpm", sa.Integer),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("key_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp),
    sa.Column("revoked_at", Timestamp),
    # budget and limits (migration 0005; `sluice.spend.limits`)
    sa.Column("budget_usd", sa.Float),
    sa.Column("budget_period", sa.String(16)),
    sa.Column("rpm", sa.Integer),
    sa.Column("tpm", sa.Integer),
)

workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("project_id", "name", name="uq_workflows_project_name"),
)

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("workflow", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("plan", sa.JSON),  # sluice.lifecycle.plan.Plan.to_record() (migration 0004)
    sa.Column("metadata", sa.JSON),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("body_hash", sa.String(64)),
    sa.Column("data", sa.JSON),
    sa.Column("error", sa.JSON),
    sa.Column("meta", sa.JSON),
    sa.Column("run_count", sa.Integer, nullable=False, default=0),
    sa.Column("seq_reserved", sa.Integer, nullable=False),
    sa.Column("terminal_seq", sa.Integer),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("started_at", Timestamp),
    sa.Column("first_token_at", Timestamp),
    sa.Column("completed_at", Timestamp),
    # spend (migration 0005): the key that submitted it, its cost once finished, the budget it reserved
    sa.Column("key_id", sa.String(64)),
    sa.Column("cost_usd", sa.Float),
    sa.Column("reservation", sa.JSON),
    sa.UniqueConstraint("project_id", "idempotency_key", name="uq_requests_idempotency"),
    sa.Index("ix_requests_status", "status"),
    sa.Index("ix_requests_project_created", "project_id", "created_at"),
    sa.Index("ix_requests_key_created", "key_id", "created_at"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id"), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(200), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("ttft_ms", sa.Float),
    sa.Column("duration_ms", sa.Float),
    sa.Column("tokens_in", sa.Integer),
    sa.Column("tokens_out", sa.Integer),
    sa.Column("started_at", Timestamp, nullable=False),
    # usage and cost (migration 0005)
    sa.Column("cache_read_tokens", sa.Integer),
    sa.Column("cache_write_tokens", sa.Integer),
    sa.Column("reasoning_tokens", sa.Integer),
    sa.Column("usage_estimated", sa.Boolean),
    sa.Column("cost_usd", sa.Float),
    sa.Column("price_source", sa.String(32)),
)

# Webhooks and callbacks (migration 0002) ----------------------------------------------------------------------------

webhook_secrets = sa.Table(
    "webhook_secrets",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp),
)

webhook_settings = sa.Table(
    "webhook_settings",
    metadata,
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("allow_private_urls", sa.Boolean, nullable=False, default=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id"), nullable=False, index=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", Timestamp),
    sa.Column("locked_until", Timestamp),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_project_created", "project_id", "created_at"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(64), sa.ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("latency_ms", sa.Float),
    sa.Column("response_excerpt", sa.Text),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
)

callback_waits = sa.Table(
    "callback_waits",
    metadata,
    sa.Column("request_id", sa.String(64), sa.ForeignKey("requests.id"), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("on_timeout", sa.String(16), nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("result", sa.JSON),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("resolved_at", Timestamp),
    sa.Index("ix_callback_waits_state_expires", "state", "expires_at"),
)

# Console and admin API (migration 0003) -----------------------------------------------------------------------------

providers = sa.Table(
    "providers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("options", sa.JSON, nullable=False),  # non-secret settings (base_url, pace_ms, …)
    sa.Column("credentials", sa.Text),  # Fernet token of a JSON object (api_key, …), key derived from SLUICE_SECRET_KEY
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

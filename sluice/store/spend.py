"""The store's side of spend: the durable copy of what keys and projects spent (their requests' costs), their
limits, and the breakdowns of the spend page (per day, workflow, model, key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.store.schema import api_keys, attempts, projects, requests

LIMIT_COLUMNS = ("budget_usd", "budget_period", "rpm", "tpm")


class SpendStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def spent_usd(self, scope: str, start: datetime | None, end: datetime | None) -> float:
        """What the requests of `scope` (`key:<id>` or `project:<id>`) created in [start, end) cost: the spend a
        budget's state is seeded from when the broker does not hold it."""
        kind, _, ident = scope.partition(":")
        column = requests.c.key_id if kind == "key" else requests.c.project_id
        query = sa.select(sa.func.coalesce(sa.func.sum(requests.c.cost_usd), 0.0)).where(column == ident)
        if start is not None:
            query = query.where(requests.c.created_at >= start)
        if end is not None:
            query = query.where(requests.c.created_at < end)
        async with self.engine.connect() as conn:
            return float(await conn.scalar(query) or 0.0)

    async def project_limits(self, project_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*[projects.c[name] for name in LIMIT_COLUMNS]).where(projects.c.id == project_id)
                )
            ).first()
        return dict(row._mapping) if row else None

    async def set_limits(self, kind: str, ident: str, project_id: str | None, limits: dict[str, Any]) -> bool:
        """Set the limits of a key (`kind` "key", within `project_id`) or a project; False if there is none."""
        table = api_keys if kind == "key" else projects
        query = table.update().where(table.c.id == ident)
        if kind == "key":
            query = query.where(api_keys.c.project_id == project_id)
        async with self.engine.begin() as conn:
            result = await conn.execute(query.values(**{name: limits.get(name) for name in LIMIT_COLUMNS}))
        return result.rowcount > 0

    async def breakdown(self, project_id: str | None, since: datetime, by: str) -> list[dict[str, Any]]:
        """Cost, tokens and requests since `since`, grouped `by` day, workflow, model (the attempts' provider/model)
        or key; `project_id` None: every project."""
        if by == "model":
            label = (
                sa.func.concat(attempts.c.provider, "/", attempts.c.model)
                if self._pg
                else (attempts.c.provider + "/" + attempts.c.model)
            )
            query = (
                sa.select(
                    label.label("label"),
                    sa.func.coalesce(sa.func.sum(attempts.c.cost_usd), 0.0).label("cost_usd"),
                    sa.func.coalesce(sa.func.sum(attempts.c.tokens_in), 0).label("input_tokens"),
                    sa.func.coalesce(sa.func.sum(attempts.c.tokens_out), 0).label("output_tokens"),
                    sa.func.count().label("attempts"),
                )
                .join(requests, requests.c.id == attempts.c.request_id)
                .where(requests.c.created_at >= since)
                .group_by(label)
            )
        else:
            if by == "day":
                label = (
                    sa.func.to_char(sa.func.timezone("UTC", requests.c.created_at), "YYYY-MM-DD")
                    if self._pg
                    else sa.func.strftime("%Y-%m-%d", requests.c.created_at)
                )
            else:
                label = {"workflow": requests.c.workflow, "key": requests.c.key_id}[by]
            query = (
                sa.select(
                    label.label("label"),
                    sa.func.coalesce(sa.func.sum(requests.c.cost_usd), 0.0).label("cost_usd"),
                    sa.func.count().label("requests"),
                )
                .where(requests.c.created_at >= since)
                .group_by(label)
            )
        if project_id is not None:
            query = query.where(requests.c.project_id == project_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(sa.text("label")))).all()
        return [dict(row._mapping) for row in rows]

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

"""The admin API's reads and writes: API key listing and revocation, stored workflows and providers, request log
search and the rows the dashboard's charts are computed from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.store.schema import api_keys, attempts, projects, providers, requests, workflows
from sluice.store.store import ApiKeyRecord, RequestRecord, as_utc, now

MAX_STATS_ROWS = 50_000  # a dashboard hour on a busy gateway; beyond that the charts show a sample


class NameTaken(Exception):
    """Another stored record already has this name."""


@dataclass(frozen=True)
class StoredWorkflow:
    id: str
    project_id: str
    name: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredProvider:
    id: str
    project_id: str
    name: str
    type: str
    options: dict[str, Any]
    credentials: str | None  # the encrypted token; decrypted only to build the catalog or test a connection
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RequestFilter:
    project_id: str | None = None  # None: every project (the master key's view)
    workflow: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    metadata_key: str | None = None
    metadata_value: str | None = None
    before: datetime | None = None  # cursor: only rows created before this
    limit: int = 50


def _timestamps(values: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        values[name] = as_utc(values[name])
    return values


class AdminStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # projects -----------------------------------------------------------------------------------------------------

    async def list_projects(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """Every project (or the one `project_id`), oldest first, with its limits."""
        query = sa.select(projects).order_by(projects.c.created_at)
        if project_id is not None:
            query = query.where(projects.c.id == project_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_timestamps(dict(row._mapping), "created_at") for row in rows]

    async def create_project(self, name: str, limits: dict[str, Any]) -> str:
        """A new project (NameTaken if the name is used); its id."""
        project_id = f"proj_{uuid.uuid4().hex[:16]}"
        try:
            async with self.engine.begin() as conn:
                await conn.execute(projects.insert().values(id=project_id, name=name, created_at=now(), **limits))
        except IntegrityError as exc:
            raise NameTaken(name) from exc
        return project_id

    # API keys -----------------------------------------------------------------------------------------------------

    async def list_api_keys(self, project_id: str) -> list[ApiKeyRecord]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(api_keys)
                    .where(api_keys.c.project_id == project_id)
                    .order_by(api_keys.c.created_at.desc())
                )
            ).all()
        return [
            ApiKeyRecord(
                **_timestamps(
                    {k: v for k, v in row._mapping.items() if k != "key_hash"},
                    "created_at",
                    "last_used_at",
                    "revoked_at",
                )
            )
            for row in rows
        ]

    async def revoke_api_key(self, project_id: str, key_id: str) -> bool:
        """Revoke a key (kept for the audit trail); False if the project has no such unrevoked key."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(
                    api_keys.c.id == key_id,
                    api_keys.c.project_id == project_id,
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=now())
            )
        return result.rowcount > 0

    # stored workflows ---------------------------------------------------------------------------------------------

    async def list_workflows(self, project_id: str | None = None) -> list[StoredWorkflow]:
        """The stored workflows of `project_id` (None: of every project)."""
        query = sa.select(workflows).order_by(workflows.c.name)
        if project_id is not None:
            query = query.where(workflows.c.project_id == project_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [StoredWorkflow(**_timestamps(dict(row._mapping), "created_at", "updated_at")) for row in rows]

    async def get_workflow(self, project_id: str, name: str) -> StoredWorkflow | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(workflows).where(workflows.c.project_id == project_id, workflows.c.name == name)
                )
            ).first()
        return StoredWorkflow(**_timestamps(dict(row._mapping), "created_at", "updated_at")) if row else None

    async def save_workflow(self, project_id: str, name: str, definition: dict[str, Any], *, create: bool) -> None:
        """Insert (create=True; NameTaken if it exists) or replace the definition of an existing workflow."""
        moment = now()
        async with self.engine.begin() as conn:
            if create:
                taken = await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(workflows)
                    .where(workflows.c.project_id == project_id, workflows.c.name == name)
                )
                if taken:
                    raise NameTaken(name)
                try:
                    await conn.execute(
                        workflows.insert().values(
                            id=f"wf_{uuid.uuid4().hex[:16]}",
                            project_id=project_id,
                            name=name,
                            definition=definition,
                            created_at=moment,
                            updated_at=moment,
                        )
                    )
                except IntegrityError as exc:
                    raise NameTaken(name) from exc
            else:
                await conn.execute(
                    workflows.update()
                    .where(workflows.c.project_id == project_id, workflows.c.name == name)
                    .values(definition=definition, updated_at=moment)
                )

    async def delete_workflow(self, project_id: str, name: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                workflows.delete().where(workflows.c.project_id == project_id, workflows.c.name == name)
            )
        return result.rowcount > 0

    # stored providers ---------------------------------------------------------------------------------------------

    async def list_providers(self, project_id: str | None = None) -> list[StoredProvider]:
        """The stored providers of `project_id` (None: of every project)."""
        query = sa.select(providers).order_by(providers.c.name)
        if project_id is not None:
            query = query.where(providers.c.project_id == project_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [StoredProvider(**_timestamps(dict(row._mapping), "created_at", "updated_at")) for row in rows]

    async def get_provider(self, project_id: str, name: str) -> StoredProvider | None:
        """The project's stored provider `name` (another project's is not found: names are unique across the
        deployment, but each provider is its project's)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(providers).where(providers.c.project_id == project_id, providers.c.name == name)
                )
            ).first()
        return StoredProvider(**_timestamps(dict(row._mapping), "created_at", "updated_at")) if row else None

    async def save_provider(
        self, project_id: str, name: str, type_: str, options: dict[str, Any], credentials: str | None, *, create: bool
    ) -> None:
        moment = now()
        values = {"type": type_, "options": options, "credentials": credentials, "updated_at": moment}
        async with self.engine.begin() as conn:
            if create:
                try:
                    await conn.execute(
                        providers.insert().values(
                            id=f"prov_{uuid.uuid4().hex[:16]}",
                            project_id=project_id,
                            name=name,
                            created_at=moment,
                            **values,
                        )
                    )
                except IntegrityError as exc:
                    raise NameTaken(name) from exc
            else:
                await conn.execute(
                    providers.update()
                    .where(providers.c.project_id == project_id, providers.c.name == name)
                    .values(**values)
                )

    async def delete_provider(self, project_id: str, name: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                providers.delete().where(providers.c.project_id == project_id, providers.c.name == name)
            )
        return result.rowcount > 0

    async def catalog_version(self) -> tuple[Any, ...]:
        """Changes whenever a stored workflow or provider is added, edited or removed (instances poll it)."""
        async with self.engine.connect() as conn:
            wf = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.max(workflows.c.updated_at)).select_from(workflows)
                )
            ).first()
            pv = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.max(providers.c.updated_at)).select_from(providers)
                )
            ).first()
        return (*tuple(wf or ()), *tuple(pv or ()))

    # request log --------------------------------------------------------------------------------------------------

    async def search_requests(self, where: RequestFilter) -> list[RequestRecord]:
        query = sa.select(requests)
        if where.project_id is not None:
            query = query.where(requests.c.project_id == where.project_id)
        if where.workflow:
            query = query.where(requests.c.workflow == where.workflow)
        if where.status:
            query = query.where(requests.c.status == where.status)
        if where.since:
            query = query.where(requests.c.created_at >= where.since)
        if where.until:
            query = query.where(requests.c.created_at < where.until)
        if where.before:
            query = query.where(requests.c.created_at < where.before)
        if where.metadata_key:
            query = query.where(
                _metadata_matches(where.metadata_key, where.metadata_value, typed=self.engine.dialect.name == "sqlite")
            )
        query = query.order_by(requests.c.created_at.desc()).limit(where.limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [RequestRecord.from_row(row) for row in rows]

    # dashboard ----------------------------------------------------------------------------------------------------

    async def request_timings(self, project_id: str | None, since: datetime) -> list[dict[str, Any]]:
        query = sa.select(
            requests.c.created_at,
            requests.c.status,
            requests.c.started_at,
            requests.c.first_token_at,
            requests.c.completed_at,
        ).where(requests.c.created_at >= since)
        if project_id is not None:
            query = query.where(requests.c.project_id == project_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(requests.c.created_at.desc()).limit(MAX_STATS_ROWS))).all()
        return [
            _timestamps(dict(row._mapping), "created_at", "started_at", "first_token_at", "completed_at")
            for row in rows
        ]

    async def attempt_rows(self, project_id: str | None, since: datetime) -> list[dict[str, Any]]:
        query = (
            sa.select(
                attempts.c.started_at, attempts.c.attempt, attempts.c.provider, attempts.c.model, attempts.c.status
            )
            .join(requests, requests.c.id == attempts.c.request_id)
            .where(attempts.c.started_at >= since)
        )
        if project_id is not None:
            query = query.where(requests.c.project_id == project_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(attempts.c.started_at.desc()).limit(MAX_STATS_ROWS))).all()
        return [_timestamps(dict(row._mapping), "started_at") for row in rows]


def _metadata_matches(key: str, value: str | None, *, typed: bool) -> sa.ColumnElement[bool]:
    """`metadata[key] == value` as text. PostgreSQL's `->>` renders numbers and booleans as text, so that is enough
    there (and casting could fail on other rows); SQLite's json_extract keeps them typed (`typed`), so a numeric or
    boolean value is compared as such too."""
    field = requests.c.metadata[key]
    if value is None:
        return field.as_string().is_not(None)
    conditions = [field.as_string() == value]
    if not typed:
        return conditions[0]
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        conditions.append(field.as_float() == number)
    if value in ("true", "false"):
        conditions.append(field.as_boolean() == (value == "true"))
    return sa.or_(*conditions)

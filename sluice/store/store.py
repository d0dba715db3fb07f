"""The store: every durable read and write the gateway makes, as plain async methods over SQLAlchemy Core."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluice.lifecycle.states import RUNNING, TERMINAL, UNFINISHED
from sluice.store.schema import api_keys, attempts, projects, requests, webhook_deliveries

if TYPE_CHECKING:
    from sluice.engine.ports import AttemptRecord
    from sluice.lifecycle.outcome import Outcome

DEFAULT_PROJECT = "default"
KEY_PREFIX = "sk_sluice_"


def now() -> datetime:
    return datetime.now(UTC)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every timestamp we write is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def utc_values(row: sa.Row[Any], *timestamps: str) -> dict[str, Any]:
    """A row as a dict, with the named timestamp columns made timezone-aware (UTC)."""
    values = dict(row._mapping)
    for name in timestamps:
        values[name] = as_utc(values[name])
    return values


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    project_id: str
    name: str
    prefix: str
    is_admin: bool
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    budget_usd: float | None = None
    budget_period: str | None = None
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: str
    project_id: str
    workflow: str
    status: str
    mode: str
    body: dict[str, Any]
    metadata: dict[str, Any] | None
    idempotency_key: str | None
    body_hash: str | None
    data: Any
    error: dict[str, Any] | None
    meta: dict[str, Any] | None
    run_count: int
    seq_reserved: int
    terminal_seq: int | None
    created_at: datetime
    started_at: datetime | None
    first_token_at: datetime | None
    completed_at: datetime | None
    plan: dict[str, Any] | None = None  # `sluice.lifecycle.plan.Plan.to_record()`; None if accepted before 0004
    key_id: str | None = None  # the API key that submitted it (None: accepted before 0005)
    cost_usd: float | None = None  # what its attempts cost, once it has finished
    reservation: dict[str, Any] | None = None  # the budget it holds while it runs (`sluice.spend.limits`)

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> RequestRecord:
        return cls(**utc_values(row, "created_at", "started_at", "first_token_at", "completed_at"))

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer at a time and parks the others in its busy handler, which sleeps in steps of up to
        # 100 ms: under load that, not the writes, was the latency. Writers queue here instead and go in turn.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (committed on exit); on SQLite, one at a time per process."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    async def aclose(self) -> None:
        await self.engine.dispose()

    # projects and keys -------------------------------------------------------------------------------------------

    async def ensure_project(self, name: str = DEFAULT_PROJECT) -> str:
        async with self.writing() as conn:
            found = await conn.scalar(sa.select(projects.c.id).where(projects.c.name == name))
            if found:
                return found
            project_id = f"proj_{uuid.uuid4().hex[:16]}"
            try:
                await conn.execute(projects.insert().values(id=project_id, name=name, created_at=now()))
            except IntegrityError:
                pass
        async with self.engine.connect() as conn:
            existing = await conn.scalar(sa.select(projects.c.id).where(projects.c.name == name))
        return str(existing)

    async def create_api_key(
        self, project_id: str, name: str, *, admin: bool = False, limits: dict[str, Any] | None = None
    ) -> tuple[str, ApiKeyRecord]:
        """A new key, with its budget and per-minute `limits` (`sluice.spend.limits`): the plaintext is returned once
        and only its SHA-256 is stored."""
        limits = {name: value for name, value in (limits or {}).items() if value is not None}
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            id=f"key_{uuid.uuid4().hex[:16]}",
            project_id=project_id,
            name=name,
            prefix=plaintext[: len(KEY_PREFIX) + 6],
            is_admin=admin,
            created_at=now(),
            **limits,
        )
        async with self.writing() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=record.id,
                    project_id=project_id,
                    name=name,
                    prefix=record.prefix,
                    key_hash=hash_key(plaintext),
                    is_admin=admin,
                    created_at=record.created_at,
                    **limits,
                )
            )
        return plaintext, record

    async def find_api_key(self, plaintext: str) -> ApiKeyRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(api_keys).where(
                        api_keys.c.key_hash == hash_key(plaintext), api_keys.c.revoked_at.is_(None)
                    )
                )
            ).first()
        if row is None:
            return None
        values = {k: v for k, v in row._mapping.items() if k != "key_hash"}
        return ApiKeyRecord(**values)

    # requests ---------------------------------------------------------------------------------------------------

    async def insert_request(self, record: RequestRecord) -> RequestRecord:
        """Record an accepted request. Raises `IdempotencyConflict` if the project already used its key."""
        values = {name: getattr(record, name) for name in requests.c.keys()}
        try:
            async with self.writing() as conn:
                await conn.execute(requests.insert().values(**values))
        except IntegrityError as exc:
            if record.idempotency_key:
                existing = await self.find_by_idempotency_key(record.project_id, record.idempotency_key)
                if existing is not None:
                    raise IdempotencyConflict(existing) from exc
            raise
        return record

    async def find_by_idempotency_key(self, project_id: str, key: str) -> RequestRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(requests).where(requests.c.project_id == project_id, requests.c.idempotency_key == key)
                )
            ).first()
        return RequestRecord.from_row(row) if row else None

    async def get_request(self, request_id: str) -> RequestRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(requests).where(requests.c.id == request_id))).first()
        return RequestRecord.from_row(row) if row else None

    async def list_unfinished(self) -> list[RequestRecord]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(requests).where(requests.c.status.in_(UNFINISHED)).order_by(requests.c.created_at)
                )
            ).all()
        return [RequestRecord.from_row(row) for row in rows]

    async def start_run(self, request_id: str) -> RequestRecord | None:
        """Mark the request running and count the run; None if it has already finished (a duplicate delivery)."""
        async with self.writing() as conn:
            result = await conn.execute(
                requests.update()
                .where(requests.c.id == request_id, requests.c.status.in_(UNFINISHED))
                .values(status=RUNNING, run_count=requests.c.run_count + 1, started_at=now())
            )
            if result.rowcount == 0:
                return None
            row = (await conn.execute(sa.select(requests).where(requests.c.id == request_id))).one()
        return RequestRecord.from_row(row)

    async def reserve_seq(self, request_id: str, reserved: int) -> None:
        async with self.writing() as conn:
            await conn.execute(requests.update().where(requests.c.id == request_id).values(seq_reserved=reserved))

    async def set_status(self, request_id: str, status: str, **values: Any) -> None:
        async with self.writing() as conn:
            await conn.execute(requests.update().where(requests.c.id == request_id).values(status=status, **values))

    async def finish_request(
        self,
        request_id: str,
        outcome: Outcome,
        *,
        expected: tuple[str, ...],
        deliveries: list[dict[str, Any]] | tuple[()] = (),
    ) -> bool:
        """Record a request's end if it is in one of the `expected` states (`sluice.lifecycle.states.sources`), with
        the webhook deliveries that end triggers, in one transaction. False (nothing written) if it was not."""
        async with self.writing() as conn:
            result = await conn.execute(
                requests.update()
                .where(requests.c.id == request_id, requests.c.status.in_(expected))
                .values(
                    status=outcome.status,
                    data=outcome.data,
                    error=outcome.error,
                    meta=outcome.meta,
                    first_token_at=outcome.first_token_at,
                    completed_at=now(),
                    cost_usd=outcome.cost_usd,
                )
            )
            if result.rowcount == 0:
                return False
            if deliveries:
                await conn.execute(webhook_deliveries.insert(), list(deliveries))
        return True

    async def record_spend(self, request_id: str, spend: dict[str, Any]) -> None:
        """What a run stopped by a cancel had spent (`sluice.spend.usage.stopped_meta`), kept with the end another
        instance recorded for it (the cancel's, which could not know it): `cost_usd` and the spend fields of `meta`,
        once."""
        async with self.writing() as conn:
            row = (
                await conn.execute(
                    sa.select(requests.c.meta).where(requests.c.id == request_id, requests.c.cost_usd.is_(None))
                )
            ).first()
            if row is None:
                return
            await conn.execute(
                requests.update()
                .where(requests.c.id == request_id, requests.c.cost_usd.is_(None))
                .values(cost_usd=spend.get("cost_usd"), meta={**(row.meta or {}), **spend})
            )

    async def set_terminal_seq(self, request_id: str, seq: int) -> None:
        """The number the request's terminal event went out with (it was announced)."""
        async with self.writing() as conn:
            await conn.execute(requests.update().where(requests.c.id == request_id).values(terminal_seq=seq))

    async def record_attempt(self, attempt: AttemptRecord) -> None:
        async with self.writing() as conn:
            await conn.execute(attempts.insert().values(**attempt_values(attempt)))

    async def list_attempts(self, request_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(attempts).where(attempts.c.request_id == request_id).order_by(attempts.c.id)
                )
            ).all()
        hidden = ("id", "request_id")
        return [{k: v for k, v in utc_values(row, "started_at").items() if k not in hidden} for row in rows]


def attempt_values(attempt: AttemptRecord) -> dict[str, Any]:
    """An attempt as an `attempts` row."""
    return {name: getattr(attempt, name) for name in ATTEMPT_COLUMNS}


ATTEMPT_COLUMNS = tuple(name for name in attempts.c.keys() if name != "id")


class IdempotencyConflict(Exception):
    """The project already submitted a request under this Idempotency-Key."""

    def __init__(self, existing: RequestRecord) -> None:
        super().__init__(existing.id)
        self.existing = existing

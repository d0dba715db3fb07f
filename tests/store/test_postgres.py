"""The store on the real PostgreSQL: the same Alembic migrations as SQLite, and instances starting together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from sluice.channel.writer import SEQ_BLOCK
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.states import UNFINISHED
from sluice.settings import Settings
from sluice.store import RequestRecord, Store
from sluice.store.database import alembic_config, create_engine, migrate
from sluice.store.schema import metadata
from sluice.store.store import now
from tests.backends import fresh_database

pytest.importorskip("asyncpg")


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_database() as url:
        yield url


def engine_for(url: str):  # type: ignore[no-untyped-def]
    return create_engine(Settings(database_url=url).resolved_database_url)


async def test_every_migration_runs_on_postgresql_and_matches_the_schema(database_url: str) -> None:
    from alembic.script import ScriptDirectory

    engine = engine_for(database_url)
    try:
        await migrate(engine)
        await migrate(engine)  # idempotent
        async with engine.connect() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            tables = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert set(metadata.tables) <= tables


async def test_instances_starting_together_migrate_one_after_another(database_url: str) -> None:
    engines = [engine_for(database_url) for _ in range(4)]
    try:
        # Without the advisory lock two of these race to CREATE TABLE and one fails.
        await asyncio.gather(*(migrate(engine) for engine in engines))
        stores = [Store(engine) for engine in engines]
        project_ids = await asyncio.gather(*(store.ensure_project() for store in stores))
    finally:
        for engine in engines:
            await engine.dispose()
    assert len(set(project_ids)) == 1


async def test_request_lifecycle_round_trips_through_postgresql(database_url: str) -> None:
    store = Store(engine_for(database_url))
    try:
        await migrate(store.engine)
        project_id = await store.ensure_project()
        record = RequestRecord(
            id="req-1",
            project_id=project_id,
            workflow="demo",
            status="queued",
            mode="async",
            body={"workflow": "demo", "messages": [{"role": "user", "content": "hé"}]},
            metadata={"user": 7},
            idempotency_key="k1",
            body_hash="h",
            data=None,
            error=None,
            meta=None,
            run_count=0,
            seq_reserved=SEQ_BLOCK,
            terminal_seq=None,
            created_at=now(),
            started_at=None,
            first_token_at=None,
            completed_at=None,
        )
        await store.insert_request(record)
        assert [r.id for r in await store.list_unfinished()] == ["req-1"]
        started = await store.start_run("req-1")
        assert started is not None and started.status == "running" and started.run_count == 1
        outcome = Outcome(status="completed", data=["a", {"b": 1.5}], meta={"provider": "simulated"})
        assert await store.finish_request("req-1", outcome, expected=UNFINISHED)
        await store.set_terminal_seq("req-1", 12)
        assert await store.start_run("req-1") is None  # finished: a duplicate job is not run again
        done = await store.get_request("req-1")
        assert done is not None and done.finished and done.data == ["a", {"b": 1.5}] and done.terminal_seq == 12
        assert done.created_at.tzinfo is not None and done.body["messages"][0]["content"] == "hé"
        assert await store.list_unfinished() == []
        found = await store.find_by_idempotency_key(project_id, "k1")
        assert found is not None and found.id == "req-1"
    finally:
        await store.aclose()

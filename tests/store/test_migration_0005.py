"""Migration 0005 (usage, cost, budgets) on a store written by 0004: every record stays as it was, in its project
(the default one for everything made before projects were enforced), the new columns empty."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from sluice.store.database import alembic_config, create_engine

NOW = "2026-11-01 10:00:00"


def _to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_0005_keeps_every_record_where_it_was(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to, "0004")
            for statement in (
                f"INSERT INTO projects (id, name, created_at) VALUES ('proj_d', 'default', '{NOW}')",
                "INSERT INTO api_keys (id, project_id, name, prefix, key_hash, is_admin, created_at) "
                f"VALUES ('key_1', 'proj_d', 'old', 'sk_sluice_ab', 'h', 1, '{NOW}')",
                "INSERT INTO workflows (id, project_id, name, definition, created_at, updated_at) "
                f"VALUES ('wf_1', 'proj_d', 'old_flow', '{{}}', '{NOW}', '{NOW}')",
                "INSERT INTO providers (id, project_id, name, type, options, created_at, updated_at) "
                f"VALUES ('prov_1', 'proj_d', 'old_sim', 'simulated', '{{}}', '{NOW}', '{NOW}')",
                "INSERT INTO requests (id, project_id, workflow, status, mode, body, run_count, seq_reserved, "
                f"created_at) VALUES ('req_1', 'proj_d', 'old_flow', 'completed', 'async', '{{}}', 1, 10000, '{NOW}')",
                "INSERT INTO attempts (request_id, attempt, provider, model, status, tokens_in, tokens_out, "
                f"started_at) VALUES ('req_1', 1, 'old_sim', 'sim-1', 'succeeded', 5, 7, '{NOW}')",
            ):
                await conn.execute(sa.text(statement))
        async with engine.begin() as conn:
            await conn.run_sync(_to, "head")
        async with engine.connect() as conn:
            key = (await conn.execute(sa.text("SELECT project_id, budget_usd, rpm FROM api_keys"))).one()
            owners = (
                await conn.execute(
                    sa.text("SELECT project_id FROM workflows UNION ALL SELECT project_id FROM providers")
                )
            ).all()
            request = (
                await conn.execute(sa.text("SELECT project_id, key_id, cost_usd, reservation FROM requests"))
            ).one()
            attempt = (await conn.execute(sa.text("SELECT tokens_in, tokens_out, cost_usd FROM attempts"))).one()
        assert tuple(key) == ("proj_d", None, None)
        assert [owner for (owner,) in owners] == ["proj_d", "proj_d"]
        assert tuple(request) == ("proj_d", None, None, None)
        assert tuple(attempt) == (5, 7, None)
    finally:
        await engine.dispose()

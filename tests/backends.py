"""Real PostgreSQL databases and Redis key prefixes for tests, one of each per test, removed afterwards.

`SLUICE_TEST_DATABASE_URL` / `SLUICE_TEST_REDIS_URL` select PostgreSQL and Redis for the whole suite (the `backend`
fixture feeds them to every gateway a test starts); unset, gateways use SQLite and the in-process broker. The
scale-out tests use the machine's services at their default addresses whatever these say.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@asynccontextmanager
async def fresh_database(admin_url: str = DEFAULT_DATABASE_URL) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (its URL); dropped on exit. Skips the test if PostgreSQL is unreachable."""
    import asyncpg

    name = f"sluice_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {admin_url}: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _with_database(admin_url, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_redis_prefix(url: str = DEFAULT_REDIS_URL) -> AsyncIterator[str]:
    """A Redis URL carrying a key prefix no other test uses; its keys are deleted on exit."""
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError

    prefix = f"sluice-test-{uuid.uuid4().hex[:12]}:"
    client = aioredis.Redis.from_url(url)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as exc:
        await client.aclose()
        pytest.skip(f"no Redis at {url}: {exc}")
    try:
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}key_prefix={prefix}"
    finally:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()


@pytest.fixture
async def backend() -> AsyncIterator[dict[str, Any]]:
    """Settings overrides that put a test's gateways on PostgreSQL and/or Redis, when the environment asks for it."""
    overrides: dict[str, Any] = {}
    database_url = os.environ.get("SLUICE_TEST_DATABASE_URL")
    redis_url = os.environ.get("SLUICE_TEST_REDIS_URL")
    async with (
        _maybe(fresh_database(database_url) if database_url else None) as db_url,
        _maybe(fresh_redis_prefix(redis_url) if redis_url else None) as prefixed_redis_url,
    ):
        if db_url:
            overrides["database_url"] = db_url
        if prefixed_redis_url:
            overrides["redis_url"] = prefixed_redis_url
        yield overrides


@asynccontextmanager
async def _maybe(manager: Any) -> AsyncIterator[str | None]:
    if manager is None:
        yield None
        return
    async with manager as value:
        yield value


def backend_tests_only(items: list[pytest.Item]) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(kept, deselected): the tests that run on the `backend` fixture, and the rest. The second configuration of
    scripts/test (SLUICE_TEST_BACKEND_ONLY=1) runs only the first kind: a test that never asks for `backend` runs
    on SQLite and the in-process broker (or on the machine's services at their default addresses) whatever the
    environment says, so running it again would repeat the first configuration's run exactly."""
    kept = [item for item in items if "backend" in getattr(item, "fixturenames", ())]
    return kept, [item for item in items if "backend" not in getattr(item, "fixturenames", ())]


class PrivateRedis:
    """A redis-server of this test's own (no persistence), so it can be killed and restarted like a real outage."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self) -> None:
        import redis.asyncio
        import redis.exceptions

        self.spawn()
        client = redis.asyncio.Redis.from_url(self.url)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        await client.ping()
                        return
                    except redis.exceptions.ConnectionError:
                        await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(5)


REDIS_SERVER = shutil.which("redis-server")


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:  # a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = PrivateRedis(port)
    await server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()

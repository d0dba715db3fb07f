"""Cancel across two `sluice serve` processes on one Redis and one PostgreSQL (the machine's real services): the
cancel is sent to the instance that does not run the request, and the one that does closes its provider call.

The fake provider runs in the test's process; both gateways call it over loopback, and it notes the moment each
of their connections to it closes (`FakeProvider.hangups`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.testing import FakeProvider, Script
from tests.backends import fresh_database, fresh_redis_prefix
from tests.cancelling import SLOW, TEXT, one_terminal
from tests.conftest import MASTER_KEY, collect_ws, events_only, free_port, write_config
from tests.delivery.receiver import json_of, running_receiver
from tests.e2e.test_scale_out import Instance, start_instance, wait_ready

pytest.importorskip("asyncpg")
aioredis = pytest.importorskip("redis.asyncio")

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}
CONFIG = """
providers:
  fake: {{type: openai, api_key: k, base_url: "{url}"}}
workflows:
  slow: {{chain: [{{provider: fake, model: m, retries: 0}}]}}
  slow_unwatched:
    chain: [{{provider: fake, model: m, retries: 0}}]
    cancel_when_unwatched_for: 1s
"""


@dataclass
class Pair:
    a: Instance
    b: Instance
    fake: FakeProvider
    redis: Any
    prefix: str

    async def runner(self) -> tuple[Instance, Instance]:
        """(the instance whose worker holds the job right now, the other one)."""
        async with asyncio.timeout(15):
            while not (pending := await self.redis.xpending_range(f"{self.prefix}{{jobs}}", "workers", "-", "+", 1)):
                await asyncio.sleep(0.02)
        pid = int(pending[0]["consumer"].split("-")[-2])
        return (self.a, self.b) if self.a.process.pid == pid else (self.b, self.a)

    async def wait_for_events(self, channel_id: str, count: int) -> None:
        """Until the channel's log holds `count` events (read from Redis, not from a subscriber)."""
        async with asyncio.timeout(10):
            while int(await self.redis.hget(f"{self.prefix}ch:{{{channel_id}}}:meta", "next") or 0) <= count:
                await asyncio.sleep(0.02)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    async with (
        FakeProvider("openai", text=TEXT) as fake,
        fresh_database() as database_url,
        fresh_redis_prefix() as redis_url,
    ):
        env = {
            **os.environ,
            "SLUICE_MASTER_KEY": MASTER_KEY,
            "SLUICE_SECRET_KEY": "cancel-scale-out-secret-0123456789abcdef",
            "SLUICE_DATABASE_URL": database_url,
            "SLUICE_REDIS_URL": f"{redis_url}&check_interval=0.3",
            "SLUICE_CONFIG": str(write_config(tmp_path, CONFIG.format(url=fake.base_url))),
            "SLUICE_HEARTBEAT_INTERVAL": "0.5",
            "SLUICE_ENV": "development",
        }
        instances = [start_instance(name, free_port(), tmp_path, env) for name in ("a", "b")]
        redis = aioredis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
        try:
            await asyncio.gather(*(wait_ready(i) for i in instances))
            yield Pair(*instances, fake=fake, redis=redis, prefix=redis_url.split("key_prefix=")[1])
        finally:
            for instance in instances:
                instance.process.terminate()
            for instance in instances:
                instance.process.wait(10)
            await redis.aclose()


def ws_url(instance: Instance, accepted: dict[str, Any]) -> str:
    query = f"channel_id={accepted['channel_id']}&token={accepted['ws_token']}"
    return f"ws{instance.url.removeprefix('http')}/v1/ws?{query}"


async def test_a_cancel_sent_to_b_closes_the_provider_call_on_a(pair: Pair) -> None:
    pair.fake.script(SLOW)
    async with running_receiver() as receiver, httpx.AsyncClient(headers=HEADERS, timeout=10) as client:
        body = {
            "workflow": "slow",
            "messages": [{"role": "user", "content": "A long one."}],
            "webhook_url": receiver.url,
        }
        accepted = (await client.post(f"{pair.a.url}/v1/ai/async", json=body)).json()
        runner, other = await pair.runner()
        stream = asyncio.create_task(collect_ws(ws_url(runner, accepted), timeout=15))
        await pair.wait_for_events(accepted["channel_id"], 6)  # mid-stream: queued, running, attempt, three deltas
        asked = time.monotonic()
        answer = await client.post(f"{other.url}/v1/requests/{accepted['request_id']}/cancel")
        hangup = await pair.fake.wait_hangup(within=1.0)
        closed_after = hangup.at - asked
        events = events_only(await stream)
        webhook = json_of(await receiver.next())
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled", answer.text
    assert closed_after < 1.0, f"the upstream connection closed {closed_after:.3f}s after the cancel"
    terminal = one_terminal(events)
    assert terminal["type"] == "error" and terminal["code"] == "cancelled"
    shown = "".join(e["text"] for e in events if e["type"] == "delta")
    assert shown and answer.json()["data"] == {"content": shown}  # recorded on B from the log A wrote
    assert webhook["type"] == "task.cancelled" and webhook["data"] == {"content": shown}
    assert len(pair.fake.requests) == 1


async def test_a_chat_completion_running_on_a_is_cancelled_through_b(pair: Pair) -> None:
    pair.fake.script(SLOW)
    body = {"model": "slow", "messages": [{"role": "user", "content": "Go on."}], "stream": True}
    async with (
        httpx.AsyncClient(headers=HEADERS, timeout=10) as client,
        client.stream("POST", f"{pair.a.url}/v1/chat/completions", json=body) as response,
    ):
        lines = response.aiter_lines()
        async with asyncio.timeout(5):
            while "word1" not in await anext(lines):
                pass
        answer = await client.post(f"{pair.b.url}/v1/requests/{response.headers['x-request-id']}/cancel")
        await pair.fake.wait_hangup(within=1.0)
        rest = [line async for line in lines if line.startswith("data: ")]
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled", answer.text
    assert answer.json()["data"]["content"].startswith("word0 word1")
    assert json.loads(rest[-1][6:])["error"]["code"] == "cancelled"


async def test_a_subscriber_on_b_keeps_a_run_on_a_from_being_cancelled_as_unwatched(pair: Pair) -> None:
    async with httpx.AsyncClient(headers=HEADERS, timeout=10) as client:
        pair.fake.script(Script(chunk_delay=0.05, chunks=40))  # two seconds: twice the period
        body = {"workflow": "slow_unwatched", "messages": [{"role": "user", "content": "Watched."}]}
        accepted = (await client.post(f"{pair.a.url}/v1/ai/async", json=body)).json()
        _, other = await pair.runner()
        watched = events_only(await collect_ws(ws_url(other, accepted), timeout=15))
        pair.fake.script(SLOW)
        body["messages"] = [{"role": "user", "content": "Nobody watches."}]
        unwatched = (await client.post(f"{pair.a.url}/v1/ai/async", json=body)).json()
        await pair.fake.wait_hangup(within=5.0)
        record = (await client.get(f"{pair.b.url}/v1/requests/{unwatched['request_id']}")).json()
    assert one_terminal(watched)["type"] == "response" and len(pair.fake.hangups) == 1
    assert record["status"] == "cancelled" and record["meta"]["cancel_reason"] == "unwatched"

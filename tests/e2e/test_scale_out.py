"""Three `sluice serve` processes on one Redis and one PostgreSQL (the machine's real services).

Each test gets a fresh database and a fresh Redis key prefix. "Redis lost its data" is played by deleting every key
of the test's prefix, which is what FLUSHALL does to one deployment without touching anybody else's on this Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import fresh_database, fresh_redis_prefix
from tests.conftest import MASTER_KEY, chat_body, collect_ws, events_only, free_port, paced_config

asyncpg = pytest.importorskip("asyncpg")
aioredis = pytest.importorskip("redis.asyncio")

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}
TERMINAL = ("response", "error")


@dataclass
class Instance:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@dataclass
class Cluster:
    instances: list[Instance]
    database_url: str
    redis_url: str
    prefix: str
    redis: Any
    env: dict[str, str] = field(default_factory=dict)

    def by_pid(self, pid: int) -> Instance:
        return next(i for i in self.instances if i.process.pid == pid)

    async def runner_of(self) -> Instance:
        """The instance whose worker holds a job right now (the consumer name carries its pid)."""
        async with asyncio.timeout(15):
            while True:
                pending = await self.redis.xpending_range(f"{self.prefix}{{jobs}}", "workers", "-", "+", 10)
                if pending:
                    return self.by_pid(int(pending[0]["consumer"].split("-")[-2]))
                await asyncio.sleep(0.05)

    async def wait_for_events(self, channel_id: str, count: int) -> None:
        """Until the channel's log holds `count` events (read from Redis, not from a subscriber)."""
        async with asyncio.timeout(15):
            while True:
                next_seq = await self.redis.hget(f"{self.prefix}ch:{{{channel_id}}}:meta", "next")
                if next_seq is not None and int(next_seq) > count:
                    return
                await asyncio.sleep(0.05)

    async def request_row(self, request_id: str) -> Any:
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetchrow("SELECT status, run_count, data FROM requests WHERE id = $1", request_id)
        finally:
            await conn.close()


def start_instance(name: str, port: int, tmp_path: Path, env: dict[str, str]) -> Instance:
    log_path = tmp_path / f"{name}.log"
    command = [sys.executable, "-m", "sluice", "serve", "--port", str(port), "--data-dir", str(tmp_path / name)]
    with log_path.open("wb") as log_file:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    return Instance(name, f"http://127.0.0.1:{port}", process, log_path)


def stop_instances(instances: list[Instance]) -> None:
    """Terminate every instance still running and wait for each (killed if it lingers)."""
    for instance in instances:
        if instance.process.poll() is None:
            instance.process.terminate()
    for instance in instances:
        try:
            instance.process.wait(10)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait(5)


async def wait_ready(instance: Instance) -> None:
    async with httpx.AsyncClient(base_url=instance.url) as client, asyncio.timeout(40):
        while True:
            assert instance.process.poll() is None, f"{instance.name} exited:\n{instance.log()}"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with fresh_database() as database_url, fresh_redis_prefix() as redis_url:
        prefix = redis_url.split("key_prefix=")[1]
        env = {
            **os.environ,
            "SLUICE_MASTER_KEY": MASTER_KEY,
            "SLUICE_SECRET_KEY": "scale-out-secret-key-0123456789abcdef",
            "SLUICE_DATABASE_URL": database_url,
            "SLUICE_REDIS_URL": f"{redis_url}&visibility_timeout=2&check_interval=0.3",
            # ~100 tokens at 40 ms: a run lasts about four seconds.
            "SLUICE_CONFIG": str(paced_config(tmp_path, 40)),
            "SLUICE_HEARTBEAT_INTERVAL": "0.5",
            "SLUICE_ENV": "development",
        }
        # Started together on an empty database: the migration lock makes them take turns.
        instances = [start_instance(name, free_port(), tmp_path, env) for name in ("a", "b", "c")]
        redis = aioredis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
        try:
            await asyncio.gather(*(wait_ready(i) for i in instances))
            yield Cluster(instances, database_url, redis_url, prefix, redis, env)
        finally:
            stop_instances(instances)
            await redis.aclose()


async def submit(instance: Instance, text: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=instance.url, headers=HEADERS, timeout=10) as client:
        response = await client.post("/v1/ai/async", json=chat_body(text))
    assert response.status_code == 202, response.text
    return response.json()


def ws_url_on(instance: Instance, accepted: dict[str, Any]) -> str:
    query = f"channel_id={accepted['channel_id']}&token={accepted['ws_token']}"
    return f"ws{instance.url.removeprefix('http')}/v1/ws?{query}"


async def sse_events(instance: Instance, accepted: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    url = f"{instance.url}/v1/channels/{accepted['channel_id']}/events?token={accepted['ws_token']}"
    async with httpx.AsyncClient(timeout=30) as client, client.stream("GET", url) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def assert_one_ordered_stream(events: list[dict[str, Any]]) -> dict[str, Any]:
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), f"seqs must only move forward, without repeats: {seqs}"
    terminals = [e for e in events if e["type"] in TERMINAL]
    assert len(terminals) == 1 and events[-1] is terminals[0], "exactly one terminal event, and it comes last"
    return terminals[0]


def answer_after_last_reset(events: list[dict[str, Any]]) -> str:
    last_reset = max((i for i, e in enumerate(events) if e["type"] == "reset"), default=-1)
    return "".join(e["text"] for e in events[last_reset + 1 :] if e["type"] == "delta")


async def test_submit_on_a_stream_on_b_and_c_complete_and_in_order(cluster: Cluster) -> None:
    a, b, c = cluster.instances
    accepted = await submit(a, "I love scaling out")
    on_b, on_c = await asyncio.gather(collect_ws(ws_url_on(b, accepted), timeout=30), sse_events(c, accepted))
    ws_events = events_only(on_b)
    assert [e["seq"] for e in ws_events] == list(range(1, len(ws_events) + 1)), "nothing missing, nothing repeated"
    assert on_c == ws_events, "every instance serves the same channel, event for event"
    final = assert_one_ordered_stream(ws_events)
    assert final["type"] == "response" and final["data"]["sentiment"] == "positive"
    assert json.loads(answer_after_last_reset(ws_events)) == final["data"]
    async with httpx.AsyncClient(base_url=c.url, headers=HEADERS) as client:
        record = (await client.get(f"/v1/requests/{accepted['channel_id']}")).json()
    assert record["status"] == "completed" and record["data"] == final["data"]


async def test_submit_on_a_subscribe_on_b_callback_on_c(cluster: Cluster) -> None:
    from tests.delivery.receiver import running_receiver

    a, b, c = cluster.instances
    async with running_receiver() as receiver:
        body = chat_body("I love callbacks", webhook_url=receiver.url, events=["webhook_received"])
        async with httpx.AsyncClient(base_url=a.url, headers=HEADERS, timeout=10) as client:
            accepted = (await client.post("/v1/ai/async", json=body)).json()
        stream = asyncio.create_task(collect_ws(ws_url_on(b, accepted), timeout=40))
        payload = json.loads((await receiver.next(wait=30)).body)
        enriched = {"enriched_by": "backend", **payload["ai_response"]["data"]}
        path_and_token = payload["callback_url"].split("/v1/callback/", 1)[1]
        async with httpx.AsyncClient(timeout=10) as client:  # to C, whichever instance sent the webhook
            answer = await client.post(f"{c.url}/v1/callback/{path_and_token}", json=enriched)
        assert answer.status_code == 200, answer.text
        events = events_only(await stream)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    final = assert_one_ordered_stream(events)
    assert final["type"] == "response" and final["data"]["enriched_by"] == "backend"
    assert "awaiting_callback" in [e.get("status") for e in events]


async def test_sigkill_of_the_running_instance_another_finishes_with_one_terminal(cluster: Cluster) -> None:
    accepted = await submit(cluster.instances[0], "please survive a crash")
    runner = await cluster.runner_of()
    watcher = next(i for i in cluster.instances if i is not runner)
    stream = asyncio.create_task(collect_ws(ws_url_on(watcher, accepted), timeout=40))
    await cluster.wait_for_events(accepted["channel_id"], 12)  # mid-stream: text has been generated
    runner.process.send_signal(signal.SIGKILL)
    runner.process.wait(10)
    events = events_only(await stream)
    final = assert_one_ordered_stream(events)
    assert final["type"] == "response", final
    kinds = [e["type"] for e in events]
    assert "reset" in kinds and kinds.index("delta") < kinds.index("reset"), "the killed run's output is retracted"
    assert json.loads(answer_after_last_reset(events)) == final["data"]
    row = await cluster.request_row(accepted["channel_id"])
    assert row["status"] == "completed" and row["run_count"] == 2
    async with asyncio.timeout(10):  # the job was acknowledged by the instance that finished it
        while True:
            if await cluster.redis.xlen(f"{cluster.prefix}{{jobs}}") == 0:
                break
            await asyncio.sleep(0.05)


async def test_redis_data_loss_mid_run_loses_no_accepted_request(cluster: Cluster) -> None:
    instances = cluster.instances
    accepted = [await submit(instances[i % 3], f"request number {i} about data loss") for i in range(6)]
    streams = [
        asyncio.create_task(collect_ws(ws_url_on(instances[(i + 1) % 3], acc), timeout=60))
        for i, acc in enumerate(accepted)
    ]
    await cluster.wait_for_events(accepted[0]["channel_id"], 12)  # mid-run: text has been generated
    deleted = 0
    async for key in cluster.redis.scan_iter(match=f"{cluster.prefix}*", count=1000):
        deleted += await cluster.redis.delete(key)
    assert deleted > 6
    late = await submit(instances[2], "submitted right after the loss")
    streams.append(asyncio.create_task(collect_ws(ws_url_on(instances[0], late), timeout=60)))
    results = await asyncio.gather(*streams)
    for acc, frames in zip([*accepted, late], results, strict=True):
        events = events_only(frames)
        final = assert_one_ordered_stream(events)
        row = await cluster.request_row(acc["channel_id"])
        assert row["status"] == "completed", (acc["channel_id"], row)
        assert final["type"] == "response" and final["data"] == json.loads(row["data"])
    # The first request was mid-run when the data went: its run was stopped and ran again from the start.
    first = await cluster.request_row(accepted[0]["channel_id"])
    assert first["run_count"] >= 2
    assert "reset" in [e["type"] for e in events_only(results[0])]

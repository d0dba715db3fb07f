"""One key's budget under load across two `sluice serve` instances on PostgreSQL and Redis: 500 concurrent requests
with random output lengths, half to each instance. The budget holds — the settled spend (the store's, and Redis's)
is within it — and nothing is dispatched once it is reached: the provider saw exactly the requests that were
answered, every other one was refused with 402 before it ran."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import httpx
import pytest

from sluice.testing import FakeProvider, Script
from tests.backends import fresh_database, fresh_redis_prefix
from tests.conftest import MASTER_KEY, free_port, write_config
from tests.e2e.test_scale_out import start_instance, stop_instances, wait_ready

asyncpg = pytest.importorskip("asyncpg")
aioredis = pytest.importorskip("redis.asyncio")

BUDGET = 0.5
REQUESTS = 500
MAX_TOKENS = 50


async def test_one_budget_holds_across_two_instances_under_load(tmp_path: Path) -> None:
    rng = random.Random(19)
    async with (
        FakeProvider("openai") as fake,
        fresh_database() as database_url,
        fresh_redis_prefix() as redis_url,
    ):
        # $1 per million input tokens, $100 per million output: an answer costs up to ~$0.005, its length is random.
        fake.script(*[Script(text=" ".join(["word"] * rng.randint(1, MAX_TOKENS))) for _ in range(REQUESTS)])
        config = write_config(
            tmp_path,
            f"providers:\n  p: {{type: openai, base_url: '{fake.base_url}', api_key: k,"
            " prices: {m: {input: 1, output: 100}}}\n",
        )
        env = {
            **os.environ,
            "SLUICE_MASTER_KEY": MASTER_KEY,
            "SLUICE_SECRET_KEY": "budget-scale-out-secret-0123456789abcdef",
            "SLUICE_DATABASE_URL": database_url,
            "SLUICE_REDIS_URL": redis_url,
            "SLUICE_CONFIG": str(config),
            "SLUICE_ENV": "development",
        }
        instances = [start_instance(name, free_port(), tmp_path, env) for name in ("a", "b")]
        try:
            await asyncio.gather(*(wait_ready(i) for i in instances))
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
                created = await admin.post(
                    f"{instances[0].url}/v1/admin/keys", json={"name": "load", "budget_usd": BUDGET}
                )
            key = created.json()
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(
                headers={"Authorization": f"Bearer {key['key']}"}, timeout=60, limits=limits
            ) as client:

                async def ask(index: int) -> httpx.Response:
                    body = {
                        "model": "p/m",
                        "messages": [{"role": "user", "content": f"q{index}"}],
                        "max_tokens": MAX_TOKENS,
                    }
                    return await client.post(f"{instances[index % 2].url}/v1/chat/completions", json=body)

                answers = await asyncio.gather(*(ask(i) for i in range(REQUESTS)))
            answered = [a for a in answers if a.status_code == 200]
            refused = [a for a in answers if a.status_code != 200]
            assert answered and refused, [a.status_code for a in answers][:20]
            assert {a.status_code for a in refused} == {402}, {a.text for a in refused if a.status_code != 402}
            assert all(a.json()["error"]["code"] == "budget_exceeded" for a in refused)
            # Nothing dispatched past the budget: the provider saw the answered requests and no other.
            assert len(fake.requests) == len(answered)
            # The settled spend, in the store (the pass-through's write-behind log lands within moments) and in
            # Redis, is what the answers cost, and within the budget.
            costs = (
                sum(
                    a.json()["usage"]["prompt_tokens"] * 1 + a.json()["usage"]["completion_tokens"] * 100
                    for a in answered
                )
                / 1e6
            )
            conn = await asyncpg.connect(database_url)
            try:
                async with asyncio.timeout(10):
                    while True:
                        count, spent = await conn.fetchrow(
                            "SELECT count(*), coalesce(sum(cost_usd), 0) FROM requests WHERE key_id = $1", key["id"]
                        )
                        if count == len(answered):
                            break
                        await asyncio.sleep(0.05)
            finally:
                await conn.close()
            assert spent == pytest.approx(costs) and spent <= BUDGET
            redis = aioredis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
            prefix = redis_url.split("key_prefix=")[1]
            try:
                state = await redis.hgetall(f"{prefix}{{spend}}:budget:key:{key['id']}:total")
            finally:
                await redis.aclose()
            assert int(state["held"]) == 0
            assert int(state["spent"]) / 1e9 == pytest.approx(costs, abs=1e-6) and int(state["spent"]) <= BUDGET * 1e9
        finally:
            stop_instances(instances)

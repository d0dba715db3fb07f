"""Budgets and per-minute limits through a real gateway: checked before anything is dispatched on every route,
settled with what the attempts cost, refused with 402 (a budget) or 429 + Retry-After (rpm, tpm)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.testing import FakeProvider, Script
from tests.backends import PrivateRedis
from tests.conftest import (
    MASTER_KEY,
    RunningGateway,
    StartGateway,
    chat_body,
    within_one_minute_window,
    write_config,
)

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
# The simulated provider at a price of its own: every answer costs something, and nothing leaves the machine.
PRICED = "providers:\n  simulated: {type: simulated, pace_ms: 0, prices: {'*': {input: 100, output: 1000}}}\n"


async def new_key(gw: RunningGateway, **limits: Any) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=gw.url, headers=ADMIN) as admin:
        created = await admin.post("/v1/admin/keys", json={"name": "budgeted", **limits})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


async def key_listing(gw: RunningGateway) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gw.url, headers=ADMIN) as admin:
        keys = (await admin.get("/v1/admin/keys")).json()["keys"]
    return next(k for k in keys if k["name"] == "budgeted")


@pytest.fixture
async def priced(start_gateway: StartGateway, tmp_path: Path) -> RunningGateway:
    return await start_gateway(config_path=write_config(tmp_path, PRICED))


async def test_a_budget_admits_requests_until_it_is_spent_then_refuses_with_402(priced: RunningGateway) -> None:
    # Each answer costs up to ~$0.04 here (its output stops at max_tokens 40). Requests are admitted while that worst
    # case fits what is left, then refused before they run: spend never passes the budget.
    headers = await new_key(priced, budget_usd=0.2, budget_period="daily")
    costs, refused = [], None
    async with httpx.AsyncClient(base_url=priced.url, headers=headers, timeout=10) as client:
        for _ in range(30):
            answer = await client.post("/v1/ai", json=chat_body("hello there", "simulated/sim-1", max_tokens=40))
            if answer.status_code != 200:
                refused = answer
                break
            costs.append(answer.json()["meta"]["cost_usd"])
    assert refused is not None and refused.status_code == 402, refused and refused.text
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and "daily budget of $0.20" in error["message"]
    assert "retry-after" not in refused.headers  # not a rate limit: nothing to wait for
    assert len(costs) >= 3 and all(cost > 0 for cost in costs)
    spend = (await key_listing(priced))["spend"]
    assert spend["spent_usd"] == pytest.approx(sum(costs)) and spend["spent_usd"] <= 0.2
    assert spend["held_usd"] == 0 and spend["period"].startswith("d")
    # The refused request was never recorded, let alone run.
    gateway = priced.gateway
    assert len(await gateway.admin_store.search_requests(_everything())) == len(costs)


def _everything() -> Any:
    from sluice.store.admin import RequestFilter

    return RequestFilter(limit=1000)


ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/chat/completions", {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/chat/completions", {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": True}),
    ("/v1/messages", {"model": "demo", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/responses", {"model": "demo", "input": "hi"}),
    ("/v1/ai", chat_body("hi")),
    ("/v1/ai", {**chat_body("hi"), "stream": True}),
    ("/v1/ai/async", chat_body("hi")),
    ("/v1/embeddings", {"model": "simulated/sim-1", "input": "hi"}),
]


@pytest.mark.parametrize(
    ("path", "body"), ROUTES, ids=[f"{p}{' stream' if b.get('stream') else ''}" for p, b in ROUTES]
)
async def test_every_route_is_refused_past_the_budget(priced: RunningGateway, path: str, body: dict[str, Any]) -> None:
    headers = await new_key(priced, budget_usd=0.000001)
    async with httpx.AsyncClient(base_url=priced.url, headers=headers, timeout=10) as client:
        refused = await client.post(path, json=body)
    assert refused.status_code == 402, refused.text
    assert "budget of $0.00 is spent" in refused.text  # every face: OpenAI's, Anthropic's or Sluice's error shape
    assert len(await priced.gateway.admin_store.search_requests(_everything())) == 0


async def test_requests_per_minute_are_refused_with_429_and_retry_after(gw: RunningGateway) -> None:
    headers = await new_key(gw, rpm=2)
    await within_one_minute_window()
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=10) as client:
        statuses = [(await client.post("/v1/ai", json=chat_body("hi"))).status_code for _ in range(2)]
        refused = await client.post(
            "/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert statuses == [200, 200]
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "requests_per_minute_exceeded"


async def test_tokens_per_minute_count_the_worst_case_then_the_real_figure(gw: RunningGateway) -> None:
    headers = await new_key(gw, tpm=300)
    await within_one_minute_window()
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=10) as client:
        too_big = await client.post("/v1/ai", json=chat_body("hi", "simulated/sim-1", max_tokens=1000))
        # Worst case ~110 tokens each (input + max_tokens 100); settled at the real count, far less: so more than
        # two fit in the minute.
        answers = [
            await client.post("/v1/ai", json=chat_body("hi", "simulated/sim-1", max_tokens=100)) for _ in range(4)
        ]
    assert too_big.status_code == 400 and too_big.json()["error"]["code"] == "over_token_limit"
    assert [answer.status_code for answer in answers] == [200] * 4


async def test_a_project_budget_holds_for_every_key_of_the_project(priced: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=priced.url, headers=ADMIN) as admin:
        project = (await admin.get("/v1/admin/projects/current")).json()
        limited = await admin.put(f"/v1/admin/projects/{project['id']}/limits", json={"budget_usd": 0.000001})
    assert limited.status_code == 200, limited.text
    async with priced.client() as client:  # a key without limits of its own
        refused = await client.post("/v1/ai", json=chat_body("hi"))
    assert refused.status_code == 402 and "project's budget" in refused.json()["error"]["message"]


async def test_a_model_without_a_price_cannot_spend_a_budget(start_gateway: StartGateway, tmp_path: Path) -> None:
    async with FakeProvider("openai") as fake:
        config = write_config(tmp_path, f"providers:\n  p: {{type: openai, base_url: '{fake.base_url}', api_key: k}}\n")
        gw = await start_gateway(config_path=config)
        headers = await new_key(gw, budget_usd=10)
        async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=10) as client:
            refused = await client.post("/v1/ai", json=chat_body("hi", "p/a-model-nobody-prices"))
            fake.script(Script(text="ok"))
            known = await client.post("/v1/ai", json=chat_body("hi", "p/gpt-4o-mini"))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "price_unknown"
    assert "p/a-model-nobody-prices" in refused.json()["error"]["message"]
    assert known.status_code == 200 and known.json()["meta"]["cost_usd"] > 0
    assert len(fake.requests) == 1


async def test_a_cancelled_request_gives_its_hold_back(start_gateway: StartGateway, tmp_path: Path) -> None:
    config = write_config(tmp_path, PRICED.replace("pace_ms: 0", "pace_ms: 200"))
    gw = await start_gateway(config_path=config)
    headers = await new_key(gw, budget_usd=1)
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=10) as client:
        accepted = await client.post(
            "/v1/responses",
            json={"model": "demo", "input": "a long question", "background": True, "max_output_tokens": 500},
        )
        assert accepted.status_code == 200, accepted.text
        held = (await key_listing(gw))["spend"]["held_usd"]
        cancelled = await client.post(f"/v1/responses/{accepted.json()['id']}/cancel")
    assert held > 0
    assert cancelled.status_code == 200, cancelled.text
    assert (await key_listing(gw))["spend"]["held_usd"] == 0


async def test_what_a_cancelled_run_spent_is_charged_and_kept_with_its_end(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    config = write_config(tmp_path, PRICED.replace("pace_ms: 0", "pace_ms: 100"))
    gw = await start_gateway(config_path=config)
    headers = await new_key(gw, budget_usd=1)
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=10) as client:
        submitted = await client.post("/v1/ai/async", json=chat_body("a long question", max_tokens=200))
        assert submitted.status_code == 202, submitted.text
        accepted = submitted.json()
        async with asyncio.timeout(10), client.stream("GET", accepted["events_url"]) as events:
            async for line in events.aiter_lines():
                if line.startswith("data: ") and '"type":"delta"' in line:
                    break  # it streams: its provider is reading and writing, and billing
        assert (await client.post(f"/v1/requests/{accepted['request_id']}/cancel")).status_code == 200
        async with asyncio.timeout(10):  # the run's own instance adds what it spent once it has stopped
            while not (record := (await client.get(f"/v1/requests/{accepted['request_id']}")).json())["cost_usd"]:
                await asyncio.sleep(0.02)
    assert record["status"] == "cancelled" and record["cost_usd"] > 0
    assert [a["status"] for a in record["meta"]["attempts"]] == ["cancelled"]
    assert record["meta"]["usage"]["estimated"] is True  # cut before the provider's own count: estimated
    spend = (await key_listing(gw))["spend"]
    assert spend["spent_usd"] == pytest.approx(record["cost_usd"]) and spend["held_usd"] == 0


async def test_spend_survives_a_restart_from_the_store(start_gateway: StartGateway, tmp_path: Path) -> None:
    """The embedded gateway keeps its budget state in process; a new process seeds it from the store."""
    config = write_config(tmp_path, PRICED)
    first = await start_gateway(config_path=config)
    headers = await new_key(first, budget_usd=5, budget_period="monthly")
    async with httpx.AsyncClient(base_url=first.url, headers=headers, timeout=10) as client:
        cost = (await client.post("/v1/ai", json=chat_body("hi"))).json()["meta"]["cost_usd"]
    second = await start_gateway(config_path=config)  # another process's view: its state starts empty
    assert (await key_listing(second))["spend"]["spent_usd"] == pytest.approx(cost)


async def test_with_redis_stopped_requests_with_limits_are_refused_and_none_is_dispatched(
    start_gateway: StartGateway, tmp_path: Path, private_redis: PrivateRedis
) -> None:
    """Fail closed: a budget that cannot be read admits nothing (503, a clear message), on every route."""
    async with FakeProvider("openai") as fake:
        config = write_config(
            tmp_path,
            f"providers:\n  p: {{type: openai, base_url: '{fake.base_url}', api_key: k,"
            " prices: {m: {input: 1, output: 1}}}\n",
        )
        gw = await start_gateway(config_path=config, redis_url=private_redis.url)
        headers = await new_key(gw, budget_usd=10)
        async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=30) as client:
            fake.script(Script(text="ok"))
            assert (await client.post("/v1/chat/completions", json=completion("p/m"))).status_code == 200
            private_redis.kill()
            refused = [
                await client.post("/v1/chat/completions", json=completion("p/m")),
                await client.post("/v1/ai", json=chat_body("hi", "p/m")),
            ]
        assert len(fake.requests) == 1  # the one before Redis stopped
    for answer in refused:
        assert answer.status_code == 503, answer.text
        assert "budget_unavailable" in answer.text and "cannot be read" in answer.text


def completion(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}

"""Admin API: the request log is searched by workflow, status, time and metadata value; a detail shows attempts,
timings, the final data, the channel's event timeline and webhook deliveries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import MASTER_KEY, RunningGateway, chat_body

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


async def finished(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            body = (await client.get(f"/v1/requests/{request_id}")).json()
            if body["status"] in ("completed", "failed"):
                return body
            await asyncio.sleep(0.05)


async def add_failing_workflow(client: httpx.AsyncClient) -> None:
    """A provider nobody listens for (connection refused), tried once."""
    down = {"name": "down", "type": "openai-compatible", "options": {"base_url": "http://127.0.0.1:9/v1"}}
    assert (await client.post("/v1/admin/providers", headers=ADMIN, json=down)).status_code == 201
    workflow = {"name": "always_down", "chain": [{"provider": "down", "model": "m", "retries": 0}]}
    assert (await client.post("/v1/admin/workflows", headers=ADMIN, json=workflow)).status_code == 201


async def search(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/v1/admin/requests", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["requests"]]


async def test_search_and_detail(gw: RunningGateway) -> None:
    async with gw.client() as client:
        ids = {}
        for name, metadata in (("alice", {"user": "alice", "tier": 2}), ("bob", {"user": "bob", "tier": 3})):
            accepted = await client.post("/v1/ai/async", json=chat_body(f"hi from {name}", metadata=metadata))
            ids[name] = accepted.json()["request_id"]
        await add_failing_workflow(client)
        failing = await client.post("/v1/ai/async", json=chat_body("x", workflow="always_down"))
        ids["failed"] = failing.json()["request_id"]
        for request_id in ids.values():
            await finished(client, request_id)

        assert await search(client, metadata="user=alice") == [ids["alice"]]
        assert await search(client, metadata="tier=3") == [ids["bob"]]
        assert set(await search(client, metadata="user")) == {ids["alice"], ids["bob"]}
        assert await search(client, status="failed") == [ids["failed"]]
        assert set(await search(client, workflow="demo")) == {ids["alice"], ids["bob"]}
        assert await search(client, workflow="always_down") == [ids["failed"]]
        future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        assert await search(client, since=future) == []
        assert len(await search(client, until=future)) == 3
        page = (await client.get("/v1/admin/requests", params={"limit": 2}, headers=ADMIN)).json()
        assert len(page["requests"]) == 2 and page["next_before"]
        rest = await search(client, before=page["next_before"])
        assert len(rest) == 1 and rest[0] not in [r["id"] for r in page["requests"]]
        assert (await client.get("/v1/admin/requests", params={"metadata": "=x"}, headers=ADMIN)).status_code == 422

        detail = (await client.get(f"/v1/admin/requests/{ids['alice']}", headers=ADMIN)).json()
        assert detail["status"] == "completed" and detail["data"]["reply"]
        assert detail["messages"] == [{"role": "user", "content": "hi from alice"}]
        assert detail["attempts"][0]["provider"] == "simulated" and detail["duration_ms"] > 0
        timeline = detail["timeline"]
        assert timeline["held"]
        types = [event["type"] for event in timeline["events"]]
        assert types[0] == "status" and "attempt" in types and "delta" in types and types[-1] == "response"
        assert detail["deliveries"] == []

        failed = (await client.get(f"/v1/admin/requests/{ids['failed']}", headers=ADMIN)).json()
        assert failed["error"]["code"] and failed["timeline"]["events"][-1]["type"] == "error"
        missing = await client.get("/v1/admin/requests/nope", headers=ADMIN)
        assert missing.status_code == 404


async def test_the_log_and_the_metrics_name_the_api_a_request_came_in_on(gw: RunningGateway) -> None:
    """`/v1/ai*` is Sluice's own API; the OpenAI face names itself, and a `/v1/ai` client cannot pass for it."""
    async with gw.client() as client:
        ours = await client.post("/v1/ai", json={**chat_body("plain"), "api": "openai.chat_completions"})
        chat = await client.post(
            "/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert ours.status_code == 200 and chat.status_code == 200, (ours.text, chat.text)
        chat_id = chat.headers["x-request-id"]
        async with asyncio.timeout(10):  # the pass-through is in the log once it has finished
            while chat_id not in await search(client):
                await asyncio.sleep(0.05)
        rows = {r["id"]: r for r in (await client.get("/v1/admin/requests", headers=ADMIN)).json()["requests"]}
        assert rows[ours.json()["request_id"]]["api"] == "sluice"
        assert rows[chat_id]["api"] == "openai.chat_completions"
        detail = (await client.get(f"/v1/admin/requests/{chat_id}", headers=ADMIN)).json()
        assert detail["api"] == "openai.chat_completions"
        metrics = (await client.get("/metrics")).text
    assert 'sluice_requests_accepted_by_api_total{api="sluice"} 1.0' in metrics
    assert 'sluice_requests_accepted_by_api_total{api="openai.chat_completions"} 1.0' in metrics

"""Submitting requests: async, sync, SSE, status, idempotency, and every kind of bad input."""

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.conftest import RunningGateway, chat_body


async def test_async_accepts_the_seed_articles_request(gw: RunningGateway) -> None:
    body = {
        "workflow": "demo",
        "messages": [{"role": "user", "content": "I love it"}],
        "delivery_method": "websocket",
        "events": ["webhook_received"],
        "metadata": {"conversationId": "c1", "messageId": "m1"},
    }
    async with gw.client() as client:
        response = await client.post("/v1/ai/async", json=body)
    assert response.status_code == 202
    accepted = response.json()
    for field in ("channel_id", "websocket_url", "ws_token", "status_url"):
        assert accepted[field]
    assert accepted["websocket_url"].startswith(gw.ws_url + "/v1/ws?channel_id=" + accepted["channel_id"])
    assert accepted["status"] == "pending"
    assert accepted["websocket_channel"] == f"ai_response:{accepted['project_id']}:{accepted['channel_id']}"


async def test_sync_returns_the_structured_result_and_status_is_recorded(gw: RunningGateway) -> None:
    async with gw.client() as client:
        response = await client.post("/v1/ai", json=chat_body("this is terrible and broken"))
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["status"] == "completed"
        assert result["data"]["sentiment"] == "negative"
        assert set(result["data"]) == {"reply", "summary", "sentiment", "confidence", "topics", "action_items"}
        assert result["meta"]["provider"] == "simulated"
        record = (
            await client.get(result["status_url"] if "status_url" in result else f"/v1/requests/{result['request_id']}")
        ).json()
    assert record["status"] == "completed"
    assert record["data"] == result["data"]
    assert record["metadata"] is None
    assert [a["status"] for a in record["attempts"]] == ["succeeded"]
    assert record["attempts"][0]["provider"] == "simulated" and record["attempts"][0]["tokens_out"] > 0
    assert record["first_token_at"] and record["completed_at"]


async def test_sync_stream_true_answers_with_sse(gw: RunningGateway) -> None:
    events = []
    async with gw.client() as client, client.stream("POST", "/v1/ai", json=chat_body(stream=True)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["type"] == "response"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_idempotency_key_returns_the_first_request(gw: RunningGateway) -> None:
    async with gw.client() as client:
        headers = {"Idempotency-Key": "order-42"}
        first = await client.post("/v1/ai/async", json=chat_body("once"), headers=headers)
        second = await client.post("/v1/ai/async", json=chat_body("once"), headers=headers)
        assert first.status_code == second.status_code == 202
        assert first.json()["channel_id"] == second.json()["channel_id"]
        assert second.headers["Idempotent-Replayed"] == "true"
        reused = await client.post("/v1/ai/async", json=chat_body("something else"), headers=headers)
        assert reused.status_code == 422
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        third = await client.post("/v1/ai/async", json=chat_body("once"), headers={"Idempotency-Key": "order-43"})
        assert third.json()["channel_id"] != first.json()["channel_id"]


async def test_concurrent_repeats_with_one_key_make_one_request(gw: RunningGateway) -> None:
    async with gw.client() as client:
        responses = await asyncio.gather(
            *(
                client.post("/v1/ai/async", json=chat_body("race"), headers={"Idempotency-Key": "same"})
                for _ in range(8)
            )
        )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["channel_id"] for r in responses}) == 1


async def test_request_of_another_project_is_not_found(gw: RunningGateway) -> None:
    store = gw.gateway.store
    other_project = await store.ensure_project("other")
    other_key, _ = await store.create_api_key(other_project, "other")
    async with gw.client() as client:
        accepted = (await client.post("/v1/ai/async", json=chat_body())).json()
        response = await client.get(
            f"/v1/requests/{accepted['channel_id']}", headers={"Authorization": f"Bearer {other_key}"}
        )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "workflow"),
        ({"workflow": "demo", "messages": []}, "messages"),
        ({"workflow": "demo"}, "messages"),
        ({"workflow": "demo", "messages": "hello"}, "messages"),
        ({"workflow": "demo", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"workflow": "demo", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"workflow": 7, "messages": [{"role": "user", "content": "x"}]}, "workflow"),
        ({**chat_body(), "delivery_method": "pigeon"}, "delivery_method"),
        ({**chat_body(), "metadata": [1, 2]}, "metadata"),
        ({**chat_body(), "temperature": 9}, "temperature"),
    ],
)
async def test_malformed_bodies_are_422_naming_the_field(gw: RunningGateway, body: dict, field: str) -> None:
    async with gw.client() as client:
        response = await client.post("/v1/ai/async", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(field + ":"), error["message"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"delivery_method": "none", "webhook_url": "https://example.com/hook"}, "delivery_method 'none' sends no"),
        ({"delivery_method": "none", "events": ["webhook_received"]}, "delivery_method 'none' sends no"),
        ({"delivery_method": "webhook"}, "delivery_method 'webhook' needs a webhook_url"),
    ],
)
async def test_a_delivery_method_the_request_contradicts_is_422(
    gw: RunningGateway, extra: dict[str, Any], message: str
) -> None:
    async with gw.client() as client:
        response = await client.post("/v1/ai/async", json=chat_body(**extra))
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_delivery"
        assert response.json()["error"]["message"].startswith(message)
        accepted = await client.post("/v1/ai/async", json=chat_body(delivery_method="none"))
        assert accepted.status_code == 202  # none: the channel only, which is all this request needs
        record = await gw.gateway.store.get_request(accepted.json()["channel_id"])
    assert record is not None and record.plan == {"kind": "chat", "target": None, "callback_event": None,
                                                  "lifecycle": []}  # fmt: skip


async def test_invalid_json_is_422(gw: RunningGateway) -> None:
    async with gw.client() as client:
        response = await client.post("/v1/ai/async", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]["message"]


async def test_unknown_workflow_is_404_naming_it(gw: RunningGateway) -> None:
    async with gw.client() as client:
        response = await client.post("/v1/ai/async", json=chat_body(workflow="nope_flow"))
    assert response.status_code == 404
    assert "'nope_flow'" in response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "workflow_not_found"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic abc", "Bearer"])
async def test_missing_or_wrong_api_key_is_401(gw: RunningGateway, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with httpx.AsyncClient(base_url=gw.url) as client:
        response = await client.post("/v1/ai/async", json=chat_body(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["message"]


async def test_body_over_the_limit_is_413(start_gateway) -> None:
    gw = await start_gateway(max_body_bytes=2_000)
    big = chat_body("x" * 5_000)
    async with gw.client() as client:
        declared = await client.post("/v1/ai/async", json=big)

        async def chunks():
            payload = json.dumps(big).encode()
            for i in range(0, len(payload), 500):
                yield payload[i : i + 500]

        streamed = await client.post("/v1/ai/async", content=chunks(), headers={"Content-Type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"


async def test_openapi_describes_every_route(gw: RunningGateway) -> None:
    async with gw.client() as client:
        spec = (await client.get("/openapi.json")).json()
    for path in (
        "/v1/ai/async",
        "/v1/ai",
        "/v1/requests/{request_id}",
        "/v1/channels/{channel_id}/events",
        "/v1/ws",
        "/healthz",
        "/readyz",
    ):
        assert path in spec["paths"], path


async def test_request_schema_overrides_the_workflows(gw: RunningGateway) -> None:
    override = {"answer": "string", "mood": "happy | sad"}
    async with gw.client() as client:
        response = await client.post("/v1/ai", json=chat_body("thanks, great", schema=override))
        assert response.status_code == 200, response.text
        assert set(response.json()["data"]) == {"answer", "mood"}
        assert response.json()["data"]["mood"] in ("happy", "sad")
        bad = await client.post("/v1/ai/async", json=chat_body(schema={"items": "array<string"}))
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_schema"
    assert "schema.items" in bad.json()["error"]["message"]

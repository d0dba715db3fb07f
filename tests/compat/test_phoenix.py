"""The Phoenix Channels endpoint driven by the real `phoenix` JS client, the way @modelriver/client drives it:
plain async requests, the event-driven flow with a backend calling back, late joins and resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compat.node import needs_node, phoenix_client, pushes
from tests.compat.workflows import ask, finished, start
from tests.conftest import RunningGateway, StartGateway
from tests.delivery.receiver import Received, running_receiver

pytestmark = needs_node


def topic_of(accepted: dict[str, Any]) -> str:
    return accepted["websocket_channel"]


def responses(lines: list[dict[str, Any]], topic: str) -> list[dict[str, Any]]:
    return [line["payload"] for line in pushes(lines, topic, "response")]


async def submit(gw: RunningGateway, body: dict[str, Any]) -> dict[str, Any]:
    async with gw.client() as client:
        reply = await client.post("/v1/ai/async", json=body)
    assert reply.status_code == 202, reply.text
    return reply.json()


async def test_plain_async_request_pushes_one_success_response(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    body = ask("paced", metadata={"segment": "pro"}, user_id="u-42")  # paced: the client joins mid-stream
    accepted = await submit(gw, body)
    assert accepted["status"] == "pending" and accepted["project_id"]
    topic = topic_of(accepted)
    assert topic == f"ai_response:{accepted['project_id']}:{accepted['channel_id']}"

    lines = await phoenix_client(
        f"{gw.ws_url}/socket",
        accepted["ws_token"],
        topic,
        channelHeartbeat=True,
        minHeartbeats=2,
        heartbeatIntervalMs=300,
    )
    async with gw.client() as client:
        record = await finished(client, accepted["channel_id"])

    joined = [line for line in lines if line["kind"] == "joined"]
    assert joined and joined[0]["reply"]["channel_id"] == accepted["channel_id"]
    assert any(line["kind"] == "channel_heartbeat" for line in lines)  # the SDK's channel heartbeat is answered
    socket_beats = [line for line in lines if line.get("topic") == "phoenix" and line.get("event") == "phx_reply"]
    assert len(socket_beats) >= 2 and all(beat["payload"]["status"] == "ok" for beat in socket_beats)

    [response] = responses(lines, topic)
    assert response["status"] == "success"
    # phoenix.js handed it to the channel's `response` listener (pushes with a stale join_ref would be dropped)
    assert [line["status"] for line in lines if line["kind"] == "response"] == ["success"]
    assert response["channel_id"] == accepted["channel_id"]
    assert response["data"] == record["data"] and response["data"]["sentiment"] == "positive"
    assert json.loads(response["content"]) == record["data"]
    assert response["model"] == "sim-1"
    meta = response["meta"]
    assert meta["status"] == "success" and meta["workflow"] == "paced"
    assert (meta["used_provider"], meta["used_model"]) == ("slowsim", "sim-1")
    assert meta["attempts"] == [{"provider": "slowsim", "model": "sim-1", "status": "success"}]
    assert meta["usage"]["total_tokens"] == meta["usage"]["prompt_tokens"] + meta["usage"]["completion_tokens"] > 0
    assert meta["structured_output"] is True
    assert response["customer_data"] == {
        "user_id": "u-42",
        "metadata.segment": "pro",
        "messages.0.content": "I love this product",
    }

    # token chunks go out as an extra event (ignored by ModelRiver's SDK), in order, before the response
    chunks = pushes(lines, topic, "chunk")
    assert chunks and "".join(c["payload"]["text"] for c in chunks) == response["content"]
    seqs = [c["payload"]["seq"] for c in chunks]
    assert seqs == sorted(seqs) and seqs[-1] < response["seq"]
    # the server closes the topic after the terminal push; nothing follows it
    topic_events = pushes(lines, topic)
    assert topic_events[-1]["event"] == "phx_close" and topic_events[-2]["event"] == "response"
    assert lines[-1]["kind"] != "timeout"


async def test_late_join_on_the_older_topic_gets_the_result(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    accepted = await submit(gw, ask("text_only"))
    async with gw.client() as client:
        record = await finished(client, accepted["channel_id"])
    topic = f"ai_response:{accepted['channel_id']}"  # what the SDK joins without `websocketChannel`
    # phoenix.js >= 1.8 can carry the token as `authToken` (a WebSocket subprotocol) instead of a URL parameter
    lines = await phoenix_client(f"{gw.ws_url}/socket", accepted["ws_token"], topic, authToken=True)
    [response] = responses(lines, topic)
    assert response["status"] == "success" and response["data"] == record["data"]
    assert response["content"] == record["data"]["content"]  # plain text comes back as text
    assert any(line["kind"] == "closed" for line in lines)


async def test_resume_with_after_sends_only_what_follows(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    accepted = await submit(gw, ask("plain"))
    url, token, topic = f"{gw.ws_url}/socket", accepted["ws_token"], topic_of(accepted)
    first = await phoenix_client(url, token, topic)
    chunks = pushes(first, topic, "chunk")
    middle = chunks[len(chunks) // 2]["payload"]["seq"]
    resumed = await phoenix_client(url, token, topic, params={"after": middle})
    seqs = [line["payload"]["seq"] for line in pushes(resumed, topic) if "seq" in (line["payload"] or {})]
    assert seqs and min(seqs) > middle
    assert responses(resumed, topic)[-1]["data"] == responses(first, topic)[-1]["data"]


async def test_failed_request_pushes_an_error_response(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    accepted = await submit(gw, ask("broken"))
    topic = topic_of(accepted)
    lines = await phoenix_client(f"{gw.ws_url}/socket", accepted["ws_token"], topic)
    [response] = responses(lines, topic)
    assert response["status"] == "error" and response["data"] is None
    assert response["error"]["message"] and response["error"]["details"]["code"]
    assert response["meta"]["status"] == "error" and response["meta"]["workflow"] == "broken"


async def test_join_errors_reach_the_client(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    accepted = await submit(gw, ask("text_only"))
    url, token = f"{gw.ws_url}/socket", accepted["ws_token"]
    wrong_project = f"ai_response:proj_someoneelse:{accepted['channel_id']}"
    lines = await phoenix_client(url, token, wrong_project)
    assert {"kind": "join_error", "reason": "unauthorized_project_access"} in lines
    lines = await phoenix_client(url, token, "ai_response:a:b:c")
    assert {"kind": "join_error", "reason": "invalid_channel_format"} in lines


# The event-driven flow: the backend's webhook handler answers at once and calls back in the background, as
# ModelRiver's framework guides do. Both callback forms: the seed article's bare object and {data, task_id, metadata}.
CALLBACK_FORMS = {
    "bare": lambda ai, meta: {"id": "msg-1", "conversation_id": meta["conversation_id"], **ai},
    "wrapped": lambda ai, meta: {
        "data": {**ai, "id": "msg-1"},
        "task_id": "task-9",
        "metadata": {"processed_by": "backend"},
    },
}


@pytest.mark.parametrize("form", sorted(CALLBACK_FORMS))
async def test_event_driven_flow_pushes_ai_generated_then_completed(
    start_gateway: StartGateway, tmp_path: Path, form: str
) -> None:
    gw = await start(start_gateway, tmp_path)
    webhooks: list[dict[str, Any]] = []
    callbacks: list[httpx.Response] = []
    background: set[asyncio.Task[None]] = set()

    async def call_back(payload: dict[str, Any]) -> None:
        enriched = CALLBACK_FORMS[form](payload["ai_response"]["data"], payload["metadata"])
        async with httpx.AsyncClient(timeout=10) as client:
            callbacks.append(await client.post(payload["callback_url"], json=enriched))

    async def on_webhook(item: Received) -> None:
        payload = json.loads(item.body)
        webhooks.append(payload)
        if payload["type"] == "task.ai_generated":
            task = asyncio.create_task(call_back(payload))
            background.add(task)

    async with running_receiver(on_request=on_webhook) as receiver:
        body = ask(
            "mr_chatbot_workflow", webhook_url=receiver.url, events=["new_chat"], metadata={"conversation_id": "conv-1"}
        )
        accepted = await submit(gw, body)
        topic = topic_of(accepted)
        # ModelRiver's chatbot frontend hands the SDK the async response's websocket_url as is
        lines = await phoenix_client(accepted["websocket_url"], accepted["ws_token"], topic)
        await asyncio.gather(*background)

    assert [r.status_code for r in callbacks] == [200]
    [ai_generated, completed] = responses(lines, topic)
    assert [line["status"] for line in lines if line["kind"] == "response"] == ["ai_generated", "completed"]
    ai_data = webhooks[0]["ai_response"]["data"]
    assert ai_generated["status"] == "ai_generated"
    assert ai_generated["channel_id"] == accepted["channel_id"] and ai_generated["event_name"] == "new_chat"
    assert ai_generated["meta"]["duration_ms"] >= 0 and ai_generated["data"] == ai_data
    assert ai_generated["customer_data"] == {"metadata.conversation_id": "conv-1"}

    assert completed["status"] == "completed" and completed["channel_id"] == accepted["channel_id"]
    assert completed["customer_data"] == {"metadata.conversation_id": "conv-1"}
    assert completed["ai_response"]["data"] == ai_data
    if form == "bare":
        assert completed["data"] == {"id": "msg-1", "conversation_id": "conv-1", **ai_data}
        assert completed["task_id"] is None
    else:
        assert completed["data"] == {**ai_data, "id": "msg-1"}
        assert completed["task_id"] == "task-9"
        assert completed["callback_metadata"] == {"processed_by": "backend"}
    # a late join, after the callback arrived, still gets both pushes with the same content
    late = responses(await phoenix_client(f"{gw.ws_url}/socket", accepted["ws_token"], topic), topic)
    assert [r["status"] for r in late] == ["ai_generated", "completed"]
    assert late[0]["data"] == ai_data and late[1]["data"] == completed["data"]
    # the webhook's progress is on the channel too, and the socket ends with the topic closed
    assert [p["payload"]["state"] for p in pushes(lines, topic, "progress") if p["payload"]["type"] == "webhook"][
        :1
    ] == ["sent"]
    assert pushes(lines, topic)[-1]["event"] == "phx_close"

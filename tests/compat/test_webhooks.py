"""Webhook bodies carry ModelRiver's fields beside Sluice's, and the callback takes every form ModelRiver's guides
and the seed article use, with the callback token or the project's API key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compat.workflows import ask, start
from tests.conftest import RunningGateway, StartGateway
from tests.delivery.helpers import channel_events
from tests.delivery.receiver import json_of, running_receiver


async def submit(gw: RunningGateway, body: dict[str, Any]) -> dict[str, Any]:
    async with gw.client() as client:
        reply = await client.post("/v1/ai/async", json=body)
    assert reply.status_code == 202, reply.text
    return reply.json()


async def test_callback_webhook_has_modelriver_fields(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        body = ask(
            "mr_chatbot_workflow", webhook_url=receiver.url, events=["new_chat"], metadata={"conversation_id": "conv-7"}
        )
        accepted = await submit(gw, body)
        payload = json_of(await receiver.next())
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.post(payload["callback_url"], json={"ok": True})).status_code == 200
        await channel_events(accepted["websocket_url"])
    assert payload["type"] == "task.ai_generated" and payload["event"] == "new_chat"
    assert payload["callback_required"] is True and payload["timestamp"].endswith("Z")
    assert payload["channel_id"] == accepted["channel_id"]
    assert payload["customer_data"] == {"metadata.conversation_id": "conv-7"}
    assert payload["meta"]["workflow"] == "mr_chatbot_workflow" and payload["meta"]["attempts"]
    assert payload["ai_response"]["data"]["sentiment"] == "positive"  # Sluice's (and the seed's) fields too
    assert payload["metadata"] == {"conversation_id": "conv-7"} and payload["callback_expires_at"]


async def test_lifecycle_webhook_has_modelriver_fields(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        await submit(gw, ask("plain", webhook_url=receiver.url, metadata={"segment": "pro"}, user_id="u-5"))
        payload = json_of(await receiver.next())
    assert payload["type"] == "task.completed" and payload["callback_required"] is False
    # the same customer_data as the Phoenix pushes and the wrapped format: echo fields + extra top-level fields
    assert payload["customer_data"] == {
        "metadata.segment": "pro",
        "messages.0.content": "I love this product",
        "user_id": "u-5",
    }
    assert payload["ai_response"]["data"] == payload["data"] and payload["meta"]["workflow"] == "plain"


# Each callback form → what the channel's terminal event carries (the seed's bare object, ModelRiver's wrapped one).
FORMS: dict[str, tuple[Any, dict[str, Any]]] = {
    "bare": ({"id": "m1", "reply": "enriched"}, {"data": {"id": "m1", "reply": "enriched"}}),
    "wrapped": (
        {"data": {"id": "m1"}, "task_id": "t1", "metadata": {"by": "backend"}},
        {"data": {"id": "m1"}, "task_id": "t1", "callback_metadata": {"by": "backend"}},
    ),
    "wrapped-data-only": ({"data": {"id": "m2"}}, {"data": {"id": "m2"}}),
}


@pytest.mark.parametrize("auth", ["token", "api_key"])
@pytest.mark.parametrize("form", sorted(FORMS))
async def test_each_callback_form_ends_the_channel(
    start_gateway: StartGateway, tmp_path: Path, form: str, auth: str
) -> None:
    gw = await start(start_gateway, tmp_path)
    sent, expected = FORMS[form]
    async with running_receiver() as receiver:
        accepted = await submit(gw, ask("mr_chatbot_workflow", webhook_url=receiver.url, events=["webhook_received"]))
        payload = json_of(await receiver.next())
        url = payload["callback_url"]
        headers = {}
        if auth == "api_key":  # the token-less URL with the project's key, as ModelRiver's guides allow
            url, headers = url.split("?")[0], {"Authorization": f"Bearer {gw.api_key}"}
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.post(
                url, content=json.dumps(sent), headers={**headers, "Content-Type": "application/json"}
            )
        assert reply.status_code == 200, reply.text
        events = await channel_events(accepted["websocket_url"])
    terminal = events[-1]
    assert terminal["type"] == "response" and terminal["data"] == expected["data"]
    assert terminal["meta"].get("task_id") == expected.get("task_id")
    assert terminal["meta"].get("callback_metadata") == expected.get("callback_metadata")
    assert terminal["meta"]["enriched"] is True


async def test_callback_rejection_ends_with_an_error(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted = await submit(gw, ask("mr_chatbot_workflow", webhook_url=receiver.url, events=["new_chat"]))
        payload = json_of(await receiver.next())
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.post(payload["callback_url"], json={"error": "invalid", "message": "off-topic"})
        assert reply.status_code == 200
        events = await channel_events(accepted["websocket_url"])
    assert events[-1]["type"] == "error" and "off-topic" in events[-1]["message"]

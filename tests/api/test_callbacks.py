"""`POST /v1/callback/{channel_id}`: the bare object, `{data, task_id, metadata}`, a rejection, token rules."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.conftest import RunningGateway, StartGateway, chat_body
from tests.delivery.helpers import FAST, channel_events, workflow_file
from tests.delivery.receiver import Receiver, json_of, running_receiver


async def _await_webhook(
    gw: RunningGateway, receiver: Receiver, workflow: str = "slow_callback", **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit a request with the callback step; (accepted body, webhook payload)."""
    body = chat_body(
        "I love this",
        workflow=workflow,
        webhook_url=receiver.url,
        metadata={"conversationId": "c-1"},
        **{"events": ["webhook_received"], **extra},
    )
    async with gw.client() as client:
        accepted = (await client.post("/v1/ai/async", json=body)).json()
    return accepted, json_of(await receiver.next())


async def _gateway(start_gateway: StartGateway, tmp_path: Path) -> RunningGateway:
    return await start_gateway(config_path=workflow_file(tmp_path), extra=FAST)


async def test_bare_enriched_object_becomes_the_terminal_response(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted, payload = await _await_webhook(gw, receiver)
        assert payload["type"] == "task.ai_generated" and payload["callback_required"] is True
        assert payload["event"] == "webhook_received"
        assert payload["channel_id"] == accepted["channel_id"]
        assert payload["metadata"] == {"conversationId": "c-1"}
        assert payload["ai_response"]["data"]["sentiment"] == "positive"
        enriched = {"id": "msg-1", "conversation_id": "c-1", **payload["ai_response"]["data"]}
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(10), websockets.connect(accepted["websocket_url"]) as ws:
            async for frame in ws:  # call back once the channel shows the webhook delivered
                events.append(json.loads(frame))
                if events[-1]["type"] == "webhook" and events[-1]["state"] == "delivered":
                    break
            async with httpx.AsyncClient(timeout=10) as client:  # no API key: the URL's token is the credential
                answer = await client.post(payload["callback_url"], json=enriched)
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "completed"
            events += [json.loads(frame) async for frame in ws]
        events = [e for e in events if e["type"] != "heartbeat"]
    terminal = events[-1]
    assert terminal["type"] == "response"
    assert terminal["data"]["id"] == "msg-1" and terminal["data"]["conversation_id"] == "c-1"
    assert terminal["meta"]["enriched"] is True
    states = [(e["state"], e["attempt"]) for e in events if e["type"] == "webhook"]
    assert states == [("sent", 1), ("delivered", 1)]
    assert {"type": "status", "status": "awaiting_callback"}.items() <= next(
        e for e in events if e.get("status") == "awaiting_callback"
    ).items()
    async with gw.client() as client:
        record = (await client.get(f"/v1/requests/{accepted['channel_id']}")).json()
    assert record["status"] == "completed" and record["data"]["id"] == "msg-1"


async def test_wrapped_callback_with_api_key_and_task_id(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted, payload = await _await_webhook(gw, receiver)
        bare_url = payload["callback_url"].split("?", 1)[0]
        async with gw.client() as client:
            answer = await client.post(
                bare_url, json={"data": {"reply": "edited", "id": 7}, "task_id": "t-9", "metadata": {"source": "crm"}}
            )
        assert answer.status_code == 200, answer.text
        events = await channel_events(accepted["websocket_url"])
    terminal = events[-1]
    assert terminal["data"] == {"reply": "edited", "id": 7}
    assert terminal["meta"]["task_id"] == "t-9" and terminal["meta"]["callback_metadata"] == {"source": "crm"}


async def test_error_object_ends_the_channel_with_its_reason(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted, payload = await _await_webhook(gw, receiver)
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                payload["callback_url"], json={"error": "moderation", "message": "reply mentions a competitor"}
            )
        assert answer.status_code == 200
        events = await channel_events(accepted["websocket_url"])
    terminal = events[-1]
    assert terminal["type"] == "error" and terminal["code"] == "rejected_by_backend"
    assert "reply mentions a competitor" in terminal["message"]


async def test_replayed_token_is_refused(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted, payload = await _await_webhook(gw, receiver)
        async with httpx.AsyncClient(timeout=10) as client:
            first = await client.post(payload["callback_url"], json={"ok": 1})
            again = await client.post(payload["callback_url"], json={"ok": 2})
        events = await channel_events(accepted["websocket_url"])
    assert first.status_code == 200
    assert again.status_code == 409 and again.json()["error"]["code"] == "callback_already_used"
    assert [e for e in events if e["type"] in ("response", "error")] == [events[-1]]
    assert events[-1]["data"] == {"ok": 1}


async def test_expired_token_is_refused(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted, payload = await _await_webhook(gw, receiver, workflow="deliver_fast")
        events = await channel_events(accepted["websocket_url"])  # the 400 ms policy ends the channel
        async with httpx.AsyncClient(timeout=10) as client:
            late = await client.post(payload["callback_url"], json={"ok": 1})
    assert events[-1]["type"] == "response" and events[-1]["meta"]["enriched"] is False
    assert late.status_code == 410 and late.json()["error"]["code"] == "callback_expired"


async def test_bad_token_wrong_key_and_bad_bodies(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted, payload = await _await_webhook(gw, receiver)
        bare_url = payload["callback_url"].split("?", 1)[0]
        async with httpx.AsyncClient(timeout=10) as client:
            forged = await client.post(bare_url + "?token=cbt_forged", json={"ok": 1})
            anonymous = await client.post(bare_url, json={"ok": 1})
            not_json = await client.post(
                payload["callback_url"], content=b"{nope", headers={"content-type": "application/json"}
            )
            not_object = await client.post(payload["callback_url"], json=[1, 2])
            unknown = await client.post(f"{gw.url}/v1/callback/nope?token=x", json={})
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_callback_token"
        assert anonymous.status_code == 401
        assert not_json.status_code == 422 and not_object.status_code == 422
        assert unknown.status_code == 404
        # none of these used the token up
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.post(payload["callback_url"], json={"ok": 1})).status_code == 200
        await channel_events(accepted["websocket_url"])


async def test_lifecycle_webhook_without_callback_step(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        body = chat_body("great", workflow="slow_callback", webhook_url=receiver.url, events=["request.completed"])
        async with gw.client() as client:
            accepted = (await client.post("/v1/ai/async", json=body)).json()
        events = await channel_events(accepted["websocket_url"])
        payload = json_of(await receiver.next())
    assert events[-1]["type"] == "response" and "enriched" not in events[-1]["meta"]
    assert payload["type"] == "task.completed" and payload["event"] == "request.completed"
    assert payload["callback_required"] is False and payload["data"] == events[-1]["data"]


async def test_concurrent_callbacks_one_wins(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted, payload = await _await_webhook(gw, receiver)
        async with httpx.AsyncClient(timeout=10) as client:
            answers = await asyncio.gather(*(client.post(payload["callback_url"], json={"n": n}) for n in range(8)))
        events = await channel_events(accepted["websocket_url"])
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 7
    winner = next(n for n, a in enumerate(answers) if a.status_code == 200)
    terminals = [e for e in events if e["type"] in ("response", "error")]
    assert terminals == [events[-1]] and events[-1]["data"] == {"n": winner}


async def test_a_subscribed_lifecycle_webhook_follows_the_callback_step(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """`events: ["webhook_received", "request.completed"]`: the enriched end is also sent as `task.completed`
    (recorded with the end, sent after its terminal event)."""
    gw = await _gateway(start_gateway, tmp_path)
    async with running_receiver() as receiver:
        accepted, payload = await _await_webhook(gw, receiver, events=["webhook_received", "request.completed"])
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.post(payload["callback_url"], json={"enriched": "yes"})).status_code == 200
        events = await channel_events(accepted["websocket_url"])
        completed = json_of(await receiver.next())
    assert events[-1]["type"] == "response" and events[-1]["data"] == {"enriched": "yes"}
    assert completed["type"] == "task.completed" and completed["event"] == "request.completed"
    assert completed["data"] == {"enriched": "yes"} and completed["meta"]["enriched"] is True

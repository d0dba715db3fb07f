"""The chatbot backend's webhook endpoint refuses anything not signed with the project's secret."""

from __future__ import annotations

import json
import time

import httpx

from sluice.cli.demo import load_chatbot
from sluice.client import AsyncSluiceClient
from sluice.delivery.signing import generate_secret, signature_headers
from tests.conftest import RunningGateway


def signed(body: dict[str, object], secret: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"content-type": "application/json", **signature_headers("msg_1", raw, [secret])}


async def test_the_webhook_endpoint_checks_signatures(gw: RunningGateway) -> None:
    chatbot = load_chatbot()
    secret = generate_secret()
    app = chatbot.create_app(
        chatbot.ChatbotSettings(
            sluice_url=gw.url, api_key=gw.api_key, public_url="http://127.0.0.1:9", webhook_secret=secret
        )
    )
    payload = {
        "type": "task.ai_generated",
        "channel_id": "unknown",
        "callback_url": f"{gw.url}/v1/callback/x",
        "ai_response": {"data": {"reply": "hi"}},
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chatbot") as client:
        unsigned = await client.post("/webhook", json=payload)
        assert unsigned.status_code == 401

        raw, headers = signed(payload, generate_secret())
        assert (await client.post("/webhook", content=raw, headers=headers)).status_code == 401

        raw, headers = signed(payload, secret)
        tampered = raw.replace(b"hi", b"ho")
        assert (await client.post("/webhook", content=tampered, headers=headers)).status_code == 401

        stale = {**headers, **signature_headers("msg_2", raw, [secret], timestamp=int(time.time()) - 3600)}
        assert (await client.post("/webhook", content=raw, headers=stale)).status_code == 401

        # Correctly signed, but for a channel this backend never created: not ours to call back.
        assert (await client.post("/webhook", content=raw, headers=headers)).status_code == 404


async def test_chat_submits_with_the_webhook_step_and_conversation_ids(gw: RunningGateway) -> None:
    chatbot = load_chatbot()
    app = chatbot.create_app(
        chatbot.ChatbotSettings(sluice_url=gw.url, api_key=gw.api_key, public_url="http://127.0.0.1:9", webhooks=False)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chatbot") as client:
        first = (await client.post("/chat", json={"message": "hello"})).json()
        assert set(first) >= {"channel_id", "websocket_url", "ws_token", "conversation_id", "message_id"}
        async with AsyncSluiceClient(gw.url, api_key=gw.api_key) as sluice:
            reply = (await sluice.wait(first["channel_id"])).data["reply"]
        second = await client.post("/chat", json={"message": "again", "conversation_id": first["conversation_id"]})
        assert second.json()["conversation_id"] == first["conversation_id"]
        record = await gw.gateway.store.get_request(second.json()["channel_id"])
        assert record is not None
        assert record.metadata == {"conversationId": first["conversation_id"], "messageId": second.json()["message_id"]}
        # The second request carries the conversation so far (with webhooks off, the first reply is read back from
        # the request log).
        assert record.body["messages"] == [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": reply},
            {"role": "user", "content": "again"},
        ]
        assert (await client.post("/chat", json={"message": ""})).status_code == 422

"""The Node backend of examples/node-backend against a real Sluice: POST /chat → signed webhook → enrichment →
callback → the browser's WebSocket ends with the enriched object (the seed article's flow, base URL changed)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sluice.delivery.signing import generate_secret, signature_headers
from tests.conftest import RunningGateway, StartGateway, free_port
from tests.delivery.helpers import FAST, admin_client, channel_events, eventually

BACKEND = Path(__file__).resolve().parents[2] / "examples" / "node-backend"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node 20 is needed for examples/node-backend")


async def _start_backend(gw: RunningGateway, secret: str) -> tuple[asyncio.subprocess.Process, str]:
    assert (BACKEND / "node_modules" / "express").is_dir(), "run `npm ci` in examples/node-backend first"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SLUICE_URL": gw.url,
        "SLUICE_API_KEY": gw.api_key,
        "WEBHOOK_SECRET": secret,
        "PORT": str(port),
        "BACKEND_PUBLIC_URL": url,
    }
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE, "index.js", cwd=BACKEND, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with httpx.AsyncClient(base_url=url) as client, asyncio.timeout(15):
        while True:
            assert process.returncode is None, "the Node backend exited"
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return process, url
            except httpx.TransportError:
                await asyncio.sleep(0.05)


@pytest.fixture
async def node_backend(start_gateway: StartGateway) -> AsyncIterator[tuple[RunningGateway, str]]:
    gw = await start_gateway(env="development")  # the backend listens on loopback
    async with admin_client(gw) as admin:
        secret = (await admin.post("/v1/admin/webhooks/secrets/rotate", json={"overlap_seconds": 0})).json()["secret"]
    process, url = await _start_backend(gw, secret)
    try:
        yield gw, url
    finally:
        process.terminate()
        await process.wait()


async def test_chat_webhook_enrichment_callback_reaches_the_browser(node_backend: tuple[RunningGateway, str]) -> None:
    gw, url = node_backend
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        chat = await client.post("/chat", json={"message": "I love this product, thanks!"})
    assert chat.status_code == 200, chat.text
    handed = chat.json()
    assert set(handed) == {"channel_id", "websocket_url", "ws_token"}
    events = await channel_events(handed["websocket_url"], wait=20)
    terminal = events[-1]
    assert terminal["type"] == "response", terminal
    data = terminal["data"]
    uuid.UUID(data["id"])
    uuid.UUID(data["conversation_id"])
    assert data["sentiment"] == "positive" and data["reply"]
    assert terminal["meta"]["enriched"] is True
    kinds = [e["type"] for e in events]
    assert kinds.index("webhook") > kinds.index("partial")  # streamed first, then the webhook, then the final
    # the backend calls back before it answers the webhook (as in the article), so `sent` is the last webhook event
    # the channel shows; the delivery itself is recorded as delivered
    assert [e["state"] for e in events if e["type"] == "webhook"] == ["sent"]
    async with gw.client() as client:
        record = (await client.get(f"/v1/requests/{handed['channel_id']}")).json()
    assert record["status"] == "completed" and record["data"]["id"] == data["id"]
    async with admin_client(gw) as admin:

        async def delivered() -> bool:
            found = (
                await admin.get("/v1/admin/webhooks/deliveries", params={"request_id": handed["channel_id"]})
            ).json()["deliveries"]
            return bool(found) and found[0]["status"] == "delivered"

        await eventually(delivered)


async def test_backend_refuses_unsigned_and_tampered_webhooks(node_backend: tuple[RunningGateway, str]) -> None:
    _, url = node_backend
    body = b'{"type":"task.ai_generated","channel_id":"x","ai_response":{"data":{}},"callback_url":"http://x"}'
    forged = signature_headers("msg_1", body, [generate_secret()])
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        unsigned = await client.post("/webhook/sluice", content=body, headers={"content-type": "application/json"})
        wrong = await client.post(
            "/webhook/sluice", content=body, headers={"content-type": "application/json", **forged}
        )
    assert unsigned.status_code == 401 and wrong.status_code == 401
    assert wrong.json()["error"] == "no matching signature"


SEED = Path(__file__).resolve().parent / "seed_backend"
SEED_CATALOG = """
providers:
  sim: {type: simulated, pace_ms: 0}
workflows:
  mr_chatbot_workflow:
    event: new_chat
    chain: [{provider: sim, model: sim-1}]
    schema:
      reply: string
      summary: string
      sentiment: "positive | negative | neutral | mixed"
      confidence: number
      topics: "array<string>"
      action_items: "array<{task: string, priority: 'high' | 'medium' | 'low'}>"
"""


async def test_the_articles_own_backend_works_with_only_the_base_url_changed(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """tests/e2e/seed_backend/index.js is the article's code, verbatim; only `https://api.modelriver.com` changes."""
    assert (SEED / "node_modules" / "node-fetch").is_dir(), "run `npm ci` in tests/e2e/seed_backend first"
    config = tmp_path / "sluice.yaml"
    config.write_text(SEED_CATALOG)
    # fast retries: the article stores its pending entry only after Sluice answers, so a quick run's first webhook
    # can find nothing (404) — at-least-once delivery retries it
    gw = await start_gateway(env="development", config_path=config, extra=FAST)
    source = (SEED / "index.js").read_text()
    assert source.count("https://api.modelriver.com") == 1
    script = tmp_path / "index.js"
    script.write_text(source.replace("https://api.modelriver.com", gw.url))
    port = free_port()
    env = {
        **os.environ,
        "NODE_PATH": str(SEED / "node_modules"),
        "MODELRIVER_API_KEY": gw.api_key,
        "PORT": str(port),
        "BACKEND_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE, str(script), cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(15):
            assert b"Backend on" in await process.stdout.readline()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            handed = (await client.post("/chat", json={"message": "I love this, thanks"})).json()
        events = await channel_events(handed["websocket_url"], wait=20)
    finally:
        process.terminate()
        await process.wait()
    terminal = events[-1]
    assert terminal["type"] == "response", terminal
    uuid.UUID(terminal["data"]["id"])
    uuid.UUID(terminal["data"]["conversation_id"])
    assert terminal["data"]["sentiment"] == "positive" and terminal["meta"]["enriched"] is True

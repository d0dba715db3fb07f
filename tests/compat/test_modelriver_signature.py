"""A backend written for ModelRiver verifies Sluice's webhooks unchanged: tests/compat/modelriver_verifier.mjs runs
ModelRiver's own verification code in Node against real deliveries, with `data` and without, while the Standard
Webhooks signature of the same delivery still verifies."""

from __future__ import annotations

import json
import random
import secrets
import struct
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from sluice.delivery import jsjson
from sluice.delivery.signing import modelriver_signature
from sluice.webhooks import verify
from sluice.workflows.loader import ConfigError, parse_workflow
from tests.compat.node import NODE, ModelRiverBackend, modelriver_backend, needs_node
from tests.compat.workflows import ask, start
from tests.conftest import RunningGateway, StartGateway
from tests.delivery.helpers import admin_client, eventually
from tests.delivery.receiver import Received, json_of, running_receiver

pytestmark = needs_node

# What a callback may hand back, and so what the completed webhook's `data` carries: where JavaScript's
# JSON.stringify differs from orjson (index-like keys first, 1.0 → 1, big integers, exponents, escapes, non-ASCII).
TRICKY = {
    "reply": 'naïve café — 😀 \u2028 "quoted" \\ tab\t nul\u0001',
    "10": "ten",
    "2": "two",
    "02": "not an index",
    "confidence": 1.0,
    "tiny": 1e-7,
    "huge": 1e21,
    "big_int": 2**60,
    "negative_zero": -0.0,
    "nested": {"b": [1.5, 2.0, None, True, {"9": 0, "a": 1}], "a": {}},
}


async def project_secret(gw: RunningGateway, kind: str) -> dict[str, Any]:
    """A generated `whsec_` secret, or one brought from ModelRiver (any string the backend's WEBHOOK_SECRET holds)."""
    body: dict[str, Any] = {"overlap_seconds": 0}
    if kind == "modelriver":
        body["secret"] = "mr_" + secrets.token_hex(20)
    async with admin_client(gw) as client:
        reply = await client.post("/v1/admin/webhooks/secrets/rotate", json=body)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def submit(gw: RunningGateway, body: dict[str, Any]) -> str:
    async with gw.client() as client:
        reply = await client.post("/v1/ai/async", json=body)
    assert reply.status_code == 202, reply.text
    return str(reply.json()["channel_id"])


async def finished_deliveries(gw: RunningGateway, channel_id: str, count: int) -> list[dict[str, Any]]:
    """The request's deliveries with their attempt logs, once `count` of them are no longer pending (oldest first)."""
    async with admin_client(gw) as client:

        async def done() -> list[dict[str, Any]] | None:
            listed = (await client.get("/v1/admin/webhooks/deliveries", params={"request_id": channel_id})).json()
            over = [d for d in listed["deliveries"] if d["status"] != "pending"]
            if len(over) < count:
                return None
            return [(await client.get(f"/v1/admin/webhooks/deliveries/{d['id']}")).json() for d in reversed(over)]

        found: list[dict[str, Any]] = await eventually(done, wait=10)
    return found


@pytest.mark.parametrize("kind", ["modelriver", "whsec"])
async def test_modelriver_backend_verifies_webhooks_with_data(
    start_gateway: StartGateway, tmp_path: Path, kind: str
) -> None:
    gw = await start(start_gateway, tmp_path)
    secret = (await project_secret(gw, kind))["secret"]
    async with modelriver_backend(secret) as backend:
        body = ask("mr_chatbot_workflow", webhook_url=backend.url, events=["new_chat", "request.completed"])
        channel_id = await submit(gw, body)
        first = await backend.next()
        # the backend calls back with the project's API key (ModelRiver's guides); its object becomes the
        # completed webhook's `data`
        async with gw.client() as client:
            reply = await client.post(f"/v1/callback/{channel_id}", content=orjson.dumps(TRICKY))
        assert reply.status_code == 200, reply.text
        second = await backend.next()
    assert first == {"path": "/webhook/modelriver", "type": "task.ai_generated", "valid": True}
    assert second == {"path": "/webhook/modelriver", "type": "task.completed", "valid": True}
    deliveries = await finished_deliveries(gw, channel_id, 2)
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]
    assert deliveries[1]["payload"]["data"]["big_int"] == 2**60  # sent as Sluice stores it; only the MAC input differs


async def test_modelriver_backend_verifies_webhooks_without_data(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    secret = (await project_secret(gw, "modelriver"))["secret"]
    async with modelriver_backend(secret) as backend:
        channel_id = await submit(gw, ask("broken", webhook_url=backend.url))
        verdict = await backend.next()
    assert verdict == {"path": "/webhook/modelriver", "type": "task.failed", "valid": True}
    [delivery] = await finished_deliveries(gw, channel_id, 1)
    assert delivery["payload"]["data"] is None  # so the verifier fell back to "{timestamp}.{raw body}"
    assert delivery["status"] == "delivered"


async def replay(backend: ModelRiverBackend, item: Received, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST `body` with the headers Sluice sent with `item` (its signature headers; length and host recomputed)."""
    headers = {k: v for k, v in item.headers.items() if k.startswith(("x-modelriver-", "webhook-", "content-type"))}
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(backend.url, content=body, headers=headers)
    return reply.status_code, await backend.next()


def tamper_data(body: bytes) -> bytes:
    payload = json.loads(body)
    payload["data"]["reply"] = payload["data"]["reply"] + "!"
    return json.dumps(payload).encode()


def tamper_top_level(body: bytes) -> bytes:
    payload = json.loads(body)
    payload["channel_id"] = "someone-else"
    return json.dumps(payload).encode()


async def test_tampered_bodies_are_rejected_and_both_families_verify(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start(start_gateway, tmp_path)
    issued = await project_secret(gw, "modelriver")
    async with running_receiver() as receiver:
        await submit(gw, ask("plain", webhook_url=receiver.url))  # task.completed, with data
        with_data = await receiver.next()
        await submit(gw, ask("broken", webhook_url=receiver.url))  # task.failed, data null
        without_data = await receiver.next()
    assert json_of(with_data)["data"] and json_of(without_data)["data"] is None
    async with modelriver_backend(issued["secret"]) as backend:
        for item, tamper in ((with_data, tamper_data), (without_data, tamper_top_level)):
            # one delivery, both families: Standard Webhooks libraries accept it (with the whsec_ form of the secret)
            assert Webhook(issued["standard_webhooks_secret"]).verify(item.body, item.headers)
            verify(item.headers, item.body, issued["secret"])
            assert item.headers["x-modelriver-timestamp"] == item.headers["webhook-timestamp"]
            assert item.headers["x-modelriver-webhook-id"] == item.headers["webhook-id"]
            status, verdict = await replay(backend, item, item.body)
            assert status == 200 and verdict["valid"] is True
            status, verdict = await replay(backend, item, tamper(item.body))
            assert status == 401 and verdict == {
                "path": "/webhook/modelriver",
                "type": json_of(item)["type"],
                "valid": False,
                "error": "Invalid signature",
            }
    async with modelriver_backend("not-the-project-secret") as backend:
        status, verdict = await replay(backend, with_data, with_data.body)
    assert status == 401 and verdict["error"] == "Invalid signature"


async def test_turned_off_family_shows_the_refusal_with_a_hint(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    secret = (await project_secret(gw, "modelriver"))["secret"]
    async with modelriver_backend(secret) as backend:
        channel_id = await submit(gw, ask("mr_off", webhook_url=backend.url))
        verdicts = [await backend.next() for _ in range(3)]  # FAST: three attempts, then the dead letter
    assert {v["error"] for v in verdicts} == {"Missing X-ModelRiver-Signature header"}
    [delivery] = await finished_deliveries(gw, channel_id, 1)
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 401
    error = delivery["attempt_log"][0]["error"]
    assert error.startswith("401 Unauthorized: Unauthorized: Missing X-ModelRiver-Signature header. Hint: ")
    assert "modelriver_signature: false" in error


async def test_a_modelriver_secret_is_accepted_and_checked(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    async with admin_client(gw) as client:
        rotate = "/v1/admin/webhooks/secrets/rotate"
        imported = await client.post(rotate, json={"secret": "a" * 64, "overlap_seconds": 0})
        too_short = await client.post(rotate, json={"secret": "short"})
        spaced = await client.post(rotate, json={"secret": "has a space in it, sadly"})
        bad_whsec = await client.post(rotate, json={"secret": "whsec_not*base64*at*all"})
        generated = await client.post(rotate, json={})
    assert imported.status_code == 201 and imported.json()["secret"] == "a" * 64
    assert imported.json()["standard_webhooks_secret"] == "whsec_" + "YWFh" * 21 + "YQ=="
    assert [r.status_code for r in (too_short, spaced, bad_whsec)] == [422, 422, 422]
    assert "base64" in bad_whsec.json()["error"]["message"]
    assert generated.json()["standard_webhooks_secret"] == generated.json()["secret"]


def test_the_switch_is_a_boolean() -> None:
    chain = {"chain": [{"provider": "sim", "model": "m"}]}
    providers: Any = {"sim": object()}
    assert parse_workflow("w", chain, providers).modelriver_signature is True
    assert parse_workflow("w", {**chain, "modelriver_signature": False}, providers).modelriver_signature is False
    with pytest.raises(ConfigError, match="modelriver_signature: must be true or false"):
        parse_workflow("w", {**chain, "modelriver_signature": "no"}, providers)


def test_stringify_matches_node_on_random_doubles_and_keys() -> None:
    rng = random.Random(20)
    doubles = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(2000)]
    value = {**TRICKY, "doubles": [d for d in doubles if d == d and abs(d) != float("inf")]}
    text = orjson.dumps(value)
    assert NODE is not None
    script = (
        "let s = ''; process.stdin.on('data', (d) => (s += d))"
        ".on('end', () => process.stdout.write(JSON.stringify(JSON.parse(s))))"
    )
    node = subprocess.run([NODE, "-e", script], input=text, capture_output=True, check=True, timeout=30)
    assert node.stdout.decode() == jsjson.stringify(orjson.loads(text))


async def test_during_a_rotation_modelriver_gets_the_newest_secret(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    old = (await project_secret(gw, "modelriver"))["secret"]
    async with admin_client(gw) as client:
        new = (await client.post("/v1/admin/webhooks/secrets/rotate", json={"overlap_seconds": 3600})).json()["secret"]
    async with running_receiver() as receiver:
        await submit(gw, ask("plain", webhook_url=receiver.url))
        item = await receiver.next()
    stamp = item.headers["x-modelriver-timestamp"]
    assert item.headers["x-modelriver-signature"] == modelriver_signature(stamp, item.body, new)
    assert len(item.headers["webhook-signature"].split()) == 2  # Standard Webhooks carries both during the overlap
    verify(item.headers, item.body, old)

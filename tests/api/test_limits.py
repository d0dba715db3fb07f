"""Limits with clear errors: body size, message count and length, rate and concurrent streams per API key, and the
webhook SSRF guard at every place a webhook URL enters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import websockets

from sluice.api.conversation import MAX_TEXT
from sluice.settings import Settings
from sluice.store.schema import webhook_secrets
from tests.api.test_authorization import ws_close_code
from tests.conftest import MASTER_KEY, StartGateway, chat_body, paced_config, write_config
from tests.delivery.helpers import eventually
from tests.delivery.receiver import running_receiver


async def test_body_and_message_limits_say_what_is_wrong(start_gateway: StartGateway) -> None:
    gw = await start_gateway(max_body_bytes=MAX_TEXT + 100_000)  # room for one message just over its limit
    too_long_text = "x" * (MAX_TEXT + 1)
    async with gw.client() as client:
        too_big = await client.post("/v1/ai/async", json=chat_body("x" * (MAX_TEXT + 200_000)))
        too_many = await client.post(
            "/v1/ai/async", json={"workflow": "demo", "messages": [{"role": "user", "content": "hi"}] * 1001}
        )
        too_long = await client.post("/v1/ai/async", json=chat_body(too_long_text))
        none = await client.post("/v1/ai/async", json={"workflow": "demo", "messages": []})
        bad_role = await client.post(
            "/v1/ai/async", json={"workflow": "demo", "messages": [{"role": "robot", "content": "hi"}]}
        )
        # The OpenAI face: the same limits, as OpenAI's 400 with the field in `param`.
        completion = await client.post(
            "/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": too_long_text}]}
        )
    assert too_big.status_code == 413 and f"{MAX_TEXT + 100_000} bytes" in too_big.json()["error"]["message"]
    assert too_many.status_code == 422 and too_many.json()["error"]["message"].startswith("messages:")
    assert "1000" in too_many.json()["error"]["message"]
    assert too_long.status_code == 422
    assert too_long.json()["error"]["message"].startswith("messages[0].content:") and str(MAX_TEXT) in too_long.text
    assert none.status_code == 422 and none.json()["error"]["message"].startswith("messages:")
    assert bad_role.status_code == 422 and bad_role.json()["error"]["message"].startswith("messages[0].role:")
    assert completion.status_code == 400
    error = completion.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "messages[0].content")
    assert error["message"].startswith("messages[0].content:") and str(MAX_TEXT) in error["message"]


async def test_rate_limit_per_api_key_answers_429_with_retry_after(start_gateway: StartGateway) -> None:
    gw = await start_gateway(rate_limit="3/hour")
    other_key, _ = await gw.gateway.store.create_api_key(gw.gateway.default_project_id, "other")
    async with gw.client() as client:
        statuses = [(await client.post("/v1/ai/async", json=chat_body())).status_code for _ in range(3)]
        refused = await client.get("/v1/requests/nope")  # every API call counts, not only submissions
        others = await client.get("/v1/requests/nope", headers={"Authorization": f"Bearer {other_key}"})
        master = await client.get("/v1/requests/nope", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert statuses == [202, 202, 202]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert "3 requests in 3600s" in refused.json()["error"]["message"]
    assert others.status_code == 404 and master.status_code == 404  # other keys and the master key are unaffected


def test_limit_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"SLUICE_RATE_LIMIT": "600/min", "SLUICE_MAX_CONCURRENT_STREAMS": "8"})
    assert settings.rate_limit_window == (600, 60.0) and settings.max_concurrent_streams == 8
    with pytest.raises(ValueError, match="SLUICE_RATE_LIMIT"):
        Settings.from_env({"SLUICE_RATE_LIMIT": "lots"})
    with pytest.raises(ValueError, match="SLUICE_MAX_CONCURRENT_STREAMS"):
        Settings.from_env({"SLUICE_MAX_CONCURRENT_STREAMS": "0"})


async def test_concurrent_streams_per_api_key(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(max_concurrent_streams=1, config_path=paced_config(tmp_path, 40))
    other_key, _ = await gw.gateway.store.create_api_key(gw.gateway.default_project_id, "other")
    async with gw.client() as client:
        first, second = [(await client.post("/v1/ai/async", json=chat_body())).json() for _ in range(2)]
        third = (
            await client.post("/v1/ai/async", json=chat_body(), headers={"Authorization": f"Bearer {other_key}"})
        ).json()
        async with websockets.connect(first["websocket_url"]) as held:
            await held.recv()  # the first stream is open and holds this key's only slot
            assert await ws_close_code(second["websocket_url"]) == 4429
            sse = await client.get(f"/v1/channels/{second['channel_id']}/events", params={"token": second["ws_token"]})
            assert sse.status_code == 429 and sse.json()["error"]["code"] == "too_many_streams"
            streamed = await client.post("/v1/ai", json=chat_body(stream=True))
            assert streamed.status_code == 429 and "SLUICE_MAX_CONCURRENT_STREAMS" in streamed.text
            async with client.stream(
                "GET", f"/v1/channels/{third['channel_id']}/events", params={"token": third["ws_token"]}
            ) as other:
                assert other.status_code == 200  # another key has its own slots

        # closing the first stream frees the slot
        async def reopened() -> bool:
            async with client.stream(
                "GET", f"/v1/channels/{second['channel_id']}/events", params={"token": second["ws_token"]}
            ) as stream:
                return stream.status_code == 200

        assert await eventually(reopened)


SSRF_WORKFLOWS = """
providers:
  sim: {type: simulated, pace_ms: 0}
workflows:
  internal_hook:
    chain: [{provider: sim, model: sim-1}]
    webhook_url: "http://169.254.169.254/latest/meta-data"
"""


async def test_ssrf_guard_at_every_entry_point(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(
        env="production",
        config_path=write_config(tmp_path, SSRF_WORKFLOWS),
        extra={"webhook_retry_schedule": [0, 0.5], "webhook_jitter": 0},
    )
    admin = {"Authorization": f"Bearer {MASTER_KEY}"}
    hooks = [
        "http://127.0.0.1:9/hook",
        "http://[::ffff:127.0.0.1]/x",
        "http://2130706433/x",
        "http://10.0.0.1/",
        "http://metadata.google.internal/",
        "http://user:pw@example.com/",
        "ftp://example.com/",
    ]
    async with gw.client() as client:
        for url in hooks:
            for path in ("/v1/ai/async", "/v1/ai"):
                refused = await client.post(path, json=chat_body(webhook_url=url))
                assert refused.status_code == 422, (path, url, refused.text)
                assert refused.json()["error"]["code"] == "webhook_url_not_allowed"
        from_workflow = await client.post("/v1/ai/async", json=chat_body(workflow="internal_hook"))
        assert from_workflow.status_code == 422 and "link-local" in from_workflow.text
        stored = await client.post(
            "/v1/admin/workflows",
            headers=admin,
            json={
                "name": "hooked",
                "chain": [{"provider": "simulated", "model": "sim-1"}],
                "webhook_url": "http://127.0.0.1:9/hook",
            },
        )
        assert stored.status_code == 422 and stored.json()["error"]["code"] == "webhook_url_not_allowed"
        # the OpenAI face takes no webhook at all: a webhook_url there is ignored, never dialled
        completion = await client.post(
            "/v1/chat/completions",
            json={
                "model": "demo",
                "messages": [{"role": "user", "content": "hi"}],
                "webhook_url": "http://127.0.0.1:9/",
            },
        )
        assert completion.status_code == 200
        deliveries = (await client.get("/v1/admin/webhooks/deliveries", headers=admin)).json()["deliveries"]
        assert deliveries == []

        # At dial time: allowed when accepted, refused when attempted after the project stopped allowing it.
        async with running_receiver(statuses=[500]) as receiver:
            await client.put("/v1/admin/webhooks/settings", headers=admin, json={"allow_private_urls": True})
            accepted = await client.post("/v1/ai/async", json=chat_body(webhook_url=receiver.url))
            assert accepted.status_code == 202
            await receiver.next()
            await client.put("/v1/admin/webhooks/settings", headers=admin, json={"allow_private_urls": False})

            async def dead_lettered() -> dict | None:
                found = (
                    await client.get("/v1/admin/webhooks/deliveries", headers=admin, params={"status": "failed"})
                ).json()["deliveries"]
                return found[0] if found else None

            delivery = await eventually(dead_lettered)
            detail = (await client.get(f"/v1/admin/webhooks/deliveries/{delivery['id']}", headers=admin)).json()
            assert len(receiver.received) == 1  # the second attempt never reached the receiver
        last = detail["attempt_log"][-1]
        assert last["status_code"] is None and "loopback" in last["error"]


async def test_webhook_secrets_are_encrypted_at_rest(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as client:
        secret = (await client.post("/v1/admin/webhooks/secrets/rotate", json={})).json()["secret"]
    async with gw.gateway.store.engine.connect() as conn:
        stored = (await conn.execute(sa.select(webhook_secrets.c.secret))).scalars().all()
    assert stored and all(secret not in value and not value.startswith("whsec_") for value in stored)
    webhooks = gw.gateway.delivery.webhooks
    assert (await webhooks.active_secrets(gw.gateway.default_project_id))[0] == secret


async def closed_with(url: str, wait: float = 5.0, headers: dict[str, str] | None = None) -> int | None:
    """The close code the server ends a fresh connection with, or None if it is still open after `wait` seconds (a
    socket that was let in: the server waits for the client)."""
    async with websockets.connect(url, additional_headers=headers) as ws:
        try:
            async with asyncio.timeout(wait):
                async for _ in ws:
                    pass
        except TimeoutError:
            return None
        except websockets.ConnectionClosed:
            pass
        return ws.close_code


async def phoenix_open(url: str) -> websockets.ClientConnection:
    """A Phoenix socket the server let in (it answered a heartbeat)."""
    ws = await websockets.connect(url)
    await ws.send(json.dumps([None, "1", "phoenix", "heartbeat", {}]))
    try:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
    except websockets.ConnectionClosed:
        await ws.close()
        raise
    assert reply[3] == "phx_reply"
    return ws


async def test_every_socket_counts_in_the_stream_limit(start_gateway: StartGateway, tmp_path: Path) -> None:
    # A token a minute: nothing finishes, every stream stays open until its client leaves.
    gw = await start_gateway(
        max_concurrent_streams=1, config_path=paced_config(tmp_path, 60_000), heartbeat_interval=60
    )
    async with gw.client() as client:
        first, second = [(await client.post("/v1/ai/async", json=chat_body())).json() for _ in range(2)]
        token = second["ws_token"]
        phoenix = f"{gw.ws_url}/socket/websocket?token={token}&vsn=2.0.0"
        phoenix_on_ws = f"{gw.ws_url}/v1/ws?token={token}&vsn=2.0.0"  # where ModelRiver's SDK may be pointed
        async with websockets.connect(first["websocket_url"]) as held:
            await held.recv()  # a /v1/ws stream holds the key's only slot
            assert await closed_with(phoenix) == 4429
            assert await closed_with(phoenix_on_ws) == 4429
        ws = await eventually(lambda: _accepted(phoenix_open(phoenix)))  # the slot came back when /v1/ws left
        try:  # a Phoenix socket holds the slot: the other streams are refused
            assert await closed_with(second["websocket_url"]) == 4429
            assert await closed_with(phoenix_on_ws) == 4429
            sse = await client.get(f"/v1/channels/{second['channel_id']}/events", params={"token": token})
            assert sse.status_code == 429 and sse.json()["error"]["code"] == "too_many_streams"
        finally:
            await ws.close()
        again = await eventually(lambda: _accepted(phoenix_open(phoenix_on_ws)))  # given back when it closed
        await again.close()


async def _accepted(opening: Any) -> Any:
    try:
        return await opening
    except websockets.ConnectionClosed:
        return None


async def test_sockets_opened_with_an_api_key_count_as_api_calls(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(rate_limit="3/hour", config_path=paced_config(tmp_path, 60_000), heartbeat_interval=60)
    bearer = {"Authorization": f"Bearer {gw.api_key}"}
    async with gw.client() as client:
        accepted = (await client.post("/v1/ai/async", json=chat_body())).json()  # call 1
        ws_url = f"{gw.ws_url}/v1/ws?channel_id={accepted['channel_id']}"
        async with websockets.connect(ws_url, additional_headers=bearer) as ws:  # call 2
            assert json.loads(await ws.recv())["seq"] == 1
        async with websockets.connect(f"{gw.ws_url}/v1/forward", additional_headers=bearer) as forward:  # call 3
            assert json.loads(await forward.recv())["type"] == "ready"
        async with websockets.connect(ws_url, additional_headers=bearer) as refused:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await refused.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        assert "SLUICE_RATE_LIMIT" in closed.value.rcvd.reason
        async with websockets.connect(f"{gw.ws_url}/v1/forward", additional_headers=bearer) as refused_forward:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await refused_forward.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        sse = await client.get(f"/v1/channels/{accepted['channel_id']}/events")
        assert sse.status_code == 429 and sse.json()["error"]["code"] == "rate_limited" and sse.headers["retry-after"]
        # A browser's ws_token is no API call (the backend's submit was): it still opens.
        async with websockets.connect(accepted["websocket_url"]) as browser:
            assert json.loads(await browser.recv())["seq"] == 1


async def test_a_forward_session_holds_one_of_its_keys_streams(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(max_concurrent_streams=1, config_path=paced_config(tmp_path, 60_000))
    bearer = {"Authorization": f"Bearer {gw.api_key}"}
    async with gw.client() as client:
        accepted = (await client.post("/v1/ai/async", json=chat_body())).json()
    async with websockets.connect(f"{gw.ws_url}/v1/forward", additional_headers=bearer) as forward:
        assert json.loads(await forward.recv())["type"] == "ready"
        assert await closed_with(accepted["websocket_url"]) == 4429
        assert await closed_with(f"{gw.ws_url}/v1/forward", headers=bearer) == 4429
    ws = await eventually(lambda: _accepted(_first_event(accepted["websocket_url"])))  # given back when it closed
    await ws.close()


async def _first_event(url: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url)
    try:
        assert "seq" in json.loads(await asyncio.wait_for(ws.recv(), 5))
    except BaseException:
        await ws.close()
        raise
    return ws

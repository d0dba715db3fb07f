"""The callback step's timeout policies, and a wait that survives the gateway being killed."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sluice.delivery.callbacks import parse_callback
from sluice.errors import Unprocessable
from tests.conftest import MASTER_KEY, StartGateway, chat_body, free_port
from tests.delivery.helpers import FAST, channel_events, eventually, serve_gateway, wait_ready, workflow_file
from tests.delivery.receiver import json_of, running_receiver


def test_callback_body_forms() -> None:
    assert parse_callback({"id": 1, "reply": "x"}) == {"kind": "response", "data": {"id": 1, "reply": "x"}}
    assert parse_callback({"data": {"a": 1}, "task_id": "t"}) == {"kind": "response", "data": {"a": 1}, "task_id": "t"}
    # a bare object that merely has a `data` field beside others stays bare
    assert parse_callback({"data": 1, "id": 2})["data"] == {"data": 1, "id": 2}
    rejected = parse_callback({"error": "invalid", "message": "no"})
    assert rejected["kind"] == "error" and rejected["message"].endswith("no")
    for bad in ([1], "x", None, {"data": [1]}):
        with pytest.raises(Unprocessable):
            parse_callback(bad)


@pytest.mark.parametrize(("workflow", "expect"), [("deliver_fast", "response"), ("fail_fast", "error")])
async def test_timeout_policy(start_gateway: StartGateway, tmp_path: Path, workflow: str, expect: str) -> None:
    gw = await start_gateway(config_path=workflow_file(tmp_path), extra=FAST)
    async with running_receiver() as receiver:
        body = chat_body("I love this", workflow=workflow, webhook_url=receiver.url, events=["webhook_received"])
        async with gw.client() as client:
            accepted = (await client.post("/v1/ai/async", json=body)).json()
        payload = json_of(await receiver.next())
        started = asyncio.get_running_loop().time()
        events = await channel_events(accepted["websocket_url"])
        waited = asyncio.get_running_loop().time() - started
        async with gw.client() as client:
            record = (await client.get(f"/v1/requests/{accepted['channel_id']}")).json()
    terminal = events[-1]
    assert terminal["type"] == expect
    assert waited < 3  # the 400 ms policy fired on time, not at a sweep minutes later
    if expect == "response":
        assert terminal["data"] == payload["ai_response"]["data"]  # the un-enriched AI result
        assert terminal["meta"]["enriched"] is False and record["status"] == "completed"
        assert record["meta"]["enriched"] is False
    else:
        assert terminal["code"] == "callback_timeout" and "0.4s" in terminal["message"]
        assert record["status"] == "failed" and record["error"]["code"] == "callback_timeout"


RESTART_WORKFLOWS = """
providers:
  sim: {type: simulated, pace_ms: 0}
workflows:
  short_wait:
    chain: [{provider: sim, model: sim-1}]
    callback: {timeout: 1s, on_timeout: deliver}
  long_wait:
    chain: [{provider: sim, model: sim-1}]
    callback: {timeout: 120s, on_timeout: fail}
"""


async def test_waits_survive_a_killed_gateway(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    config = tmp_path / "sluice.yaml"
    config.write_text(RESTART_WORKFLOWS)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with running_receiver() as receiver, httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        first = serve_gateway(port, data_dir, config)
        try:
            await wait_ready(client, first)
            accepted = {}
            for workflow in ("short_wait", "long_wait"):
                body = chat_body("hello", workflow=workflow, webhook_url=receiver.url, events=["webhook_received"])
                accepted[workflow] = (await client.post("/v1/ai/async", json=body)).json()
            payloads = {p["workflow"]: p for p in [json_of(await receiver.next()), json_of(await receiver.next())]}
            for item in accepted.values():  # both recorded as waiting before the kill

                async def waiting(channel_id: str = item["channel_id"]) -> bool:
                    return (await client.get(f"/v1/requests/{channel_id}")).json()["status"] == "awaiting_callback"

                await eventually(waiting)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            first.kill()
        # the short wait's deadline passes while no gateway runs
        deadline = datetime.fromisoformat(payloads["short_wait"]["callback_expires_at"].replace("Z", "+00:00"))
        await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.1)

        second = serve_gateway(port, data_dir, config)
        try:
            await wait_ready(client, second)
            short = await channel_events(accepted["short_wait"]["websocket_url"])
            answer = await client.post(payloads["long_wait"]["callback_url"], json={"id": "m-1", "approved": True})
            long = await channel_events(accepted["long_wait"]["websocket_url"])
            records = {w: (await client.get(f"/v1/requests/{a['channel_id']}")).json() for w, a in accepted.items()}
        finally:
            second.terminate()
            second.wait(10)
    assert short[-1]["type"] == "response" and short[-1]["meta"]["enriched"] is False
    assert records["short_wait"]["status"] == "completed"
    assert answer.status_code == 200, answer.text
    assert long[-1]["type"] == "response" and long[-1]["data"] == {"id": "m-1", "approved": True}
    assert records["long_wait"]["status"] == "completed" and records["long_wait"]["data"]["id"] == "m-1"
    assert [e["seq"] for e in long] == sorted({e["seq"] for e in long})  # numbers only move forward


LOSS_WORKFLOWS = """
providers:
  sim: {type: simulated, pace_ms: 0}
workflows:
  waits:
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string}
    callback: {timeout: 60s, on_timeout: fail}
  times_out:
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string}
    callback: {timeout: 2s, on_timeout: deliver}
"""


async def test_callback_waits_survive_redis_losing_its_data(start_gateway: StartGateway, tmp_path: Path) -> None:
    from tests.backends import fresh_redis_prefix

    config = tmp_path / "loss.yaml"
    config.write_text(LOSS_WORKFLOWS)
    async with fresh_redis_prefix() as redis_url, running_receiver() as receiver:
        gw = await start_gateway(config_path=config, extra=FAST, redis_url=f"{redis_url}&check_interval=0.2")
        broker = gw.gateway.broker
        accepted, callbacks = {}, {}
        async with gw.client() as client:
            for name, workflow in (("later", "waits"), ("at_once", "waits"), ("deadline", "times_out")):
                body = chat_body(
                    f"wait for me ({name})", workflow=workflow, webhook_url=receiver.url, events=["webhook_received"]
                )
                accepted[name] = (await client.post("/v1/ai/async", json=body)).json()
                payload = json_of(await receiver.next())
                callbacks[payload["channel_id"]] = payload["callback_url"]
        by_name = {name: a["channel_id"] for name, a in accepted.items()}

        async def quiet() -> bool:  # the webhooks' progress is on the channels: nothing writes while keys go
            found = await gw.gateway.delivery.webhooks.list_deliveries(None)
            return len(found) == 3 and all(d.status == "delivered" for d in found)

        await eventually(quiet)
        assert await broker.delete_all() > 0  # what FLUSHALL (or a restart without persistence) does to it

        # A callback that arrives before the gateway noticed the loss still ends the request, announced live.
        async with httpx.AsyncClient(timeout=10) as client:
            at_once = await client.post(callbacks[by_name["at_once"]], json={"reply": "enriched at once"})
        assert at_once.status_code == 200, at_once.text

        # The gateway notices and re-establishes the channels of the requests still waiting, from the store.
        async def reopened() -> bool:
            return all([await broker.log_info(by_name[name]) is not None for name in ("later", "deadline")])

        await eventually(reopened, wait=5)
        later = asyncio.create_task(channel_events(accepted["later"]["websocket_url"]))
        deadline = asyncio.create_task(channel_events(accepted["deadline"]["websocket_url"]))
        async with httpx.AsyncClient(timeout=10) as client:
            answered = await client.post(callbacks[by_name["later"]], json={"reply": "enriched later"})
        assert answered.status_code == 200, answered.text
        later_events, deadline_events = await later, await deadline
        at_once_events = await channel_events(accepted["at_once"]["websocket_url"])

    for events in (later_events, deadline_events, at_once_events):
        assert [e["type"] for e in events if e["type"] in ("response", "error")] == ["response"]
        assert events[0]["type"] == "reset" and "from_store" not in events[-1], events  # live, not rebuilt
        assert "awaiting_callback" in [e.get("status") for e in events]
    assert later_events[-1]["data"] == {"reply": "enriched later"}
    assert at_once_events[-1]["data"] == {"reply": "enriched at once"}
    # The deadline held: the workflow's policy (deliver) ended the request un-enriched.
    assert deadline_events[-1]["meta"]["enriched"] is False

"""Webhook delivery: at-least-once retries on a bounded schedule, every attempt recorded, dead letters, signatures."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from sluice.delivery.dispatcher import DEFAULT_SCHEDULE, DeliveryConfig, retry_delay
from sluice.webhooks import verify
from tests.conftest import StartGateway, chat_body
from tests.delivery.helpers import FAST, admin_client, channel_events, eventually, workflow_file
from tests.delivery.receiver import json_of, running_receiver


def test_schedule_is_bounded_with_jitter() -> None:
    config = DeliveryConfig()
    assert len(config.schedule) == 8 and sum(DEFAULT_SCHEDULE) / 3600 > 3.6  # ModelRiver's ~3 h 42 min
    rng = random.Random(7)
    delays = [retry_delay(attempt, config, rng) for attempt in range(1, 8)]
    for delay, base in zip(delays, DEFAULT_SCHEDULE[1:], strict=True):
        assert delay is not None and base * 0.9 <= delay <= base * 1.1
    assert len({round(d / b, 6) for d, b in zip(delays, DEFAULT_SCHEDULE[1:], strict=True)}) > 1  # jittered
    assert retry_delay(8, config, rng) is None
    fast = DeliveryConfig.from_extra({"webhook_retry_schedule": [0, 0.01], "webhook_timeout": 2})
    assert fast.schedule == (0.0, 0.01) and fast.timeout == 2.0


async def test_flaky_endpoint_is_delivered_on_the_third_attempt(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=workflow_file(tmp_path), extra=FAST)
    async with running_receiver(statuses=[500, 500, 200]) as receiver:
        body = chat_body("I love it", workflow="slow_callback", webhook_url=receiver.url, events=["webhook_received"])
        async with gw.client() as client:
            accepted = (await client.post("/v1/ai/async", json=body)).json()
        arrivals = [await receiver.next() for _ in range(3)]
        async with admin_client(gw) as client:
            found = (
                await client.get("/v1/admin/webhooks/deliveries", params={"request_id": accepted["channel_id"]})
            ).json()["deliveries"]
            assert len(found) == 1

            async def delivered() -> dict[str, Any] | None:
                shown = (await client.get(f"/v1/admin/webhooks/deliveries/{found[0]['id']}")).json()
                return shown if shown["status"] != "pending" else None

            shown = await eventually(delivered)
        payload = json_of(arrivals[0])
        async with gw.client() as client:
            assert (await client.post(payload["callback_url"], json={"done": True})).status_code == 200
        events = await channel_events(accepted["websocket_url"])
    # the same message each time: one webhook-id, one body, a fresh timestamp + signature per attempt
    assert len({a.headers["webhook-id"] for a in arrivals}) == 1
    assert len({a.body for a in arrivals}) == 1
    assert shown["status"] == "delivered" and shown["attempts"] == 3
    assert [a["status_code"] for a in shown["attempt_log"]] == [500, 500, 200]
    assert all(a["latency_ms"] >= 0 and a["via"] == "http" for a in shown["attempt_log"])
    assert '"status":500' in shown["attempt_log"][0]["response_excerpt"]
    assert "token=[redacted]" in shown["payload"]["callback_url"]  # callback tokens never leave in responses
    progress = [(e["state"], e["attempt"], e["status_code"]) for e in events if e["type"] == "webhook"]
    assert progress == [
        ("sent", 1, None),
        ("failed", 1, 500),
        ("sent", 2, None),
        ("failed", 2, 500),
        ("sent", 3, None),
        ("delivered", 3, 200),
    ]
    assert events[-1]["type"] == "response" and events[-1]["data"] == {"done": True}


async def test_exhausted_delivery_is_dead_lettered_and_replayable(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=workflow_file(tmp_path), extra=FAST)
    async with running_receiver(statuses=[503] * 4) as receiver:
        body = chat_body("hello", workflow="slow_callback", webhook_url=receiver.url, events=["webhook_received"])
        async with gw.client() as client:
            accepted = (await client.post("/v1/ai/async", json=body)).json()
        # a callback that can never come: the workflow's policy (fail) ends the channel without waiting 60 s
        events = await channel_events(accepted["websocket_url"])
        assert events[-1]["type"] == "error" and events[-1]["code"] == "callback_timeout"
        assert "could not be delivered in 4 attempts" in events[-1]["message"]
        async with admin_client(gw) as client:
            dead = (await client.get("/v1/admin/webhooks/deliveries", params={"status": "failed"})).json()
            assert [d["request_id"] for d in dead["deliveries"]] == [accepted["channel_id"]]
            delivery_id = dead["deliveries"][0]["id"]
            replayed = await client.post(f"/v1/admin/webhooks/deliveries/{delivery_id}/replay")
            assert replayed.status_code == 202
            for _ in range(5):
                await receiver.next()

            async def delivered() -> dict[str, Any] | None:
                shown = (await client.get(f"/v1/admin/webhooks/deliveries/{delivery_id}")).json()
                return shown if shown["status"] == "delivered" else None

            shown = await eventually(delivered)
            missing = await client.get("/v1/admin/webhooks/deliveries/msg_nope")
    assert missing.status_code == 404
    assert shown["attempts"] == 5 and shown["attempt_log"][-1]["status_code"] == 200


async def test_signatures_verify_with_the_reference_library_and_rotate(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway(config_path=workflow_file(tmp_path), extra=FAST)
    async with admin_client(gw) as client:
        first = (await client.post("/v1/admin/webhooks/secrets/rotate", json={"overlap_seconds": 0})).json()
        second = (await client.post("/v1/admin/webhooks/secrets/rotate", json={"overlap_seconds": 3600})).json()
        listed = (await client.get("/v1/admin/webhooks/secrets")).json()["secrets"]
    assert first["secret"].startswith("whsec_") and first["secret"] not in str(listed)
    assert [s["expires_at"] is None for s in listed] == [True, False]
    async with running_receiver() as receiver:
        body = chat_body("hi", workflow="slow_callback", webhook_url=receiver.url, events=["request.completed"])
        async with gw.client() as client:
            await client.post("/v1/ai/async", json=body)
        arrived = await receiver.next()
    assert len(arrived.headers["webhook-signature"].split()) == 2  # old and new secret during the overlap
    for secret in (first["secret"], second["secret"]):
        assert Webhook(secret).verify(arrived.body, arrived.headers)["type"] == "task.completed"
        verify(arrived.headers, arrived.body, secret)


async def test_finished_deliveries_are_purged_after_retention(start_gateway: StartGateway, tmp_path: Path) -> None:
    from datetime import timedelta

    from sluice.store.store import now

    gw = await start_gateway(config_path=workflow_file(tmp_path), extra=FAST)
    webhooks = gw.gateway.delivery.webhooks
    async with running_receiver() as receiver:
        async with gw.client() as client:
            body = chat_body("hi", workflow="slow_callback", webhook_url=receiver.url, events=["request.completed"])
            accepted = (await client.post("/v1/ai/async", json=body)).json()
        await receiver.next()

        async def finished() -> list[Any]:
            found = await webhooks.list_deliveries(None, request_id=accepted["channel_id"])
            return [d for d in found if d.status == "delivered"]

        [delivery] = await eventually(finished)
    assert await webhooks.purge_finished(now() - timedelta(days=1)) == 0  # inside the retention: kept
    assert await webhooks.purge_finished(now() + timedelta(seconds=1)) == 1
    assert await webhooks.get_delivery(delivery.id) is None and await webhooks.list_attempts(delivery.id) == []


def test_gone_stops_and_retry_after_defers_within_the_schedule() -> None:
    from sluice.delivery.dispatcher import AttemptResult, next_delay, parse_retry_after

    config = DeliveryConfig(schedule=(0, 5, 30, 120), jitter=0)
    failed = AttemptResult(status_code=500, body=None, error=None, via="http")
    assert next_delay(1, failed, config) == 5
    assert next_delay(1, AttemptResult(status_code=200, body=None, error=None, via="http"), config) is None
    assert next_delay(1, AttemptResult(status_code=410, body=None, error=None, via="http"), config) is None
    throttled = AttemptResult(status_code=429, body=None, error=None, via="http", retry_after=60)
    assert next_delay(1, throttled, config) == 60
    flood = AttemptResult(status_code=503, body=None, error=None, via="http", retry_after=86400)
    assert next_delay(1, flood, config) == 120  # bounded by the schedule's longest gap
    assert next_delay(4, failed, config) is None
    assert parse_retry_after(" 12 ") == 12 and parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None

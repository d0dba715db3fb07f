"""`/metrics` after real traffic: request, attempt, failover and webhook counters and the latency, TTFT and gateway
overhead histograms have moved; the numbers agree with what the traffic did."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MASTER_KEY, StartGateway, chat_body, write_config
from tests.delivery.receiver import running_receiver

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_traffic(start_gateway: StartGateway) -> None:
    gw = await start_gateway(extra={"webhook_retry_schedule": [0, 0.05, 0.05], "webhook_jitter": 0})
    async with gw.client() as client, running_receiver(statuses=[500]) as receiver:
        before = samples((await client.get("/metrics")).text)
        assert value(before, "sluice_requests_total", outcome="completed") == 0

        # A provider nobody listens on, first in a chain that fails over to the simulated one.
        down = {"name": "down", "type": "openai-compatible", "options": {"base_url": "http://127.0.0.1:9/v1"}}
        assert (await client.post("/v1/admin/providers", headers=ADMIN, json=down)).status_code == 201
        for name, chain in (
            (
                "fails_over",
                [{"provider": "down", "model": "m", "retries": 0}, {"provider": "simulated", "model": "sim-1"}],
            ),
            ("fails", [{"provider": "down", "model": "m", "retries": 0}]),
        ):
            created = await client.post("/v1/admin/workflows", headers=ADMIN, json={"name": name, "chain": chain})
            assert created.status_code == 201, created.text

        results = await asyncio.gather(
            *(client.post("/v1/ai", json=chat_body(f"hello number {i}")) for i in range(3)),
            client.post("/v1/ai", json=chat_body("over", workflow="fails_over")),
            client.post("/v1/ai", json=chat_body("down", workflow="fails")),
            client.post("/v1/ai", json=chat_body("hook", webhook_url=receiver.url)),
        )
        assert [r.status_code for r in results] == [200, 200, 200, 200, 502, 200]
        await receiver.next()
        await receiver.next()  # a 500, then the retry delivered

        async with asyncio.timeout(10):
            while True:
                after = samples((await client.get("/metrics")).text)
                if value(after, "sluice_webhook_deliveries_total", outcome="delivered") >= 1:
                    break
                await asyncio.sleep(0.05)

    assert value(after, "sluice_requests_received_total") == 6
    assert value(after, "sluice_requests_total", outcome="completed") == 5
    assert value(after, "sluice_requests_total", outcome="failed") == 1
    assert value(after, "sluice_attempts_total", provider="simulated", model="sim-1") == 5
    assert value(after, "sluice_attempts_total", provider="down", model="m") == 2
    assert value(after, "sluice_failovers_total", from_provider="down", to_provider="simulated") == 1
    assert value(after, "sluice_webhook_attempts_total", outcome="failed") == 1
    assert value(after, "sluice_webhook_attempts_total", outcome="delivered") == 1
    for histogram in (
        "sluice_request_latency_seconds",
        "sluice_time_to_first_token_seconds",
        "sluice_gateway_overhead_seconds",
    ):
        count = value(after, f"{histogram}_count")
        assert count >= 5, (histogram, count)
        assert value(after, f"{histogram}_sum") > 0
        assert value(after, f"{histogram}_bucket", le="+Inf") == count
    # Overhead excludes provider time: on average it is below the end-to-end latency.
    assert value(after, "sluice_gateway_overhead_seconds_sum") < value(after, "sluice_request_latency_seconds_sum")


async def test_metrics_is_prometheus_text(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with httpx.AsyncClient(base_url=gw.url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "# TYPE sluice_request_latency_seconds histogram" in response.text


async def test_admin_stats_after_traffic(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with gw.client() as client:
        for i in range(3):
            assert (await client.post("/v1/ai", json=chat_body(f"hi {i}"))).status_code == 200
        stats = await client.get("/v1/admin/stats", headers=ADMIN)
        assert (await client.get("/v1/admin/stats")).status_code == 403
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["totals"]["requests"] == 3 and body["totals"]["error_rate"] == 0
    assert body["totals"]["p50_latency_ms"] > 0 and body["totals"]["p99_ttft_ms"] > 0
    assert sum(b["requests"] for b in body["buckets"]) == 3 and len(body["buckets"]) == 60
    assert body["providers"] == [
        {
            "provider": "simulated",
            "model": "sim-1",
            "type": "simulated",
            "configured": True,
            "state": "closed",
            "failures": 0,
            "retry_in_s": None,
        }
    ]


async def test_cost_and_tokens_are_counted_by_workflow_and_model(start_gateway: StartGateway, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, "providers:\n  simulated: {type: simulated, pace_ms: 0, prices: {sim-1: {input: 1, output: 2}}}\n"
    )
    gw = await start_gateway(config_path=config)
    async with gw.client() as client:
        answers = [(await client.post("/v1/ai", json=chat_body(f"question {n}"))).json() for n in range(2)]
        found = samples((await client.get("/metrics")).text)
    labels = {"model": "sim-1", "provider": "simulated", "workflow": "demo"}
    assert value(found, "sluice_cost_usd_total", **labels) == pytest.approx(sum(a["meta"]["cost_usd"] for a in answers))
    for kind, field in (("input", "input_tokens"), ("output", "output_tokens")):
        counted = value(found, "sluice_tokens_total", kind=kind, **labels)
        assert counted == sum(a["meta"]["usage"][field] for a in answers) > 0

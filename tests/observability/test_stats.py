"""The Overview's numbers (pure): per-minute buckets, error rate, failovers, nearest-rank percentiles, circuits; and
the metrics' timing of a run with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import Histogram

from sluice.events import AttemptEvent, DeltaEvent, FailoverEvent, ResetEvent, ResponseEvent, StatusEvent
from sluice.observability.metrics import Metrics
from sluice.observability.stats import circuit, dashboard, percentile

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def row(minutes_ago: float, status: str, latency_ms: float | None, ttft_ms: float | None) -> dict:  # type: ignore[type-arg]
    created = NOW - timedelta(minutes=minutes_ago)
    return {
        "created_at": created,
        "status": status,
        "started_at": created,
        "completed_at": created + timedelta(milliseconds=latency_ms) if latency_ms is not None else None,
        "first_token_at": created + timedelta(milliseconds=ttft_ms) if ttft_ms is not None else None,
    }


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([5], 99) == 5


def test_dashboard_buckets_and_totals() -> None:
    requests = [
        row(0.5, "completed", 100, 10),
        row(0.6, "failed", 300, None),
        row(5.5, "completed", 200, 20),
        row(90, "completed", 1, 1),
    ]  # outside the hour
    attempts = [
        {"started_at": NOW - timedelta(minutes=0.5), "attempt": 2},
        {"started_at": NOW - timedelta(minutes=0.5), "attempt": 1},
    ]
    body = dashboard(requests, attempts, NOW)
    assert len(body["buckets"]) == 60
    last = body["buckets"][-1]
    assert (last["requests"], last["errors"], last["failovers"]) == (2, 1, 1)
    assert (last["p50_latency_ms"], last["p99_latency_ms"], last["p50_ttft_ms"]) == (100, 300, 10)
    assert body["buckets"][-6]["requests"] == 1 and body["buckets"][0]["requests"] == 0
    totals = body["totals"]
    assert totals["requests"] == 3 and totals["error_rate"] == round(1 / 3, 4) and totals["failovers"] == 1
    assert totals["p99_latency_ms"] == 300 and totals["p50_ttft_ms"] == 10


def test_circuit_states() -> None:
    assert circuit(None, 100)["state"] == "closed"
    assert circuit({"failures": 5, "open_until": 130.0, "probe_until": 0.0}, 100) == {
        "state": "open",
        "failures": 5,
        "retry_in_s": 30.0,
    }
    assert circuit({"failures": 5, "open_until": 90.0, "probe_until": 0.0}, 100)["state"] == "half-open"


def total(histogram: Histogram) -> float:
    return next(s.value for s in histogram.collect()[0].samples if s.name.endswith("_sum"))


def test_overhead_is_run_time_minus_provider_time() -> None:
    ticks = iter([0.0, 0.1, 0.2, 0.5, 0.6, 0.7, 0.8, 1.0, 1.1])
    metrics = Metrics(clock=lambda: next(ticks))
    for event in (
        StatusEvent(status="queued"),  # 0.0 accepted
        AttemptEvent(provider="a", model="m", attempt=1),  # 0.1 provider a
        DeltaEvent(text="x"),  # 0.2 first token (TTFT 0.2)
        ResetEvent(reason="broke"),  # 0.5 a failed: 0.4 s on provider a
        FailoverEvent(from_="a/m", to="b/m", error="e"),  # 0.6
        AttemptEvent(provider="b", model="m", attempt=2),  # 0.7 provider b
        DeltaEvent(text="y"),  # 0.8
        DeltaEvent(text="z"),  # 1.0 b's last token: 0.3 s on provider b
        ResponseEvent(data={}),
    ):  # 1.1 done
        metrics.observe("c1", event)
    assert abs(total(metrics.ttft) - 0.2) < 1e-9
    assert abs(total(metrics.latency) - 1.1) < 1e-9
    assert abs(total(metrics.overhead) - (1.1 - 0.4 - 0.3)) < 1e-9
    assert metrics._timings == {}

"""Prometheus metrics, observed from channel events in one place (`sluice.observability.tap`).

Every event the engine and the worker emit goes through the broker's `append`, so counting there needs no hook in
the code paths themselves. Webhook deliveries are counted from the dispatcher's progress callbacks instead (most
deliveries happen after the channel closed, or on replay, so they have no channel event).

Timings are taken on this instance's clock as events are appended:

- latency: from the request's first event seen here (`queued`, at submit) to its terminal event;
- time to first token: from the same start to the first `delta`/`partial`;
- gateway overhead: the run's time (start → end of the run: terminal event or `awaiting_callback`) minus the time
  spent waiting on providers (each `attempt` event to its attempt's last streamed event, `reset` or `failover`).

With several instances (Redis), a request submitted on one and run on another is timed from `running` on the
runner's instance; Prometheus sums the counters over instances.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sluice.events import (
    AttemptEvent,
    DeltaEvent,
    ErrorEvent,
    Event,
    FailoverEvent,
    PartialEvent,
    ResetEvent,
    ResponseEvent,
    SpliceEvent,
    StatusEvent,
)
from sluice.lifecycle.outcome import CANCELLED_CODE

CONTENT_TYPE = CONTENT_TYPE_LATEST
MAX_TRACKED = 20_000  # channels timed at once; beyond that the oldest are dropped (their timings are lost)
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_TOKEN_KINDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cached_input_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
)
_OVERHEAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class _Timing:
    started: float
    attempt_started: float | None = None
    last_activity: float | None = None
    provider_seconds: float = 0.0
    first_token: bool = False
    run_ended: bool = False

    def close_attempt(self) -> None:
        if self.attempt_started is not None and self.last_activity is not None:
            self.provider_seconds += max(0.0, self.last_activity - self.attempt_started)
        self.attempt_started = None


class Metrics:
    """The gateway's instruments, in a registry of its own (several gateways may share a process in tests)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("sluice_requests_received", "Requests accepted (queued).", registry=r)
        self.by_api = Counter(
            "sluice_requests_accepted_by_api",
            "Requests accepted, by the API they came in on (`sluice.surfaces`), pass-throughs included.",
            ["api"],
            registry=r,
        )
        self.requests = Counter("sluice_requests", "Requests finished, by outcome.", ["outcome"], registry=r)
        self.attempts = Counter("sluice_attempts", "Provider attempts started.", ["provider", "model"], registry=r)
        self.resets = Counter("sluice_resets", "Streamed output retracted (failed attempt, restart).", registry=r)
        self.splices = Counter(
            "sluice_splices",
            "Answers continued on another attempt after a failure mid-stream, by method (prefill, instruction).",
            ["method"],
            registry=r,
        )
        self.failovers = Counter(
            "sluice_failovers", "Moves to the next provider in a chain.", ["from_provider", "to_provider"], registry=r
        )
        self.webhook_attempts = Counter(
            "sluice_webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered, failed: retried later or dead-lettered).",
            ["outcome"],
            registry=r,
        )
        self.webhooks = Counter(
            "sluice_webhook_deliveries",
            "Webhook deliveries finished, by outcome (delivered, dead_lettered).",
            ["outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "sluice_request_latency_seconds", "Accepted to terminal event.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.ttft = Histogram(
            "sluice_time_to_first_token_seconds",
            "Accepted to the first streamed token.",
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "sluice_gateway_overhead_seconds",
            "Time of a run not spent waiting on providers (queueing, validation, bookkeeping).",
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.cost = Counter(
            "sluice_cost_usd",
            "What provider attempts cost, USD (`sluice.spend.prices`), every attempt of every run.",
            ["workflow", "provider", "model"],
            registry=r,
        )
        self.tokens = Counter(
            "sluice_tokens",
            "Tokens of provider attempts, by kind: input, output (each whole), cache_read, cache_write, reasoning "
            "(their shares).",
            ["workflow", "provider", "model", "kind"],
            registry=r,
        )
        self._timings: dict[str, _Timing] = {}
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, channel_id: str, event: Event) -> None:
        """Count one appended event and advance the channel's timing."""
        moment = self.clock()
        timing = self._timings.get(channel_id)
        if timing is None:
            timing = self._track(channel_id, moment)
        match event:
            case StatusEvent(status="queued"):
                self.received.inc()
            case StatusEvent(status="awaiting_callback"):
                self._end_run(timing, moment)
            case AttemptEvent():
                self._child(self.attempts, event.provider, event.model).inc()
                timing.close_attempt()
                timing.attempt_started = timing.last_activity = moment
            case DeltaEvent() | PartialEvent():
                timing.last_activity = moment
                if not timing.first_token:
                    timing.first_token = True
                    self.ttft.observe(moment - timing.started)
            case ResetEvent():
                self.resets.inc()
                timing.last_activity = moment
            case SpliceEvent(method=method):
                self._child(self.splices, method).inc()
            case FailoverEvent():
                self.failovers.labels(event.from_.split("/")[0], event.to.split("/")[0]).inc()
                timing.close_attempt()  # the attempt ended at its error (`reset`) or last event, not now
            case ResponseEvent() | ErrorEvent():
                self._child(self.requests, _outcome(event)).inc()
                self._end_run(timing, moment)
                self.latency.observe(moment - timing.started)
                del self._timings[channel_id]

    def accepted(self, api: str) -> None:
        """A request was accepted on `api` (counted at submit: a pass-through has no `queued` event)."""
        self._child(self.by_api, api).inc()

    def _child(self, metric: Any, *values: str) -> Any:
        """The metric's child for these label values, looked up once: `labels()` takes a lock and checks its
        arguments, on the path of every request (the label sets are few: outcomes, APIs, provider/model pairs)."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def spent(self, workflow: str, attempts: list[dict[str, Any]]) -> None:
        """A run ended: count what each of its attempts (`meta.attempts`, each with its usage and cost) cost and
        used."""
        for attempt in attempts:
            provider, model = attempt.get("provider", ""), attempt.get("model", "")
            usage = attempt.get("usage") or {}
            if cost := attempt.get("cost_usd"):
                self._child(self.cost, workflow, provider, model).inc(cost)
            for kind, field in _TOKEN_KINDS:
                if count := usage.get(field):
                    self._child(self.tokens, workflow, provider, model, kind).inc(count)

    def webhook_attempt(self, outcome: str) -> None:
        """One delivery attempt ended (`delivered` or `failed`); a delivered attempt also ends its delivery."""
        self.webhook_attempts.labels(outcome).inc()
        if outcome == "delivered":
            self.webhooks.labels("delivered").inc()

    def webhook_dead_lettered(self) -> None:
        self.webhooks.labels("dead_lettered").inc()

    def _track(self, channel_id: str, moment: float) -> _Timing:
        while len(self._timings) >= MAX_TRACKED:
            del self._timings[next(iter(self._timings))]
        timing = self._timings[channel_id] = _Timing(started=moment)
        return timing

    def _end_run(self, timing: _Timing, moment: float) -> None:
        if timing.run_ended:
            return
        timing.run_ended = True
        timing.close_attempt()
        self.overhead.observe(max(0.0, (moment - timing.started) - timing.provider_seconds))


def _outcome(terminal: ResponseEvent | ErrorEvent) -> str:
    if isinstance(terminal, ResponseEvent):
        return "completed"
    return "cancelled" if terminal.code == CANCELLED_CODE else "failed"

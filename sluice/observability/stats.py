"""The console's Overview numbers, computed from the store (so they are shared by every instance and survive a
restart): per-minute requests, errors, retries/failovers, p50/p99 latency and time to first token; circuit state.
Pure functions over rows; the clock is passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sluice.engine.breaker import BreakerState

FAILED = ("failed", "cancelled")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 1)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds() * 1000


@dataclass
class _Bucket:
    """One step of the dashboard: counts, and the latencies it rendered as percentiles."""

    t: str
    requests: int = 0
    errors: int = 0
    failovers: int = 0
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)

    def render(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "requests": self.requests,
            "errors": self.errors,
            "failovers": self.failovers,
            "p50_latency_ms": percentile(self.latency, 50),
            "p99_latency_ms": percentile(self.latency, 99),
            "p50_ttft_ms": percentile(self.ttft, 50),
            "p99_ttft_ms": percentile(self.ttft, 99),
        }


def dashboard(
    requests: list[dict[str, Any]],
    attempts: list[dict[str, Any]],
    now: datetime,
    window: timedelta = timedelta(hours=1),
    step: timedelta = timedelta(minutes=1),
) -> dict[str, Any]:
    """Buckets of `step` over the `window` ending at `now`, oldest first, plus totals over the whole window.

    A request counts in the minute it was created; its latency and TTFT once it has them. A "failover" is any
    attempt after a request's first (a retry on the same provider or a move to the next one)."""
    count = max(1, int(window / step))
    start = now - step * count
    buckets = [_Bucket(t=(start + step * i).isoformat(timespec="seconds").replace("+00:00", "Z")) for i in range(count)]

    def index(moment: datetime) -> int | None:
        i = int((moment - start) / step)
        return i if 0 <= i < count else None

    for row in requests:
        i = index(row["created_at"])
        if i is None:
            continue
        bucket = buckets[i]
        bucket.requests += 1
        bucket.errors += row["status"] in FAILED
        latency = _ms(row["created_at"], row["completed_at"])
        ttft = _ms(row["created_at"], row["first_token_at"])
        if latency is not None:
            bucket.latency.append(latency)
        if ttft is not None:
            bucket.ttft.append(ttft)
    for row in attempts:
        i = index(row["started_at"])
        if i is not None and row["attempt"] > 1:
            buckets[i].failovers += 1
    all_latency = [v for b in buckets for v in b.latency]
    all_ttft = [v for b in buckets for v in b.ttft]
    total = sum(b.requests for b in buckets)
    errors = sum(b.errors for b in buckets)
    totals = {
        "requests": total,
        "errors": errors,
        "error_rate": round(errors / total, 4) if total else 0.0,
        "failovers": sum(b.failovers for b in buckets),
        "requests_per_minute": round(total / (window.total_seconds() / 60), 2),
        "p50_latency_ms": percentile(all_latency, 50),
        "p99_latency_ms": percentile(all_latency, 99),
        "p50_ttft_ms": percentile(all_ttft, 50),
        "p99_ttft_ms": percentile(all_ttft, 99),
    }
    return {
        "window_seconds": window.total_seconds(),
        "step_seconds": step.total_seconds(),
        "totals": totals,
        "buckets": [bucket.render() for bucket in buckets],
    }


def circuit(record: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """A breaker record as the console shows it: closed, open (until when) or half-open."""
    state = BreakerState.from_record(record)
    if state.open_until == 0.0:
        name = "closed"
    elif now < state.open_until:
        name = "open"
    else:
        name = "half-open"
    return {
        "state": name,
        "failures": state.failures,
        "retry_in_s": round(state.open_until - now, 1) if name == "open" else None,
    }

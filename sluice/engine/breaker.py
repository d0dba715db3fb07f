"""A circuit breaker per provider+model. Pure: the state is a small record and the clock is passed in.

closed ──(`failures` health failures in a row)──> open ──(`cooldown` passed)──> half-open: one probe at a time
  ^                                                 ^                                  │
  └──────────────── the probe succeeds ─────────────┼──────── the probe fails ─────────┘

The state lives in the broker (`Broker.breaker_state` / `set_breaker_state`) so that several gateway instances
share it; a lost state only means a closed breaker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sluice.providers.options import BreakerPolicy  # validated with the provider's options, at load

__all__ = ["BreakerPolicy", "BreakerState", "admit", "record"]


@dataclass(frozen=True)
class BreakerState:
    failures: int = 0
    open_until: float = 0.0  # > 0: open (or half-open once the time has passed)
    probe_until: float = 0.0  # a probe is running until then

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> BreakerState:
        if not record:
            return cls()
        return cls(**{k: record[k] for k in ("failures", "open_until", "probe_until") if k in record})

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def admit(state: BreakerState, now: float, policy: BreakerPolicy) -> tuple[bool, BreakerState]:
    """May a request use the provider now? Returns the decision and the state to store."""
    if state.open_until == 0.0:
        return True, state
    if now < state.open_until or now < state.probe_until:
        return False, state
    return True, BreakerState(state.failures, state.open_until, probe_until=now + policy.probe_timeout)


def record(state: BreakerState, ok: bool, now: float, policy: BreakerPolicy) -> BreakerState:
    """The state after an attempt succeeded (`ok`) or failed in a way that counts against the provider's health."""
    if ok:
        return BreakerState()
    failures = state.failures + 1
    if state.open_until or failures >= policy.failures:  # a failed probe re-opens at once
        return BreakerState(failures, open_until=now + policy.cooldown)
    return BreakerState(failures)

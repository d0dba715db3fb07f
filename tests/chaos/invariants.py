"""The invariants every accepted request must keep, checked from what its subscriber received (pure, no I/O).

- exactly one terminal event (`response` or `error`), and it is the last one;
- no duplicate and no backward `seq`; a jump forward only after a gateway restart, where the event after the jump
  says history was lost: a `reset`, or a terminal rebuilt from the store (`from_store: true`);
- the terminal event agrees with the request's final record in the store (an `error` whose code is `cancelled`:
  status `cancelled`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("response", "error")


def final_status(terminal: dict[str, Any]) -> str:
    """The store's status a terminal event stands for."""
    if terminal["type"] == "response":
        return "completed"
    return "cancelled" if terminal.get("code") == "cancelled" else "failed"


@dataclass
class Observed:
    """What one subscriber of one request saw, over every connection it made."""

    request_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    restarts_seen: int = 0  # gateway restarts between the request's acceptance and its terminal event
    status: str | None = None  # the store's final status
    error: str | None = None  # the subscriber could not finish (timed out, refused)


def violations(seen: Observed) -> list[str]:
    problems: list[str] = []
    name = seen.request_id
    if seen.error:
        problems.append(f"{name}: subscriber failed: {seen.error}")
    events = seen.events
    terminals = [e for e in events if e.get("type") in TERMINAL]
    if len(terminals) != 1:
        problems.append(f"{name}: {len(terminals)} terminal events")
    elif events[-1] is not terminals[0]:
        problems.append(f"{name}: events after the terminal one")
    previous = 0
    for event in events:
        seq = event["seq"]
        if seq <= previous:
            problems.append(f"{name}: seq {seq} after {previous} (duplicate or backwards)")
            continue
        if seq != previous + 1:
            explicit = event.get("type") == "reset" or event.get("from_store") is True
            if not (seen.restarts_seen and explicit):
                problems.append(f"{name}: gap {previous} -> {seq} ({event.get('type')}) without a reset")
        previous = seq
    if terminals and seen.status != final_status(terminals[0]):
        problems.append(f"{name}: terminal {terminals[0]['type']} but the store says {seen.status}")
    return problems

"""The invariants every accepted request must keep, checked from what its subscriber received (pure, no I/O).

- exactly one terminal event (`response` or `error`), and it is the last one;
- no duplicate and no backward `seq`; a jump forward only after a gateway restart, where the event after the jump
  says history was lost: a `reset`, or a terminal rebuilt from the store (`from_store: true`);
- the terminal event agrees with the request's final record in the store (an `error` whose code is `cancelled`:
  status `cancelled`);
- the answer is what streamed: a text answer's content is exactly the text of the `delta`s since the last `reset`,
  across `splice`s (a continued answer loses or doubles nothing at the seam) — unless a gateway restart came between
  (an end recorded before a crash is announced after it, from the store, with its text streamed before the crash).
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
    if len(terminals) == 1 and not seen.restarts_seen and (mismatch := _answer_not_streamed(events, terminals[0])):
        problems.append(f"{name}: {mismatch}")
    return problems


def _answer_not_streamed(events: list[dict[str, Any]], terminal: dict[str, Any]) -> str | None:
    """Why a text answer differs from what streamed since the last reset (None when it does not, or is not text: an
    error, a structured object, an end rebuilt from the store after the log was lost)."""
    data = terminal.get("data")
    if terminal["type"] != "response" or terminal.get("from_store") or not isinstance(data, dict):
        return None
    if not isinstance(data.get("content"), str) or data.get("tool_calls"):
        return None
    since = max((i for i, e in enumerate(events) if e.get("type") == "reset"), default=-1)
    streamed = "".join(e.get("text", "") for e in events[since + 1 :] if e.get("type") == "delta")
    if streamed != data["content"]:
        return f"the answer ({len(data['content'])} chars) is not what streamed since the last reset ({len(streamed)})"
    return None

"""A finished request's terminal event rebuilt from the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import orjson

from sluice.events import ErrorEvent, ResponseEvent
from sluice.lifecycle.outcome import Outcome, terminal_from_store
from sluice.store import RequestRecord

DONE = RequestRecord(
    id="r", project_id="p", workflow="w", status="completed", mode="async", body={}, metadata=None,
    idempotency_key=None, body_hash=None, data={"reply": "hi"}, error=None, meta={"provider": "sim"}, run_count=1,
    seq_reserved=10_000, terminal_seq=9, created_at=datetime(2026, 12, 3, 10, 0, tzinfo=UTC), started_at=None,
    first_token_at=None, completed_at=datetime(2026, 12, 3, 10, 0, 1, 234000, tzinfo=UTC),
)  # fmt: skip


def test_an_announced_end_keeps_its_number_and_says_where_it_came_from() -> None:
    wire = terminal_from_store(DONE)
    assert orjson.loads(wire.data) == {
        "seq": 9, "type": "response", "ts": "2026-12-03T10:00:01.234Z", "data": {"reply": "hi"},
        "meta": {"provider": "sim"}, "from_store": True,
    }  # fmt: skip
    assert isinstance(wire.event, ResponseEvent) and wire.event.from_store and wire.terminal


def test_an_end_never_announced_is_numbered_past_the_run() -> None:
    failed = replace(DONE, status="failed", data=None, error={"code": "x", "message": "y"}, terminal_seq=None)
    wire = terminal_from_store(failed)
    assert wire.seq == 10_001 and isinstance(wire.event, ErrorEvent)
    assert (wire.event.code, wire.event.message, wire.event.from_store) == ("x", "y", True)


def test_a_live_terminal_event_does_not_carry_the_marker() -> None:
    assert "from_store" not in Outcome(status="completed", data=1).terminal_event().to_wire(3)
    assert Outcome.of(DONE) == Outcome(status="completed", data={"reply": "hi"}, meta={"provider": "sim"})

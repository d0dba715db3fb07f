"""Event timestamps: ISO-8601 UTC with milliseconds and a `Z` (DESIGN.md §3), right across second boundaries; the
`thinking` event on the wire."""

from __future__ import annotations

import orjson
import pytest

from sluice import events


@pytest.mark.parametrize(
    ("now", "stamp"),
    [
        (1_700_000_000.999, "2023-11-14T22:13:20.999Z"),
        (1_700_000_001.0004, "2023-11-14T22:13:21.000Z"),
        (1_700_000_001.25, "2023-11-14T22:13:21.250Z"),
        (1_700_000_000.5, "2023-11-14T22:13:20.500Z"),  # back in time (a clock step): still the right second
    ],
)
def test_timestamps(monkeypatch: pytest.MonkeyPatch, now: float, stamp: str) -> None:
    monkeypatch.setattr(events.time, "time", lambda: now)
    assert events.utc_timestamp() == stamp


def test_a_thinking_event_carries_its_signature_or_redacted_data_only_when_set() -> None:
    piece = events.ThinkingEvent(ts="t", index=0, text="Hmm")
    signed = events.ThinkingEvent(ts="t", index=0, signature="c2ln")
    redacted = events.ThinkingEvent(ts="t", index=1, redacted="b3A=")
    assert piece.to_wire(3) == '{"seq":3,"type":"thinking","ts":"t","index":0,"text":"Hmm"}'
    assert signed.payload() == {"index": 0, "text": "", "signature": "c2ln"}
    assert redacted.payload() == {"index": 1, "text": "", "redacted": "b3A="}
    for event in (piece, signed, redacted):  # another instance reads them back as they were
        assert events.parse_event(orjson.loads(event.to_wire(1))) == event

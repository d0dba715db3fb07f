"""Event timestamps: ISO-8601 UTC with milliseconds and a `Z` (DESIGN.md §3), right across second boundaries."""

from __future__ import annotations

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

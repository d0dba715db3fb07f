"""`finish`: record, then announce, then hand off — and nothing after a refused record."""

from __future__ import annotations

from sluice.events import Event, WireEvent
from sluice.lifecycle.finish import announce, finish
from sluice.lifecycle.outcome import Outcome


class Journal:
    """Every port call, in order, in one list."""

    def __init__(self, *, accept: bool = True, channel_open: bool = True) -> None:
        self.calls: list[tuple[str, object]] = []
        self.accept = accept
        self.channel_open = channel_open

    async def record(self, outcome: Outcome) -> bool:
        self.calls.append(("record", outcome.status))
        return self.accept

    async def announced(self, terminal_seq: int | None) -> None:
        self.calls.append(("announced", terminal_seq))

    async def emit(self, event: Event) -> WireEvent | None:
        self.calls.append(("emit", event.type))
        return WireEvent(7, event.type, event.to_wire(7), event) if self.channel_open else None

    async def hand_off(self, outcome: Outcome) -> None:
        self.calls.append(("hand_off", outcome.status))


async def test_record_then_announce_then_hand_off() -> None:
    journal = Journal()
    wire = await finish(Outcome(status="completed", data={"a": 1}), journal, journal, journal.hand_off)
    assert journal.calls == [("record", "completed"), ("emit", "response"), ("announced", 7), ("hand_off", "completed")]
    assert wire is not None and wire.seq == 7 and wire.event.data == {"a": 1}  # type: ignore[attr-defined]


async def test_an_end_the_store_refuses_is_not_announced() -> None:
    journal = Journal(accept=False)  # the request finished meanwhile (another instance won)
    assert await finish(Outcome.failed("x", "y"), journal, journal, journal.hand_off) is None
    assert journal.calls == [("record", "failed")]


async def test_a_channel_that_already_ended_is_noted_and_the_hand_off_still_happens() -> None:
    journal = Journal(channel_open=False)
    assert await announce(Outcome.failed("boom", "it broke"), journal, journal, journal.hand_off) is None
    assert journal.calls == [("emit", "error"), ("announced", None), ("hand_off", "failed")]


async def test_the_terminal_event_of_each_outcome() -> None:
    response = Outcome(status="completed", data=[1], meta={"m": 1}).terminal_event()
    assert (response.type, response.data, response.meta) == ("response", [1], {"m": 1})  # type: ignore[union-attr]
    error = Outcome.internal_error(KeyError("k")).terminal_event()
    assert (error.code, error.message) == ("internal_error", "the gateway failed: KeyError")  # type: ignore[union-attr]
    cancelled = Outcome(status="cancelled").terminal_event()
    assert (cancelled.type, cancelled.code) == ("error", "cancelled")  # type: ignore[union-attr]

"""What a cancelled request keeps: the output its subscribers were shown, read from its channel's log."""

from __future__ import annotations

from sluice.broker.memory import MemoryBroker
from sluice.channel.partial import Streamed, streamed_of, streamed_output
from sluice.events import AttemptEvent, DeltaEvent, Event, PartialEvent, ResetEvent, StatusEvent, WireEvent


def wires(*events: Event) -> list[WireEvent]:
    return [WireEvent(seq, event.type, None, event) for seq, event in enumerate(events, 1)]


def test_the_text_and_partial_object_since_the_last_reset() -> None:
    events = wires(
        StatusEvent(status="running"),
        DeltaEvent(text="withdrawn"),
        ResetEvent(reason="attempt 1 failed"),
        AttemptEvent(provider="b", model="m", attempt=2),
        DeltaEvent(text='{"reply": "Hel'),
        PartialEvent(data={"reply": "Hel"}),
        DeltaEvent(text="lo"),
    )
    streamed = streamed_of(events)
    assert streamed == Streamed(text='{"reply": "Hello', partial={"reply": "Hel"})
    assert streamed.data == {"reply": "Hel"}  # a schema's answer: the object as far as it was parsed
    assert streamed_of(events[:4]).data is None  # nothing shown since the reset
    assert Streamed(text="plain").data == {"content": "plain"}  # no schema: the assistant message so far


async def test_read_from_the_log_up_to_a_number() -> None:
    broker = MemoryBroker()
    await broker.open_log("c")
    for text in ("a", "b", "c"):
        await broker.append("c", DeltaEvent(text=text))
    assert (await streamed_output(broker, "c")).text == "abc"
    assert (await streamed_output(broker, "c", upto=2)).text == "ab"
    assert await streamed_output(broker, "missing") == Streamed()
    assert await broker.watched("c") is False  # the read leaves no subscription behind

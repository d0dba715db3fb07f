"""The end of a request, in the one order every path uses: record, then announce, then hand off.

1. record — the outcome goes to the store (with the lifecycle webhook it triggers, in the same transaction), or to
   the write-behind request log for a pass-through. Refused if the request already finished: of two instances
   finishing the same request only the first one wins, and the loser announces nothing.
2. announce — the terminal event is appended to the channel (the broker takes exactly one), and its number noted.
3. hand off — what follows the end (the webhook recorded in step 1 is sent).

Recorded before announced: if the gateway dies in between, the request is finished and is not run again, so no
second, different outcome can reach subscribers who saw the first; the announcement is made up later from the
store (`announce` alone: a reclaimed job, a callback wait taken up after a restart) or, once the log is gone, a
subscriber gets the end from the store (`sluice.lifecycle.outcome.terminal_from_store`).

Used by the worker, the pass-through, the callback step (callback received, timed out, webhook exhausted),
cancellation and the repair of an end that was never announced.

Every end also releases the budget the request held (`release`, `sluice.budgets`), once it is recorded; what its
attempts cost was added when its run ended (a run whose end is refused, the request having been cancelled meanwhile,
still spent it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sluice.events import WireEvent
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.ports import ChannelWriter, OutcomeRecorder

HandOff = Callable[[Outcome], Awaitable[None]]
Release = Callable[[], Awaitable[None]]
# The release of a request's budget hold, from its stored reservation (`sluice.budgets.Budgets.releaser`).
ReleaseFor = Callable[[dict[str, Any] | None], Release | None]


async def finish(
    outcome: Outcome,
    recorder: OutcomeRecorder,
    channel: ChannelWriter,
    hand_off: HandOff | None = None,
    release: Release | None = None,
) -> WireEvent | None:
    """Record (and release the budget held), announce, hand off. Returns the terminal event as the channel has it
    (None if not announced)."""
    if not await recorder.record(outcome):
        return None
    if release is not None:
        await release()
    return await announce(outcome, recorder, channel, hand_off)


async def announce(
    outcome: Outcome, recorder: OutcomeRecorder, channel: ChannelWriter, hand_off: HandOff | None = None
) -> WireEvent | None:
    """Steps 2 and 3 for an outcome already recorded."""
    wire = await channel.emit(outcome.terminal_event())
    await recorder.announced(wire.seq if wire is not None else None)
    if hand_off is not None:
        await hand_off(outcome)
    return wire

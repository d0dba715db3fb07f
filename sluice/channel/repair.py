"""Announcing an end that was recorded but never announced: the gateway died between the two steps of `finish()`.

Called on the write side — by the worker for a job reclaimed from a dead instance, by the callback step for a wait
taken up after a restart — so that no subscriber has to watch the store for it.
"""

from __future__ import annotations

from sluice.broker.base import ChannelLogs
from sluice.channel.writer import Channel
from sluice.lifecycle.finish import announce
from sluice.lifecycle.outcome import Outcome
from sluice.store import RequestRecord, Store
from sluice.store.outcomes import StoredOutcome


async def announce_recorded(logs: ChannelLogs, store: Store, record: RequestRecord) -> bool:
    """Append the recorded end to the channel's log, if it is finished, unannounced and its log is still held (where
    the log is gone, subscribers get the end from the store). True if it was announced."""
    if not record.finished or record.terminal_seq is not None or await logs.log_info(record.id) is None:
        return False
    channel = Channel(logs, store, record.id, record.seq_reserved)
    return await announce(Outcome.of(record), StoredOutcome(store, record.id, expected=()), channel) is not None

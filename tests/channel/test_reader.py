"""Reading a channel: an idle subscriber waits on the broker and never reads the store; the store answers only for a
log that is not held (retention passed, broker data lost)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import websockets

from sluice.broker.errors import LogLost
from sluice.broker.memory import MemoryBroker
from sluice.channel.reader import channel_batches, wait_terminal
from sluice.errors import NotFound, ServiceUnavailable
from sluice.events import DeltaEvent, ResponseEvent, StatusEvent, WireEvent
from sluice.store import RequestRecord
from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, chat_body, write_config

FINISHED = RequestRecord(
    id="ch", project_id="p", workflow="w", status="completed", mode="async", body={}, metadata=None,
    idempotency_key=None, body_hash=None, data={"ok": True}, error=None, meta={}, run_count=1, seq_reserved=10_000,
    terminal_seq=4, created_at=datetime(2026, 12, 3, tzinfo=UTC), started_at=None, first_token_at=None,
    completed_at=datetime(2026, 12, 3, tzinfo=UTC),
)  # fmt: skip


class Records:
    def __init__(self, record: RequestRecord | None) -> None:
        self.record = record
        self.reads = 0

    async def get_request(self, request_id: str) -> RequestRecord | None:
        self.reads += 1
        return self.record


async def take(batches: AsyncIterator[list[WireEvent] | None], count: int) -> list[list[WireEvent] | None]:
    taken: list[list[WireEvent] | None] = []
    async with asyncio.timeout(5):
        async for batch in batches:
            taken.append(batch)
            if len(taken) == count:
                break
    return taken


async def test_an_idle_subscriber_only_waits_on_the_broker() -> None:
    broker, records = MemoryBroker(), Records(replace(FINISHED, status="running", terminal_seq=None))
    await broker.open_log("ch")
    await broker.append("ch", StatusEvent(status="running"))
    batches = channel_batches(broker, records, "ch", 0, heartbeat=0.02)
    first, *idle = await take(batches, 6)
    assert [e.type for e in first or []] == ["status"] and idle == [None] * 5  # five heartbeats, no event
    assert records.reads == 0
    await broker.append("ch", DeltaEvent(text="late"))
    await broker.append("ch", ResponseEvent(data=1))
    rest = [batch async for batch in batches if batch is not None]
    assert [e.type for batch in rest for e in batch] == ["delta", "response"] and records.reads == 0


async def test_past_retention_the_store_gives_the_end_once() -> None:
    records = Records(FINISHED)
    [[end]] = [batch async for batch in channel_batches(MemoryBroker(), records, "ch", 0, 1.0)]  # type: ignore[misc]
    assert end.seq == 4 and end.event == ResponseEvent(data={"ok": True}, from_store=True, ts=end.event.ts)
    assert [b async for b in channel_batches(MemoryBroker(), records, "ch", 4, 1.0)] == []  # already seen
    with pytest.raises(NotFound, match="no channel 'ch'"):
        [b async for b in channel_batches(MemoryBroker(), Records(None), "ch", 0, 1.0)]


async def test_a_lost_log_sends_the_reader_to_the_store() -> None:
    class Losing(MemoryBroker):
        def subscribe(self, channel_id: str, after: int) -> Any:
            inner = super().subscribe(channel_id, after)

            class Lost:
                async def next_batch(self, wait: float) -> list[WireEvent]:
                    if batch := await inner.next_batch(0):
                        return batch
                    broker._logs.clear()  # what Redis losing its data looks like to a subscriber
                    raise LogLost("gone")

                def close(self) -> None:
                    inner.close()

            return Lost()

    broker, records = Losing(), Records(FINISHED)
    await broker.open_log("ch")
    await broker.append("ch", StatusEvent(status="running"))
    batches = [batch async for batch in channel_batches(broker, records, "ch", 0, 1.0)]
    assert [[e.type for e in b or []] for b in batches] == [["status"], ["response"]] and records.reads == 1


async def test_an_unfinished_request_without_a_log_waits_for_recovery_to_reopen_it() -> None:
    broker, records = MemoryBroker(), Records(replace(FINISHED, status="queued", terminal_seq=None))
    waiting = asyncio.create_task(take(channel_batches(broker, records, "ch", 0, heartbeat=1.0), 2))
    await asyncio.sleep(0.05)
    await broker.open_log("ch", next_seq=10_001)  # what `Worker.recover` does
    await broker.append("ch", ResponseEvent(data=2))
    [only] = await waiting
    assert only is not None and [e.seq for e in only] == [10_001]
    assert records.reads == 1  # once, then only the broker until the log is back


async def test_wait_terminal_gives_up_after_a_silence() -> None:
    broker = MemoryBroker()
    await broker.open_log("ch")
    with pytest.raises(ServiceUnavailable, match="no result within 0s"):
        await wait_terminal(broker, Records(FINISHED), "ch", 0.05)


async def test_idle_websocket_subscribers_read_no_request_rows(start_gateway: StartGateway, tmp_path: Path) -> None:
    """20 browsers connected to a request whose provider is slow to answer: their heartbeats cost no store read."""
    async with FakeProvider("openai", text="a slow answer") as fake:
        fake.script(Script(first_byte_delay=4.0))
        config = write_config(tmp_path, f"""
providers:
  slow: {{type: openai, api_key: k, base_url: "{fake.base_url}"}}
workflows:
  slow: {{chain: [{{provider: slow, model: m, timeouts: {{first_token: 10}}}}]}}
""")  # fmt: skip
        gw = await start_gateway(config_path=config)
        async with gw.client() as client:
            accepted = (await client.post("/v1/ai/async", json=chat_body("hi", workflow="slow"))).json()
        reads: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if re.search(r"\bFROM requests\b", statement):
                reads.append(statement)

        sockets = [await websockets.connect(accepted["websocket_url"]) for _ in range(20)]
        try:
            heartbeats = {i: 0 for i in range(len(sockets))}

            async def until_idle(i: int, ws: Any) -> None:
                while heartbeats[i] < 1:  # connected, replayed, and one heartbeat in: from now on, idle
                    heartbeats[i] += '"heartbeat"' in await ws.recv()

            async with asyncio.timeout(10):
                await asyncio.gather(*(until_idle(i, ws) for i, ws in enumerate(sockets)))
            sa.event.listen(gw.gateway.store.engine.sync_engine, "before_cursor_execute", count)

            async def idle(i: int, ws: Any) -> None:
                while heartbeats[i] < 3:
                    frame = await ws.recv()
                    assert '"heartbeat"' in frame, f"the answer came too soon for this test: {frame}"
                    heartbeats[i] += 1

            async with asyncio.timeout(10):
                await asyncio.gather(*(idle(i, ws) for i, ws in enumerate(sockets)))
            sa.event.remove(gw.gateway.store.engine.sync_engine, "before_cursor_execute", count)
            assert reads == [], f"{len(reads)} reads of requests while 20 subscribers idled: {reads[:3]}"
            async with asyncio.timeout(15):
                last = [[frame async for frame in ws][-1] for ws in sockets]
        finally:
            for ws in sockets:
                await ws.close()
    assert all('"type":"response"' in frame for frame in last)

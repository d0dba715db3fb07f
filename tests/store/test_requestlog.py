"""The write-behind request log: stopping while a batch is being written loses nothing and does not hang."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sluice.channel.writer import SEQ_BLOCK
from sluice.engine.ports import AttemptRecord
from sluice.settings import Settings
from sluice.store import RequestRecord, Store
from sluice.store.database import create_engine, migrate
from sluice.store.requestlog import RequestLog
from sluice.store.store import now


class HeldStore(Store):
    """A store whose write transactions wait for `release` once `hold` is set: a write caught in the middle."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.hold, self.holding, self.release = False, asyncio.Event(), asyncio.Event()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Any]:
        async with super().writing() as conn:
            if self.hold:
                self.holding.set()
                await self.release.wait()
            yield conn


def finished(request_id: str, project_id: str) -> RequestRecord:
    moment = now()
    return RequestRecord(
        id=request_id,
        project_id=project_id,
        workflow="demo",
        status="completed",
        mode="sync",
        body={"workflow": "demo", "messages": []},
        metadata=None,
        idempotency_key=None,
        body_hash=None,
        data={"content": "hi"},
        error=None,
        meta=None,
        run_count=1,
        seq_reserved=SEQ_BLOCK,
        terminal_seq=5,
        created_at=moment,
        started_at=moment,
        first_token_at=None,
        completed_at=moment,
    )


async def test_closing_during_a_write_lets_it_finish_and_writes_the_rest(tmp_path: Path) -> None:
    store = HeldStore(create_engine(Settings(data_dir=tmp_path).resolved_database_url))
    try:
        await migrate(store.engine)
        project = await store.ensure_project()
        requests = RequestLog(store)
        attempt = AttemptRecord(
            "a", attempt=1, provider="p", model="m", status="succeeded", started_at=now(), duration_ms=1
        )
        await requests.record_attempt(attempt)
        store.hold = True
        requests.finish(finished("a", project))
        async with asyncio.timeout(5):
            await store.holding.wait()  # the batch with "a" is being written
        requests.finish(finished("b", project))  # finishes meanwhile: for the next batch
        closing = asyncio.create_task(requests.aclose())  # it must let the write under way finish, not cancel it
        store.hold = False
        store.release.set()
        async with asyncio.timeout(5):
            await closing
        for request_id in ("a", "b"):
            stored = await store.get_request(request_id)
            assert stored is not None and stored.status == "completed", request_id
        assert [a["status"] for a in await store.list_attempts("a")] == ["succeeded"]
    finally:
        await store.aclose()

"""The worker without a server: a real SQLite store, the in-process broker, tasks chosen by the plan's kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sluice.broker.base import Job
from sluice.broker.memory import MemoryBroker
from sluice.events import DeltaEvent, Event, StatusEvent
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.plan import Plan
from sluice.lifecycle.ports import ChannelWriter
from sluice.lifecycle.states import QUEUED
from sluice.settings import Settings
from sluice.store import Store
from sluice.store.database import create_engine, migrate
from sluice.store.outcomes import StoredOutcome
from sluice.worker import Worker
from sluice.workflows.loader import load_catalog
from sluice.workflows.model import Workflow
from tests.store.test_requestlog import finished


class Journal:
    """What happened, in order, across the store and the broker."""

    def __init__(self) -> None:
        self.entries: list[str] = []


class JournaledStore(Store):
    def __init__(self, journal: Journal, *args: Any) -> None:
        super().__init__(*args)
        self.journal = journal

    async def finish_request(self, request_id: str, outcome: Outcome, **kwargs: Any) -> bool:
        self.journal.entries.append(f"record {outcome.status}")
        return await super().finish_request(request_id, outcome, **kwargs)


class JournaledBroker(MemoryBroker):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    async def append(self, channel_id: str, event: Event) -> Any:
        self.journal.entries.append(f"append {event.type}")
        return await super().append(channel_id, event)


async def echo(channel: ChannelWriter, request_id: str, workflow: Workflow, body: dict[str, Any], *,
               streamed: bool, attempts: list[dict[str, Any]] | None = None) -> Outcome:  # fmt: skip
    await channel.emit(DeltaEvent(text="echo"))
    return Outcome(status="completed", data={"content": body["messages"][0]["content"]})


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[Journal, JournaledStore, JournaledBroker]]:
    journal = Journal()
    store = JournaledStore(journal, create_engine(Settings(data_dir=tmp_path).resolved_database_url))
    await migrate(store.engine)
    yield journal, store, JournaledBroker(journal)
    await store.aclose()


async def queued(store: Store, broker: MemoryBroker, plan: Plan, request_id: str = "r1") -> None:
    project = await store.ensure_project()
    record = replace(finished(request_id, project), status=QUEUED, terminal_seq=None, completed_at=None, run_count=0)
    record = replace(record, body={"workflow": "demo", "messages": [{"role": "user", "content": "hi"}]})
    await store.insert_request(replace(record, plan=plan.to_record()))
    await broker.open_log(request_id)


async def events_of(broker: MemoryBroker, channel_id: str) -> list[Event]:
    return [wire.event for wire in await broker.subscribe(channel_id, 0).next_batch(0)]


async def test_the_worker_runs_the_task_of_the_plans_kind_and_finishes_in_order(parts: Any) -> None:
    journal, store, broker = parts
    await queued(store, broker, Plan(kind="chat"))
    catalog = load_catalog(None)
    await Worker(broker, store, {"chat": echo}, lambda: catalog).process(Job("r1"))
    assert journal.entries == ["append delta", "record completed", "append response"]  # recorded, then announced
    stored = await store.get_request("r1")
    assert stored is not None and stored.data == {"content": "hi"} and stored.terminal_seq == 2


async def test_a_kind_this_gateway_cannot_run_fails_with_a_clear_error(parts: Any) -> None:
    _, store, broker = parts
    await queued(store, broker, Plan(kind="embeddings"))
    catalog = load_catalog(None)
    await Worker(broker, store, {"chat": echo}, lambda: catalog).process(Job("r1"))
    [end] = await events_of(broker, "r1")
    assert (end.type, end.code) == ("error", "unsupported_request")  # type: ignore[attr-defined]


async def test_a_reclaimed_job_announces_an_end_recorded_by_a_run_that_died(parts: Any) -> None:
    journal, store, broker = parts
    await queued(store, broker, Plan())
    await broker.append("r1", StatusEvent(status="running"))
    # The run that died: it recorded its end, and the gateway was killed before the announcement.
    await StoredOutcome(store, "r1", expected=(QUEUED,)).record(Outcome(status="completed", data={"done": True}))
    catalog = load_catalog(None)
    await Worker(broker, store, {"chat": echo}, lambda: catalog).process(Job("r1"))  # another instance claims the job
    kinds = [e.type for e in await events_of(broker, "r1")]
    assert kinds == ["status", "response"] and "append delta" not in journal.entries  # announced, not run again
    stored = await store.get_request("r1")
    assert stored is not None and stored.terminal_seq == 2


@pytest.mark.parametrize(("crashed_runs", "ends"), [(2, "response"), (3, "job_crashed")])
async def test_a_request_whose_runs_kept_crashing_is_failed_not_run_again(
    parts: Any, crashed_runs: int, ends: str
) -> None:
    journal, store, broker = parts
    await queued(store, broker, Plan())
    for _ in range(crashed_runs):  # each crashed run left the request running, its run counted
        await store.start_run("r1")
    catalog = load_catalog(None)
    await Worker(broker, store, {"chat": echo}, lambda: catalog).process(Job("r1"))  # the default: 3 crashes
    events = await events_of(broker, "r1")
    stored = await store.get_request("r1")
    assert stored is not None and stored.run_count == crashed_runs + 1
    assert events[0].type == "reset"  # the crashed runs' output is retracted either way
    if ends == "response":
        assert "append delta" in journal.entries and events[-1].type == "response"
        return
    assert "append delta" not in journal.entries, "a poison job is not run again"
    assert (events[-1].type, events[-1].code) == ("error", "job_crashed")  # type: ignore[attr-defined]
    assert stored.status == "failed" and stored.error == {"code": "job_crashed", "message": events[-1].message}  # type: ignore[attr-defined]


def test_the_crash_limit_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).job_max_crashes == 3
    assert Settings.from_env({"SLUICE_JOB_MAX_CRASHES": "5"}).job_max_crashes == 5
    with pytest.raises(ValueError, match="SLUICE_JOB_MAX_CRASHES"):
        Settings.from_env({"SLUICE_JOB_MAX_CRASHES": "0"})


async def test_a_run_on_a_log_a_cancel_sealed_ends_the_request_the_cancel_did_not_record(parts: Any) -> None:
    _, store, broker = parts
    await queued(store, broker, Plan())
    await broker.append("r1", DeltaEvent(text="shown"))
    await broker.seal("r1")  # the instance cancelling it sealed the log, then died before recording the end
    catalog = load_catalog(None)
    await Worker(broker, store, {"chat": echo}, lambda: catalog).process(Job("r1"))
    stored = await store.get_request("r1")
    assert stored is not None and stored.status == "cancelled" and stored.data == {"content": "shown"}
    kinds = [e.type for e in await events_of(broker, "r1")]
    assert kinds == ["delta", "error"]  # the run's own delta was refused: the log was sealed

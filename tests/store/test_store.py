"""The store's side of `finish()`: a conditional end, recorded with the webhooks it triggers in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.plan import Plan
from sluice.lifecycle.states import AWAITING_CALLBACK, COMPLETED, RUNNING, UNFINISHED
from sluice.settings import Settings
from sluice.store import Store
from sluice.store.database import create_engine, migrate
from sluice.store.deliveries import WebhookStore
from sluice.store.outcomes import StoredOutcome
from sluice.store.store import now
from tests.store.test_requestlog import finished


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(create_engine(Settings(data_dir=tmp_path).resolved_database_url))
    await migrate(store.engine)
    yield store
    await store.aclose()


async def running(store: Store, request_id: str = "r1") -> str:
    project = await store.ensure_project()
    plan = Plan(target="https://b.example/w", lifecycle=frozenset({COMPLETED}))
    record = replace(finished(request_id, project), status=RUNNING, terminal_seq=None, completed_at=None)
    await store.insert_request(replace(record, plan=plan.to_record()))
    return project


async def test_an_end_and_its_webhook_are_recorded_together(store: Store) -> None:
    project = await running(store)
    webhooks = WebhookStore(store.engine)
    row = webhooks.delivery_row(project_id=project, request_id="r1", type="task.completed", url="https://b", body="{}",
                                lease=60)  # fmt: skip
    recorder = StoredOutcome(store, "r1", expected=UNFINISHED, deliveries=[row])
    assert await recorder.record(Outcome(status=COMPLETED, data={"a": 1}))
    stored = await store.get_request("r1")
    assert stored is not None and stored.status == COMPLETED and stored.data == {"a": 1} and stored.terminal_seq is None
    assert [d.id for d in await webhooks.list_deliveries(project, request_id="r1")] == [row["id"]]
    await recorder.announced(12)
    stored = await store.get_request("r1")
    assert stored is not None and stored.terminal_seq == 12
    assert Plan.from_record(stored.plan or {}).target == "https://b.example/w"  # the plan came back as stored


async def test_a_second_end_is_refused_and_writes_nothing(store: Store) -> None:
    project = await running(store)
    webhooks = WebhookStore(store.engine)
    assert await StoredOutcome(store, "r1", expected=UNFINISHED).record(Outcome(status=COMPLETED, data={"v": 1}))
    late_row = webhooks.delivery_row(project_id=project, request_id="r1", type="task.failed", url="https://b",
                                     body="{}", lease=60)  # fmt: skip
    late = StoredOutcome(store, "r1", expected=UNFINISHED, deliveries=[late_row])
    assert not await late.record(Outcome.failed("late", "another instance finished it"))
    stored = await store.get_request("r1")
    assert stored is not None and stored.status == COMPLETED and stored.data == {"v": 1}
    assert await webhooks.list_deliveries(project, request_id="r1") == []
    assert not await StoredOutcome(store, "r1", expected=(AWAITING_CALLBACK,)).record(Outcome(status=COMPLETED))


async def test_the_callback_step_does_not_begin_for_a_request_cancelled_as_its_run_finished(store: Store) -> None:
    project = await running(store)
    webhooks = WebhookStore(store.engine)
    cancelled = StoredOutcome(store, "r1", expected=UNFINISHED)
    assert await cancelled.record(Outcome.cancelled("api", {"content": "half"}))
    began = await webhooks.begin_callback(
        request_id="r1", project_id=project, token_hash="h" * 64, on_timeout="fail", expires_at=now(),
        data={"content": "whole"}, meta={}, delivery={"type": "task.ai_generated", "url": "https://b", "body": "{}"},
        lease=60,
    )  # fmt: skip
    stored = await store.get_request("r1")
    assert began is None and stored is not None and stored.status == "cancelled" and stored.data == {"content": "half"}
    assert await webhooks.get_wait("r1") is None and await webhooks.list_deliveries(project, request_id="r1") == []

"""Background responses with the official `openai` package: Sluice's durable async job behind `background=True`,
read back with `responses.retrieve`, streamed at once and resumed with `starting_after` (the numbering continuous),
cancelled through the lifecycle's one `finish()`, followed by a browser over the channel, and given a webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from sluice.events import ErrorEvent, ResponseEvent
from sluice.testing import FakeProvider, Script
from tests.conftest import RunningGateway, StartGateway, write_config
from tests.delivery.receiver import json_of, running_receiver

MODEL = "openai/model-x"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider("openai") as op:
        yield op


@pytest.fixture
async def gateway(start_gateway: StartGateway, tmp_path: Path, fake: FakeProvider) -> RunningGateway:
    config = f"providers:\n  openai: {{type: openai, api_key: k, base_url: '{fake.base_url}'}}\n"
    return await start_gateway(config_path=write_config(tmp_path, config))


def sdk(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.api_key, max_retries=0, timeout=10)


def dumped(events: list[Any]) -> list[dict[str, Any]]:
    return [event.model_dump() for event in events]


async def test_a_background_response_is_queued_then_read_back_completed(
    gateway: RunningGateway, fake: FakeProvider
) -> None:
    fake.script(Script(text="Done in the background."))
    async with sdk(gateway) as client:
        queued = await client.responses.create(model=MODEL, input="Work.", background=True)
        assert queued.status == "queued" and queued.background is True and queued.output == []
        terminal = await gateway.gateway.wait_terminal(queued.id)  # the response id is the request's
        assert isinstance(terminal.event, ResponseEvent)
        done = await client.responses.retrieve(queued.id)
    assert done.status == "completed" and done.output_text == "Done in the background."
    assert done.id == queued.id and done.created_at == queued.created_at and done.completed_at is not None
    record = await gateway.gateway.store.get_request(queued.id)
    assert record is not None and record.mode == "async" and record.body["api"] == "openai.responses"


async def test_a_background_stream_resumes_after_any_event_with_continuous_numbers(
    gateway: RunningGateway, fake: FakeProvider
) -> None:
    fake.script(Script(text="Streams in several small pieces for the resume.", chunk_delay=0.02))
    async with sdk(gateway) as client:
        stream = await client.responses.create(model=MODEL, input="Go.", background=True, stream=True)
        head = []
        async for event in stream:  # leave after a few events, while it still runs
            head.append(event)
            if len(head) == 5:
                break
        await stream.close()
        response_id = head[0].response.id
        tail = [event async for event in await client.responses.retrieve(response_id, stream=True, starting_after=4)]
        whole = [event async for event in await client.responses.retrieve(response_id, stream=True)]
    assert [event.type for event in head[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert head[0].response.status == "queued"
    assert [event.sequence_number for event in head + tail] == list(range(len(head) + len(tail)))
    assert dumped(head + tail) == dumped(whole)  # the same channel renders the same events
    assert tail[-1].type == "response.completed"
    assert tail[-1].response.output_text == "Streams in several small pieces for the resume."
    middle = len(whole) // 2
    async with sdk(gateway) as client:  # the SDK's own resume: it filters what it is sent
        async with client.responses.stream(response_id=response_id, starting_after=middle) as helper:
            rest = [event async for event in helper]
    assert [event.sequence_number for event in rest] == list(range(middle + 1, len(whole)))


async def test_cancel_ends_a_running_response_once_and_its_run_is_refused(
    gateway: RunningGateway, fake: FakeProvider
) -> None:
    fake.script(Script(text="Too late.", first_byte_delay=1.0))
    async with sdk(gateway) as client:
        queued = await client.responses.create(model=MODEL, input="Slow.", background=True)
        cancelled = await client.responses.cancel(queued.id)
        assert cancelled.status == "cancelled" and cancelled.id == queued.id and cancelled.error is None
        terminal = (await gateway.gateway.wait_terminal(queued.id)).event
        assert isinstance(terminal, ErrorEvent) and terminal.code == "cancelled"
        store = gateway.gateway.store
        await fake.wait_hangup()  # the run is stopped: its provider call closed before the first byte
        async with asyncio.timeout(5):  # and its attempt logged as cut short
            while [a["status"] for a in await store.list_attempts(queued.id)] != ["cancelled"]:
                await asyncio.sleep(0.02)
        again = await client.responses.cancel(queued.id)
        read = await client.responses.retrieve(queued.id)
    assert again.status == read.status == "cancelled" and read.output == []
    record = await store.get_request(queued.id)
    info = await gateway.gateway.broker.log_info(queued.id)
    assert record is not None and record.status == "cancelled" and record.data is None
    assert info is not None and info.last_seq == terminal_seq(record)  # nothing after the one terminal event


def terminal_seq(record: Any) -> int:
    assert record.terminal_seq is not None
    return int(record.terminal_seq)


async def test_cancelling_a_finished_response_returns_it_and_a_foreground_one_is_refused(
    gateway: RunningGateway, fake: FakeProvider
) -> None:
    async with sdk(gateway) as client:
        background = await client.responses.create(model=MODEL, input="Quick.", background=True)
        await gateway.gateway.wait_terminal(background.id)
        unchanged = await client.responses.cancel(background.id)
        assert unchanged.status == "completed" and unchanged.output_text
        foreground = await client.responses.create(model=MODEL, input="Now.")
        with pytest.raises(openai.BadRequestError, match="background"):
            await client.responses.cancel(foreground.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve("req_unknown")


async def test_a_browser_follows_a_background_response_over_its_channel(
    gateway: RunningGateway, fake: FakeProvider
) -> None:
    fake.script(Script(text="For the browser."))
    async with sdk(gateway) as client:
        queued = await client.responses.create(model=MODEL, input="Hi.", background=True)
    async with gateway.client() as http:
        token = (await http.post(f"/v1/channels/{queued.id}/token")).json()["ws_token"]
        async with http.stream(
            "GET", f"/v1/channels/{queued.id}/events", params={"token": token}, headers={"Authorization": ""}
        ) as events:
            text = "".join([chunk async for chunk in events.aiter_text()])
    assert '"type":"response"' in text and "For the browser." in text


async def test_a_background_response_may_carry_a_webhook(gateway: RunningGateway, fake: FakeProvider) -> None:
    fake.script(Script(text="Hooked."))
    async with running_receiver() as receiver, sdk(gateway) as client:
        queued = await client.responses.create(
            model=MODEL, input="Hi.", background=True, extra_body={"webhook_url": receiver.url}
        )
        delivered = json_of(await receiver.next(10))
    assert delivered["request_id"] == queued.id and delivered["ai_response"]["data"] == {"content": "Hooked."}


async def test_a_resume_past_the_retention_says_so_then_gives_the_end(
    start_gateway: StartGateway, tmp_path: Path, fake: FakeProvider
) -> None:
    config = f"providers:\n  openai: {{type: openai, api_key: k, base_url: '{fake.base_url}'}}\n"
    gw = await start_gateway(config_path=write_config(tmp_path, config), retention_seconds=0.05)
    fake.script(Script(text="Kept in the store."))
    async with sdk(gw) as client:
        queued = await client.responses.create(model=MODEL, input="Hi.", background=True)
        await gw.gateway.wait_terminal(queued.id)
        async with asyncio.timeout(5):  # the log goes once the retention has passed
            while await gw.gateway.broker.log_info(queued.id) is not None:
                await asyncio.sleep(0.02)
        events = [event async for event in await client.responses.retrieve(queued.id, stream=True, starting_after=6)]
    assert [(event.type, event.sequence_number) for event in events] == [("error", 7), ("response.completed", 8)]
    assert events[0].code == "events_expired"  # type: ignore[union-attr]
    assert events[1].response.output_text == "Kept in the store."  # type: ignore[union-attr]

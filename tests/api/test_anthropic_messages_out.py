"""The answer in Anthropic's exact shapes (`sluice.api.anthropic_out`): the SSE event sequence, types and data, of a
text answer, a tool call, reasoning and an in-stream error, event by event and through a real gateway; and the
non-streamed `message`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.api.anthropic_out import MessageStream, message_of
from sluice.events import DeltaEvent, ErrorEvent, Event, ResetEvent, ResponseEvent, ThinkingEvent, ToolCallEvent
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols.base import fake_signature, tokens_of
from tests.conftest import RunningGateway, StartGateway, write_config

NO_CACHE = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0, **NO_CACHE},
    },
}


def parse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) per SSE event; the data's `type` always repeats the name."""
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = orjson.loads(lines["data"])
        assert data["type"] == lines["event"]
        events.append((lines["event"], data))
    return events


def rendered(*events: Event | None) -> list[tuple[str, dict[str, Any]]]:
    """The stream's events for these channel events (None: a heartbeat), up to the one that ends it."""
    stream = MessageStream("msg_1", "m")
    out = stream.start()
    for event in events:
        if stream.render(None if event is None else [_Wire(event)], out):
            break
    return parse(b"".join(out))


class _Wire:
    def __init__(self, event: Event) -> None:
        self.event = event


def start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, piece: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": piece}


def stop(index: int) -> tuple[str, dict[str, Any]]:
    return "content_block_stop", {"type": "content_block_stop", "index": index}


def end(stop_reason: str, usage: dict[str, int], stop_sequence: str | None = None) -> list[tuple[str, Any]]:
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": usage,
    }
    return [("message_delta", message_delta), ("message_stop", {"type": "message_stop"})]


PING = ("ping", {"type": "ping"})
USAGE = {"input_tokens": 12, "output_tokens": 7, **NO_CACHE}


def test_thinking_text_and_calls_each_get_their_block_in_answer_order() -> None:
    assert rendered(
        ThinkingEvent(index=0, text="Paris, "),
        ThinkingEvent(index=0, text="so weather."),
        ThinkingEvent(index=0, signature="c2ln"),
        ThinkingEvent(index=1, redacted="b3BhcXVl"),
        DeltaEvent(text="Checking"),
        None,  # a heartbeat
        DeltaEvent(text="."),
        ToolCallEvent(index=0, id="toolu_1", name="get_weather", arguments=""),
        ToolCallEvent(index=0, arguments='{"city": '),
        ToolCallEvent(index=0, arguments='"Paris"}'),
        ToolCallEvent(index=1, id="toolu_2", name="get_time", arguments="{}"),
        ResponseEvent(data={}, meta={"finish_reason": "tool_calls", "usage": {"input_tokens": 12, "output_tokens": 7}}),
    ) == [
        ("message_start", START),
        PING,
        start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "Paris, "}),
        delta(0, {"type": "thinking_delta", "thinking": "so weather."}),
        delta(0, {"type": "signature_delta", "signature": "c2ln"}),
        stop(0),
        start(1, {"type": "redacted_thinking", "data": "b3BhcXVl"}),
        stop(1),
        start(2, {"type": "text", "text": ""}),
        delta(2, {"type": "text_delta", "text": "Checking"}),
        PING,
        delta(2, {"type": "text_delta", "text": "."}),
        stop(2),
        start(3, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
        delta(3, {"type": "input_json_delta", "partial_json": '{"city": '}),
        delta(3, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
        stop(3),
        start(4, {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}),
        delta(4, {"type": "input_json_delta", "partial_json": "{}"}),
        stop(4),
        *end("tool_use", USAGE),
    ]


@pytest.mark.parametrize(
    ("meta", "stop_reason", "sequence"),
    [
        ({"finish_reason": "stop"}, "end_turn", None),
        ({"finish_reason": "length"}, "max_tokens", None),
        ({"finish_reason": "content_filter"}, "refusal", None),
        ({"finish_reason": "stop", "stop_sequence": "END"}, "stop_sequence", "END"),
    ],
)
def test_the_finish_reason_in_anthropics_words(meta: dict[str, Any], stop_reason: str, sequence: str | None) -> None:
    usage = {"input_tokens": 300, "output_tokens": 2, "cached_input_tokens": 200}
    events = rendered(DeltaEvent(text="Hi"), ResponseEvent(data={"content": "Hi"}, meta={**meta, "usage": usage}))
    cached = {"input_tokens": 100, "output_tokens": 2, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 200}
    assert events[-2:] == end(stop_reason, cached, sequence)


def test_the_usage_is_the_answering_attempts_with_the_cache_reads_and_writes_apart() -> None:
    """A request whose first attempt failed: the Messages face reports the attempt that answered (a client sizes its
    context from it), its cache writes in `cache_creation_input_tokens`."""
    answered = {"input_tokens": 1300, "output_tokens": 5, "cached_input_tokens": 200, "cache_write_tokens": 1000}
    meta = {
        "finish_reason": "stop",
        "usage": {"input_tokens": 1400, "output_tokens": 9, "cached_input_tokens": 200, "cache_write_tokens": 1000},
        "attempts": [
            {"status": "failed", "usage": {"input_tokens": 100, "output_tokens": 4, "estimated": True}},
            {"status": "succeeded", "usage": answered},
        ],
    }
    events = rendered(DeltaEvent(text="Hi"), ResponseEvent(data={"content": "Hi"}, meta=meta))
    usage = {
        "input_tokens": 100,
        "output_tokens": 5,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 200,
    }
    assert events[-2:] == end("end_turn", usage, None)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (ErrorEvent(code="rate_limited", message="slow down"), {"type": "rate_limit_error", "message": "slow down"}),
        (ErrorEvent(code="provider_unavailable", message="busy"), {"type": "overloaded_error", "message": "busy"}),
        (
            ResetEvent(reason="attempt 1 failed: cut"),
            {"type": "api_error", "message": "the provider failed after streaming: attempt 1 failed: cut"},
        ),
    ],
)
def test_a_failure_after_the_start_is_an_error_event_that_ends_the_stream(event: Event, error: dict[str, str]) -> None:
    assert rendered(DeltaEvent(text="Hel"), event, DeltaEvent(text="never sent")) == [
        ("message_start", START),
        PING,
        start(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": "Hel"}),
        ("error", {"type": "error", "error": error}),  # and nothing after it: no block stop, no message_stop
    ]


def test_the_message_object_has_thinking_text_and_tool_use_blocks() -> None:
    terminal = ResponseEvent(
        data={
            "content": "Checking.",
            "thinking": [
                {"type": "thinking", "thinking": "Paris.", "signature": "c2ln"},
                {"type": "thinking", "thinking": "unsigned, from another provider"},
                {"type": "redacted_thinking", "data": "b3BhcXVl"},
            ],
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "g", "arguments": "not json"}},
            ],
        },
        meta={"finish_reason": "tool_calls", "usage": {"input_tokens": 5, "output_tokens": 3}},
    )
    assert message_of(terminal, "msg_1", "m") == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "thinking", "thinking": "Paris.", "signature": "c2ln"},
            {"type": "thinking", "thinking": "unsigned, from another provider", "signature": ""},
            {"type": "redacted_thinking", "data": "b3BhcXVl"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "toolu_2", "name": "g", "input": {"arguments": "not json"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 3, **NO_CACHE},
    }


def test_a_structured_answer_is_its_json_text() -> None:
    terminal = ResponseEvent(data={"answer": 2}, meta={"structured_output": True, "finish_reason": "stop"})
    assert message_of(terminal, "msg_1", "m")["content"] == [{"type": "text", "text": '{"answer":2}'}]


# Through a gateway, against the Anthropic fake ---------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider("anthropic") as provider:
        yield provider


@pytest.fixture
async def gateway(start_gateway: StartGateway, tmp_path: Path, fake: FakeProvider) -> RunningGateway:
    config = (
        f"providers:\n  claude: {{type: anthropic, api_key: k, base_url: '{fake.base_url}'}}\n"
        "workflows:\n  once:\n    chain:\n      - {provider: claude, model: claude-x, retries: 0}\n"
    )
    return await start_gateway(config_path=write_config(tmp_path, config))


async def stream_of(gateway: RunningGateway, **body: Any) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    request = {"model": "once", "max_tokens": 64, "stream": True, **body}
    headers = {"x-api-key": gateway.api_key, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        response = await client.post("/v1/messages", json=request, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [event for event in parse(response.content) if event[0] != "ping"]  # heartbeats come when they come
    return response.headers["request-id"], events


def started(request_id: str) -> tuple[str, dict[str, Any]]:
    message = {**START["message"], "id": f"msg_{request_id}", "model": "once"}  # type: ignore[dict-item]
    return "message_start", {"type": "message_start", "message": message}


def usage(fake: FakeProvider, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": tokens_of(fake.requests[-1].body), "output_tokens": output_tokens, **NO_CACHE}


HELLO = [{"role": "user", "content": "Hello"}]


async def test_a_streamed_text_answer_exactly(gateway: RunningGateway, fake: FakeProvider) -> None:
    fake.script(Script(text="Hello there, friend.", chunks=3))
    request_id, events = await stream_of(gateway, messages=HELLO)
    assert events == [
        started(request_id),
        start(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": "Hello "}),
        delta(0, {"type": "text_delta", "text": "there,"}),
        delta(0, {"type": "text_delta", "text": " friend."}),
        stop(0),
        *end("end_turn", usage(fake, 3)),
    ]


async def test_a_streamed_tool_call_exactly(gateway: RunningGateway, fake: FakeProvider) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_paris"}
    fake.script(Script(tool_calls=(call,), argument_chunks=2))
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    request_id, events = await stream_of(gateway, messages=HELLO, tools=[tool])
    assert events == [
        started(request_id),
        start(0, {"type": "tool_use", "id": "toolu_paris", "name": "get_weather", "input": {}}),
        delta(0, {"type": "input_json_delta", "partial_json": '{"city":'}),
        delta(0, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
        stop(0),
        *end("tool_use", usage(fake, 2)),
    ]


async def test_reasoning_streams_as_a_signed_thinking_block_before_the_text(
    gateway: RunningGateway, fake: FakeProvider
) -> None:
    fake.script(Script(thinking="Short question.", text="Hi!", chunks=1))
    thinking = {"type": "enabled", "budget_tokens": 1024}
    request_id, events = await stream_of(gateway, messages=HELLO, thinking=thinking)
    assert events == [
        started(request_id),
        start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "Short"}),
        delta(0, {"type": "thinking_delta", "thinking": " question"}),
        delta(0, {"type": "thinking_delta", "thinking": "."}),
        delta(0, {"type": "signature_delta", "signature": fake_signature("Short question.")}),
        stop(0),
        start(1, {"type": "text", "text": ""}),
        delta(1, {"type": "text_delta", "text": "Hi!"}),
        stop(1),
        *end("end_turn", usage(fake, 4)),
    ]


async def test_an_in_stream_error_exactly(gateway: RunningGateway, fake: FakeProvider) -> None:
    fake.script(Script(text="one two three four", chunks=4, error_after=2))
    request_id, events = await stream_of(gateway, messages=HELLO)
    # Its only provider failed mid-stream, with nothing to continue the answer on: the run's error ends the stream,
    # typed as Anthropic types it (an SDK retries `overloaded_error`).
    error = {"type": "overloaded_error", "message": "claude failed mid-stream: Overloaded (overloaded_error)"}
    assert events == [
        started(request_id),
        start(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": "one "}),
        delta(0, {"type": "text_delta", "text": "two "}),
        ("error", {"type": "error", "error": error}),
    ]

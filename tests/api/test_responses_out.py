"""`sluice.api.responses_out`: the golden event sequences a channel renders to (types, numbers, key data), for a
text answer, a function call, a failure and a background response; rendering is a function of the channel alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sluice.api.responses_out import Echo, EventRenderer, final_of, response_of
from sluice.events import (
    AttemptEvent,
    DeltaEvent,
    ErrorEvent,
    Event,
    FailoverEvent,
    PartialEvent,
    ResetEvent,
    ResponseEvent,
    StatusEvent,
    ToolCallEvent,
)
from sluice.store import RequestRecord

TS = "2026-11-23T10:00:05.000Z"
CREATED = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
USAGE = {"input_tokens": 12, "output_tokens": 3, "cached_input_tokens": 4}
ARGS = '{"city": "Paris"}'


def record(mode: str = "sync", **fields: Any) -> RequestRecord:
    body = {"workflow": "demo", "api": "openai.responses", "messages": [{"role": "user", "content": "hi"}]}
    values: dict[str, Any] = {
        "id": "req_1",
        "project_id": "p",
        "workflow": "demo",
        "status": "running",
        "mode": mode,
        "body": body,
        "metadata": None,
        "idempotency_key": None,
        "body_hash": None,
        "data": None,
        "error": None,
        "meta": None,
        "run_count": 1,
        "seq_reserved": 10_000,
        "terminal_seq": None,
        "created_at": CREATED,
        "started_at": CREATED,
        "first_token_at": None,
        "completed_at": None,
    }
    return RequestRecord(**{**values, **fields})


def render(events: list[Event], mode: str = "sync") -> list[dict[str, Any]]:
    renderer = EventRenderer(Echo.of(record(mode)))
    out = renderer.start()
    for event in events:
        out += renderer.feed(event)
    assert renderer.over
    return out


def outline(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event's number, type and the data that tells it apart."""
    rows: list[tuple[Any, ...]] = []
    for event in events:
        kind, n = event["type"], event["sequence_number"]
        if kind.startswith("response.output_item."):
            item = event["item"]
            rows.append((n, kind, event["output_index"], item["id"], item["type"], item["status"]))
        elif kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            rows.append((n, kind, event["item_id"], event["delta"]))
        elif kind == "response.output_text.done":
            rows.append((n, kind, event["item_id"], event["text"]))
        elif kind == "response.function_call_arguments.done":
            rows.append((n, kind, event["item_id"], event["arguments"]))
        elif kind.startswith("response.content_part."):
            rows.append((n, kind, event["item_id"], event["part"]["text"]))
        elif "response" in event:
            rows.append((n, kind, event["response"]["status"]))
        else:
            rows.append((n, kind, event["code"]))
    return rows


START = [StatusEvent(status="queued"), StatusEvent(status="running"), AttemptEvent(provider="p", model="m", attempt=1)]


def test_a_text_answer() -> None:
    answer = ResponseEvent(data={"content": "Hello"}, meta={"finish_reason": "stop", "usage": USAGE}, ts=TS)
    events = render([*START, DeltaEvent(text="Hel"), PartialEvent(data={}), DeltaEvent(text="lo"), answer])
    assert outline(events) == [
        (0, "response.created", "in_progress"),
        (1, "response.in_progress", "in_progress"),
        (2, "response.output_item.added", 0, "msg_req_1", "message", "in_progress"),
        (3, "response.content_part.added", "msg_req_1", ""),
        (4, "response.output_text.delta", "msg_req_1", "Hel"),
        (5, "response.output_text.delta", "msg_req_1", "lo"),
        (6, "response.output_text.done", "msg_req_1", "Hello"),
        (7, "response.content_part.done", "msg_req_1", "Hello"),
        (8, "response.output_item.done", 0, "msg_req_1", "message", "completed"),
        (9, "response.completed", "completed"),
    ]
    final = events[-1]["response"]
    assert final["id"] == "req_1" and final["object"] == "response" and final["model"] == "demo"
    assert final["output"] == [events[8]["item"]]
    assert final["output"][0]["content"] == [
        {"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello"}
    ]
    assert final["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15,
    }
    assert final["created_at"] == int(CREATED.timestamp()) and final["completed_at"] == int(CREATED.timestamp()) + 5
    assert events[0]["response"]["output"] == [] and events[0]["response"]["usage"] is None


def test_a_function_call() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}}
    answer = ResponseEvent(data={"content": "", "tool_calls": [call]}, meta={"finish_reason": "tool_calls"}, ts=TS)
    pieces = [
        ToolCallEvent(index=0, id="call_1", name="get_weather"),
        ToolCallEvent(index=0, arguments='{"city": '),
        ToolCallEvent(index=0, arguments='"Paris"}'),
    ]
    events = render([*START, *pieces, answer])
    assert outline(events) == [
        (0, "response.created", "in_progress"),
        (1, "response.in_progress", "in_progress"),
        (2, "response.output_item.added", 0, "fc_req_1_0", "function_call", "in_progress"),
        (3, "response.function_call_arguments.delta", "fc_req_1_0", '{"city": '),
        (4, "response.function_call_arguments.delta", "fc_req_1_0", '"Paris"}'),
        (5, "response.function_call_arguments.done", "fc_req_1_0", ARGS),
        (6, "response.output_item.done", 0, "fc_req_1_0", "function_call", "completed"),
        (7, "response.completed", "completed"),
    ]
    item = events[6]["item"]
    assert (item["call_id"], item["name"], item["arguments"]) == ("call_1", "get_weather", ARGS)
    assert events[7]["response"]["output"] == [item]


def test_text_then_a_call_closes_the_message_first_and_a_call_that_came_whole_is_streamed_at_the_end() -> None:
    calls = [{"id": f"call_{k}", "type": "function", "function": {"name": "f", "arguments": "{}"}} for k in (1, 2)]
    answer = ResponseEvent(data={"content": "Hm.", "tool_calls": calls}, meta={"finish_reason": "tool_calls"}, ts=TS)
    events = render(
        [*START, DeltaEvent(text="Hm."), ToolCallEvent(index=0, id="call_1", name="f", arguments="{}"), answer]
    )
    assert [row[:3] for row in outline(events)][2:] == [
        (2, "response.output_item.added", 0),
        (3, "response.content_part.added", "msg_req_1"),
        (4, "response.output_text.delta", "msg_req_1"),
        (5, "response.output_text.done", "msg_req_1"),
        (6, "response.content_part.done", "msg_req_1"),
        (7, "response.output_item.done", 0),
        (8, "response.output_item.added", 1),
        (9, "response.function_call_arguments.delta", "fc_req_1_0"),
        (10, "response.function_call_arguments.done", "fc_req_1_0"),
        (11, "response.output_item.done", 1),
        (12, "response.output_item.added", 2),  # the second call, which the channel never streamed
        (13, "response.function_call_arguments.delta", "fc_req_1_1"),
        (14, "response.function_call_arguments.done", "fc_req_1_1"),
        (15, "response.output_item.done", 2),
        (16, "response.completed", "completed"),
    ]
    assert [item["id"] for item in events[-1]["response"]["output"]] == ["msg_req_1", "fc_req_1_0", "fc_req_1_1"]


def test_a_failure() -> None:
    failed = ErrorEvent(code="rate_limited", message="every provider failed; last error: 429", ts=TS)
    events = render([*START, FailoverEvent(from_="a/m", to="b/m", error="429"), failed])
    assert outline(events) == [
        (0, "response.created", "in_progress"),
        (1, "response.in_progress", "in_progress"),
        (2, "response.failed", "failed"),
    ]
    response = events[-1]["response"]
    assert response["error"] == {
        "code": "rate_limit_exceeded",
        "message": "every provider failed; last error: 429",
        "type": "rate_limited",
    }
    assert response["output"] == [] and response["completed_at"] is None


def test_a_failure_after_text_leaves_the_item_incomplete() -> None:
    events = render([*START, DeltaEvent(text="Hel"), ErrorEvent(code="provider_error", message="cut", ts=TS)])
    assert [row[1] for row in outline(events)][-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    assert events[-2]["item"]["status"] == "incomplete"
    assert events[-1]["response"]["output"] == [events[-2]["item"]]


def test_a_length_cut_is_incomplete() -> None:
    answer = ResponseEvent(data={"content": "Hel"}, meta={"finish_reason": "length"}, ts=TS)
    events = render([*START, DeltaEvent(text="Hel"), answer])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-1]["response"]["output"][0]["status"] == "incomplete"


def test_a_background_response_is_queued_first_and_a_cancel_ends_it() -> None:
    events = render([StatusEvent(status="queued"), ErrorEvent(code="cancelled", message="cancelled", ts=TS)], "async")
    assert outline(events) == [
        (0, "response.created", "queued"),
        (1, "response.queued", "queued"),
        (2, "response.failed", "cancelled"),
    ]
    assert events[0]["response"]["background"] is True and events[-1]["response"]["error"] is None


def test_a_reset_after_text_ends_the_stream_and_before_text_is_invisible() -> None:
    late = render([*START, DeltaEvent(text="Hel"), ResetEvent(reason="cut")])
    assert late[-1] == {
        "type": "error",
        "code": "stream_reset",
        "message": "the provider failed after streaming: cut",
        "param": None,
        "sequence_number": 5,
    }
    answer = ResponseEvent(data={"content": "Hi"}, meta={}, ts=TS)
    early = render([*START, ResetEvent(reason="failover"), DeltaEvent(text="Hi"), answer])
    assert [event["type"] for event in early].count("error") == 0 and early[-1]["type"] == "response.completed"


def test_the_same_channel_renders_the_same_events() -> None:
    answer = ResponseEvent(data={"content": "Hello"}, meta={"usage": USAGE}, ts=TS)
    channel = [*START, DeltaEvent(text="Hello"), answer]
    assert render(channel) == render(channel)


def test_an_answer_in_one_piece_streams_its_text_once() -> None:
    answer = ResponseEvent(data={"answer": 2}, meta={"structured_output": True}, ts=TS)
    events = render([*START, answer])
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    assert deltas == ['{"answer":2}'] and events[-1]["response"]["output"][0]["content"][0]["text"] == '{"answer":2}'


def test_a_stored_record_renders_as_the_stream_ended() -> None:
    done = record(
        status="completed", data={"content": "Hello"}, meta={"usage": USAGE}, terminal_seq=9, completed_at=CREATED
    )
    response = response_of(done)
    terminal = ResponseEvent(data={"content": "Hello"}, meta={"usage": USAGE}, ts=TS)
    streamed = final_of(Echo.of(done), terminal)
    assert response["status"] == "completed" and response["output"] == streamed.output
    assert response["usage"] == streamed.usage
    assert response_of(record(status="queued", mode="async"))["status"] == "queued"
    assert response_of(record(status="awaiting_callback"))["status"] == "in_progress"
    cancelled = record(status="cancelled", error={"code": "cancelled", "message": "the request was cancelled"})
    assert response_of(cancelled)["status"] == "cancelled" and response_of(cancelled)["error"] is None

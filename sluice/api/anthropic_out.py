"""A run's channel events as Anthropic's Messages answer, free of I/O: a `message` object (`message_of`), or the SSE
event sequence of a streamed one (`MessageStream`).

The stream is Anthropic's exactly: `message_start` (the message with empty `content`), then per content block a
`content_block_start`, its `content_block_delta`s (`thinking_delta` and `signature_delta`, `text_delta`,
`input_json_delta`) and a `content_block_stop`, numbered in answer order; `ping` after the start and for every
heartbeat; `message_delta` (`stop_reason`, `stop_sequence`, the usage) and `message_stop`. A failure after the
stream started is an `error` event with Anthropic's error data, and ends it: an Anthropic client cannot take back
text, so a failover after streaming (`reset`) is such an error too.

The answer is the canonical one, from any provider type: thinking blocks (with the signatures an Anthropic provider
gave), text, tool calls (`input` parsed from their JSON arguments), the finish reason in Anthropic's words.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from sluice.api.errors import anthropic_error
from sluice.api.openai_compat import content_of
from sluice.events import DeltaEvent, ErrorEvent, Event, ResetEvent, ResponseEvent, ThinkingEvent, ToolCallEvent
from sluice.spend.usage import answer_usage

# Run failures as the HTTP statuses an Anthropic client understands (529: overloaded, retried); anything else is
# the gateway's side failing (500 `api_error`, retried too).
FAILURE_STATUS = {
    "invalid_request": 400,
    "unsupported_by_provider": 400,
    "model_not_found": 404,
    "rate_limited": 429,
    "provider_timeout": 504,
    "provider_unavailable": 529,
    "circuit_open": 529,
    "cancelled": 499,  # the request was cancelled: not retried (the SDK retries 408, 409, 429 and 5xx)
}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
PING = b'event: ping\ndata: {"type":"ping"}\n\n'


def failure_status(code: str) -> int:
    return FAILURE_STATUS.get(code, 500)


def frame(kind: str, data: dict[str, Any]) -> bytes:
    """One SSE event: Anthropic names each event and repeats its name as the data's `type`."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def error_frame(code: str, message: str) -> bytes:
    return b"event: error\ndata: " + orjson.dumps(anthropic_error(failure_status(code), message)) + b"\n\n"


def message_of(terminal: ResponseEvent, message_id: str, model: str) -> dict[str, Any]:
    """The non-streamed answer: the `message` object."""
    data, meta = terminal.data, terminal.meta
    content: list[dict[str, Any]] = []
    if isinstance(data, dict) and not meta.get("structured_output"):
        content += [thinking_block(block) for block in data.get("thinking") or ()]
        if data.get("content"):
            content.append({"type": "text", "text": str(data["content"])})
        for call in data.get("tool_calls") or ():
            function = call.get("function") or {}
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "input": tool_input(function.get("arguments") or ""),
                }
            )
    else:  # a workflow's schema: the validated object, as JSON text
        content.append({"type": "text", "text": content_of(terminal)})
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        **stop_of(meta),
        "usage": usage_of(answer_usage(meta)),
    }


def thinking_block(block: dict[str, Any]) -> dict[str, Any]:
    """A thinking block of the answer as Anthropic's; one another provider gave has no signature (empty here, and
    left out when the client sends it back to an Anthropic provider)."""
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data") or ""}
    return {"type": "thinking", "thinking": block.get("thinking") or "", "signature": block.get("signature") or ""}


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's arguments as Anthropic's `input` object; text that is not a JSON object (a model's mistake) is kept
    as `{"arguments": <text>}` rather than lost."""
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"arguments": arguments}


def stop_of(meta: dict[str, Any]) -> dict[str, Any]:
    """`stop_reason` and `stop_sequence` from the canonical finish reason (and the stop sequence, where the provider
    said which one ended the answer)."""
    sequence = meta.get("stop_sequence")
    if sequence is not None:
        return {"stop_reason": "stop_sequence", "stop_sequence": sequence}
    return {"stop_reason": STOP_REASONS.get(meta.get("finish_reason") or "stop", "end_turn"), "stop_sequence": None}


def usage_of(usage: dict[str, Any]) -> dict[str, int]:
    """Sluice's usage as Anthropic's, whose `input_tokens` leaves out the tokens read from and written to the prompt
    cache."""
    cached, written = usage.get("cached_input_tokens") or 0, usage.get("cache_write_tokens") or 0
    return {
        "input_tokens": max((usage.get("input_tokens") or 0) - cached - written, 0),
        "output_tokens": usage.get("output_tokens") or 0,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


class MessageStream:
    """The streamed answer's SSE events, from the channel's events in order (`start`, then `render` per batch).

    One content block is open at a time: a thinking piece of another block, text after something else, or a tool
    call's first piece closes the open block and opens the next, so indexes follow the answer's order."""

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self.opened = 0  # blocks opened so far: the next one's index
        self.open: tuple[str, int] | None = None  # ("thinking" | "redacted" | "text" | "tool", source index)
        self.calls: dict[int, int] = {}  # call index → its block's index

    def start(self) -> list[bytes]:
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_of({}),  # the counts come at the end, in `message_delta` (cumulative, as Anthropic's)
        }
        return [frame("message_start", {"message": message}), PING]

    def render(self, batch: list[Any] | None, out: list[bytes]) -> bool:
        """Appends the SSE events of a batch of channel events (None: a heartbeat); True once the stream is over."""
        if batch is None:
            out.append(PING)
            return False
        return any(self.event(wire.event, out) for wire in batch)

    def event(self, event: Event, out: list[bytes]) -> bool:
        match event:
            case ThinkingEvent(index=index, text=text, signature=signature, redacted=redacted):
                if redacted is not None:
                    self._begin(("redacted", index), {"type": "redacted_thinking", "data": redacted}, out)
                    return False
                if self.open != ("thinking", index):
                    self._begin(("thinking", index), {"type": "thinking", "thinking": "", "signature": ""}, out)
                if text:
                    out.append(self._delta({"type": "thinking_delta", "thinking": text}))
                if signature:
                    out.append(self._delta({"type": "signature_delta", "signature": signature}))
            case DeltaEvent(text=text) if text:
                if self.open is None or self.open[0] != "text":
                    self._begin(("text", 0), {"type": "text", "text": ""}, out)
                out.append(self._delta({"type": "text_delta", "text": text}))
            case ToolCallEvent(index=index, id=call_id, name=name, arguments=arguments):
                if index not in self.calls:  # the call's first piece: its id and name
                    block = {"type": "tool_use", "id": call_id or f"toolu_{uuid.uuid4().hex[:24]}", "name": name or ""}
                    self._begin(("tool", index), {**block, "input": {}}, out)
                    self.calls[index] = self.opened - 1
                if arguments:
                    delta = {"type": "input_json_delta", "partial_json": arguments}
                    out.append(frame("content_block_delta", {"index": self.calls[index], "delta": delta}))
            case ResetEvent(reason=reason):
                out.append(error_frame("stream_reset", f"the provider failed after streaming: {reason}"))
                return True
            case ErrorEvent(code=code, message=message):
                out.append(error_frame(code, message))
                return True
            case ResponseEvent(meta=meta):
                self._end(out)
                out.append(frame("message_delta", {"delta": stop_of(meta), "usage": usage_of(answer_usage(meta))}))
                out.append(frame("message_stop", {}))
                return True
        return False

    def _begin(self, kind: tuple[str, int], block: dict[str, Any], out: list[bytes]) -> None:
        self._end(out)
        out.append(frame("content_block_start", {"index": self.opened, "content_block": block}))
        self.open = kind
        self.opened += 1

    def _end(self, out: list[bytes]) -> None:
        if self.open is not None:
            out.append(frame("content_block_stop", {"index": self.opened - 1}))
            self.open = None

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return frame("content_block_delta", {"index": self.opened - 1, "delta": delta})

"""The Responses API's answer, without I/O: the `response` object, and the numbered events a streamed response is
made of, both rendered from a request's channel events (or its stored record).

The events are a function of the channel alone (item ids come from the request id, times from the events' own
stamps), so the same channel always renders the same events with the same `sequence_number`s, from 0: that is what
lets a client resume a stream after event N (`starting_after`) however often it reconnects, and on any instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sluice.api.openai_compat import assistant_message
from sluice.events import DeltaEvent, ErrorEvent, Event, ResetEvent, ResponseEvent, StatusEvent, ToolCallEvent
from sluice.lifecycle.outcome import CANCELLED_CODE, Outcome
from sluice.lifecycle.states import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING
from sluice.spend.usage import answer_usage
from sluice.store import RequestRecord

# OpenAI's documented `response.error.code`s for Sluice's run failures; Sluice's own code goes in `error.type`.
_ERROR_CODES = {"rate_limited": "rate_limit_exceeded", "invalid_request": "invalid_prompt"}
# A finish reason that cuts the answer short, as `incomplete_details.reason`.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def epoch(stamp: datetime | str) -> int | None:
    """Unix seconds of a datetime or of an event's ISO-8601 `ts` (None for an event without one)."""
    if not stamp:
        return None
    moment = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(moment.timestamp())


@dataclass(frozen=True)
class Echo:
    """What every rendering of one response repeats of its request (id, model, instructions, tools…)."""

    id: str
    created_at: int
    model: str
    background: bool
    fields: dict[str, Any]

    @classmethod
    def of(cls, record: RequestRecord) -> Echo:
        body, native = record.body, record.body.get("native") or {}
        choice = body.get("tool_choice", "auto")
        if isinstance(choice, dict):
            choice = {"type": "function", "name": choice["function"]["name"]}
        tools = [{"type": "function", "strict": None, **tool["function"]} for tool in body.get("tools") or ()]
        return cls(
            id=record.id,
            created_at=epoch(record.created_at) or 0,
            model=record.workflow,
            background=record.mode == "async",
            fields={
                "instructions": body.get("system"),
                "max_output_tokens": body.get("max_tokens"),
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": native.get("previous_response_id"),
                "store": native.get("store", True),
                "temperature": body.get("temperature"),
                "text": native.get("text") or {"format": {"type": "text"}},
                "tool_choice": choice,
                "tools": tools,
                "top_p": body.get("top_p"),
                "truncation": "disabled",
                "metadata": body.get("metadata") or {},
            },
        )

    def response(
        self,
        status: str,
        output: list[dict[str, Any]] | None = None,
        *,
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        incomplete: dict[str, Any] | None = None,
        completed_at: int | None = None,
    ) -> dict[str, Any]:
        """The `response` object in this state."""
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": self.background,
            "completed_at": completed_at,
            "error": error,
            "incomplete_details": incomplete,
            "model": self.model,
            "output": output or [],
            "usage": usage,
            **self.fields,
        }


@dataclass(frozen=True)
class Final:
    """How a response ended: its status, output items and usage, or its error."""

    status: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    incomplete: dict[str, Any] | None = None

    def response(self, echo: Echo, completed_at: int | None) -> dict[str, Any]:
        stamp = completed_at if self.status == COMPLETED else None
        return echo.response(self.status, self.output, usage=self.usage, error=self.error,
                             incomplete=self.incomplete, completed_at=stamp)  # fmt: skip


def final_of(echo: Echo, terminal: Event) -> Final:
    """The end a terminal channel event announces."""
    if isinstance(terminal, ResponseEvent):
        message = assistant_message(terminal)
        cut = _INCOMPLETE.get(terminal.meta.get("finish_reason") or "")
        state = "incomplete" if cut else COMPLETED
        output: list[dict[str, Any]] = []
        text, calls = message.get("content"), message.get("tool_calls") or []
        if text or not calls:
            output.append(message_item(echo.id, 0, text or "", state))
        output += [call_item(echo.id, k, call["id"], call["function"]["name"], call["function"]["arguments"])
                   for k, call in enumerate(calls)]  # fmt: skip
        usage = usage_of(answer_usage(terminal.meta))
        return Final(state, output, usage, incomplete={"reason": cut} if cut else None)
    if isinstance(terminal, ErrorEvent) and terminal.code == CANCELLED_CODE:
        return Final(CANCELLED, [])
    code, why = (terminal.code, terminal.message) if isinstance(terminal, ErrorEvent) else ("internal_error", "")
    error = {"code": _ERROR_CODES.get(code, "server_error"), "message": why or "the run failed", "type": code}
    return Final(FAILED, [], error=error)


def response_of(record: RequestRecord) -> dict[str, Any]:
    """The `response` object of a stored request (`GET /v1/responses/{id}`)."""
    echo = Echo.of(record)
    if not record.finished:
        return echo.response(QUEUED if record.status == QUEUED else "in_progress")
    final = final_of(echo, Outcome.of(record).terminal_event())
    return final.response(echo, epoch(record.completed_at) if record.completed_at else None)


def message_item(response_id: str, index: int, text: str | None, status: str) -> dict[str, Any]:
    """An assistant message item; `text` None: just added, no content yet."""
    content = [] if text is None else [output_text(text)]
    return {"id": _message_id(response_id, index), "type": "message", "status": status, "role": "assistant",
            "content": content}  # fmt: skip


def call_item(response_id: str, k: int, call_id: str | None, name: str | None, arguments: str,
              status: str = COMPLETED) -> dict[str, Any]:  # fmt: skip
    """The `k`-th function call of the answer."""
    return {"id": f"fc_{response_id}_{k}", "type": "function_call", "status": status, "arguments": arguments,
            "call_id": call_id, "name": name}  # fmt: skip


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def usage_of(usage: dict[str, Any]) -> dict[str, Any]:
    """Sluice's usage as the Responses API's (the detail counts are 0 where the upstream gave none)."""
    tokens_in, tokens_out = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    return {
        "input_tokens": tokens_in,
        "input_tokens_details": {"cached_tokens": usage.get("cached_input_tokens") or 0},
        "output_tokens": tokens_out,
        "output_tokens_details": {"reasoning_tokens": usage.get("reasoning_tokens") or 0},
        "total_tokens": tokens_in + tokens_out,
    }


def _message_id(response_id: str, index: int) -> str:
    return f"msg_{response_id}" if index == 0 else f"msg_{response_id}_{index}"


@dataclass
class _Item:
    """An output item being streamed: a message (its text) or a function call (its arguments)."""

    index: int
    kind: str
    text: str = ""
    call: int = 0  # a call's place among the answer's calls (`call_item`'s k)
    call_id: str | None = None
    name: str | None = None
    done: dict[str, Any] | None = None  # the item as its `output_item.done` gave it


@dataclass
class EventRenderer:
    """The Responses events of one request, from its channel events in order (`start`, then `feed` each)."""

    echo: Echo
    seq: int = -1
    over: bool = False
    items: list[_Item] = field(default_factory=list)
    calls: dict[int, _Item] = field(default_factory=dict)  # by the channel's call index
    running: bool = False

    def start(self) -> list[dict[str, Any]]:
        """`response.created` (and `response.queued` for a background response)."""
        status = QUEUED if self.echo.background else "in_progress"
        out = [self._event("response.created", response=self.echo.response(status))]
        if self.echo.background:
            out.append(self._event("response.queued", response=self.echo.response(QUEUED)))
        return out

    def feed(self, event: Event) -> list[dict[str, Any]]:
        """The Responses events `event` makes (none once the stream is over)."""
        out: list[dict[str, Any]] = []
        if self.over:
            return out
        match event:
            case StatusEvent(status=status) if status == RUNNING and not self.running:
                self.running = True
                out.append(self._event("response.in_progress", response=self.echo.response("in_progress")))
            case DeltaEvent(text=text) if text:
                item = self._message(out)
                item.text += text
                out.append(self._event("response.output_text.delta", **self._at(item), content_index=0, delta=text,
                                       logprobs=[]))  # fmt: skip
            case ToolCallEvent(index=index, id=call_id, name=name, arguments=arguments):
                item = self.calls.get(index) or self._open_call(index, call_id, name, out)
                item.text += arguments
                if arguments and item.done is None:
                    out.append(self._event("response.function_call_arguments.delta", **self._at(item),
                                           delta=arguments))  # fmt: skip
            case ResetEvent(reason=reason) if self.items:
                # Text already shown cannot be taken back: the stream ends; the request's record has its end.
                self.over = True
                message = f"the provider failed after streaming: {reason}"
                out.append(self._event("error", code="stream_reset", message=message, param=None))
            case ResponseEvent() | ErrorEvent():
                self._end(event, out)
        return out

    def _end(self, terminal: ResponseEvent | ErrorEvent, out: list[dict[str, Any]]) -> None:
        self.over = True
        final = final_of(self.echo, terminal)
        if isinstance(terminal, ResponseEvent):
            self._settle(final, out)
        for item in self.items:
            if item.done is None:
                self._close(item, out, COMPLETED if final.status == COMPLETED else "incomplete")
        output = [item.done for item in self.items if item.done is not None]
        response = Final(final.status, output, final.usage, final.error, final.incomplete)
        kind = {COMPLETED: "response.completed", "incomplete": "response.incomplete"}.get(final.status)
        out.append(self._event(kind or "response.failed", response=response.response(self.echo, epoch(terminal.ts))))

    def _settle(self, final: Final, out: list[dict[str, Any]]) -> None:
        """Gives the items the answer's final text and arguments, then streams the items the answer has and the
        stream had not (an answer given in one piece, a call that came whole)."""
        message = next((item for item in final.output if item["type"] == "message"), None)
        calls = [item for item in final.output if item["type"] == "function_call"]
        shown = [item for item in self.items if item.kind == "message"]
        streamed = [item for item in self.items if item.kind == "function_call"]
        text = message["content"][0]["text"] if message is not None else ""
        if len(shown) == 1:  # several: text came between calls; each keeps what it streamed
            shown[0].text = text
        for item, call in zip(streamed, calls, strict=False):
            item.text = call["arguments"]
        if message is not None and not shown:
            item = self._message(out)
            item.text = text
            if text:
                out.append(self._event("response.output_text.delta", **self._at(item), content_index=0, delta=text,
                                       logprobs=[]))  # fmt: skip
        for k, call in enumerate(calls[len(streamed) :]):
            item = self._open_call(-1 - k, call["call_id"], call["name"], out)
            item.text = call["arguments"]
            if item.text:
                out.append(self._event("response.function_call_arguments.delta", **self._at(item), delta=item.text))

    def _message(self, out: list[dict[str, Any]]) -> _Item:
        """The message item text goes to: the open one, else a new one (closing the call before it)."""
        last = self.items[-1] if self.items else None
        if last is not None and last.kind == "message" and last.done is None:
            return last
        self._close_open(out)
        item = _Item(index=len(self.items), kind="message")
        self.items.append(item)
        added = message_item(self.echo.id, item.index, None, "in_progress")
        out.append(self._event("response.output_item.added", output_index=item.index, item=added))
        out.append(self._event("response.content_part.added", **self._at(item), content_index=0,
                               part=output_text("")))  # fmt: skip
        return item

    def _open_call(self, index: int, call_id: str | None, name: str | None, out: list[dict[str, Any]]) -> _Item:
        self._close_open(out)
        item = _Item(index=len(self.items), kind="function_call", call=len(self.calls), call_id=call_id, name=name)
        self.items.append(item)
        self.calls[index] = item
        added = call_item(self.echo.id, item.call, call_id, name, "", "in_progress")
        out.append(self._event("response.output_item.added", output_index=item.index, item=added))
        return item

    def _close_open(self, out: list[dict[str, Any]]) -> None:
        if self.items and self.items[-1].done is None:
            self._close(self.items[-1], out, COMPLETED)

    def _close(self, item: _Item, out: list[dict[str, Any]], status: str) -> None:
        if item.kind == "message":
            out.append(self._event("response.output_text.done", **self._at(item), content_index=0, text=item.text,
                                   logprobs=[]))  # fmt: skip
            out.append(self._event("response.content_part.done", **self._at(item), content_index=0,
                                   part=output_text(item.text)))  # fmt: skip
            item.done = message_item(self.echo.id, item.index, item.text, status)
        else:
            out.append(self._event("response.function_call_arguments.done", **self._at(item), arguments=item.text))
            item.done = call_item(self.echo.id, item.call, item.call_id, item.name, item.text, status)
        out.append(self._event("response.output_item.done", output_index=item.index, item=item.done))

    def _at(self, item: _Item) -> dict[str, Any]:
        item_id = _message_id(self.echo.id, item.index) if item.kind == "message" else f"fc_{self.echo.id}_{item.call}"
        return {"item_id": item_id, "output_index": item.index}

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {"type": kind, **fields, "sequence_number": self.seq}

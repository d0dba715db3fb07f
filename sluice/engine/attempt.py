"""One provider attempt: its stream under per-attempt deadlines, its text, calls and reasoning streamed into the
channel.

Deadlines: `first_token` until the first text, then `idle` between chunks, `total` over everything; `connect` is
passed to the HTTP client. Whatever goes wrong leaves as a `ProviderError`; `Progress` keeps what had streamed so the
run loop knows whether to emit `reset` and what text a re-ask should quote.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice.engine.ports import ChannelWriter
from sluice.engine.seam import Seam
from sluice.events import DeltaEvent, PartialEvent, ThinkingEvent, ToolCallEvent
from sluice.providers.base import Chunk, Provider, ProviderRequest, Usage
from sluice.providers.errors import ProviderError, ProviderTimeout, StreamBroken
from sluice.providers.messages import ThinkingDelta, ToolCall, ToolCallDelta
from sluice.structured import PartialStream

log = logging.getLogger("sluice.engine")


@dataclass(frozen=True)
class Deadlines:
    connect: float = 10.0
    first_token: float = 60.0
    idle: float = 30.0
    total: float = 300.0


@dataclass
class _Call:
    """A tool call being streamed: its id and name from the first piece, its arguments from every piece."""

    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Thought:
    """A thinking block being streamed: its text pieces and signature, or a redacted block's data."""

    parts: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: str | None = None

    def block(self) -> dict[str, Any]:
        """The block as Anthropic shapes it (and sends it back): thinking with its signature, or redacted."""
        if self.redacted is not None:
            return {"type": "redacted_thinking", "data": self.redacted}
        block = {"type": "thinking", "thinking": "".join(self.parts)}
        if self.signature is not None:
            block["signature"] = self.signature
        return block


@dataclass
class Progress:
    carried: str = ""  # the answer's text streamed by earlier attempts, which this one continues
    parts: list[str] = field(default_factory=list)  # this attempt's text, as delivered (after the seam)
    calls: dict[int, _Call] = field(default_factory=dict)  # by the call's index in the answer
    thoughts: dict[int, _Thought] = field(default_factory=dict)  # by the thinking block's index in the answer
    usage: Usage | None = None
    finish_reason: str | None = None
    stop_sequence: str | None = None
    ttft_ms: float | None = None
    first_token_at: datetime | None = None

    @property
    def streamed(self) -> bool:
        """Whether this attempt streamed anything (text, call pieces, reasoning)."""
        return bool(self.parts or self.calls or self.thoughts)

    @property
    def continuable(self) -> bool:
        """Whether another attempt may carry on from here: what streamed is text only (a half-streamed tool call or
        reasoning block cannot be continued; `sluice.engine.continuation`)."""
        return not self.calls and not self.thoughts

    @property
    def text(self) -> str:
        """The answer's text so far: what earlier attempts delivered, then this attempt's."""
        return self.carried + "".join(self.parts)

    def add_call(self, delta: ToolCallDelta) -> None:
        call = self.calls.setdefault(delta.index, _Call())
        call.id = call.id or delta.id
        call.name = call.name or delta.name or ""
        if delta.arguments:
            call.arguments.append(delta.arguments)

    def add_thought(self, delta: ThinkingDelta) -> None:
        thought = self.thoughts.setdefault(delta.index, _Thought())
        if delta.text:
            thought.parts.append(delta.text)
        if delta.signature is not None:
            thought.signature = delta.signature
        if delta.redacted is not None:
            thought.redacted = delta.redacted

    def thinking(self) -> list[dict[str, Any]]:
        """The answer's thinking blocks, in order."""
        return [thought.block() for _, thought in sorted(self.thoughts.items())]

    def first_token(self, started: float) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - started) * 1000
            self.first_token_at = datetime.now(UTC)

    def tool_calls(self) -> list[ToolCall]:
        """The calls the answer made, in order (a call its provider gave no id gets a new one, unique across turns:
        the next turn's tool result names it)."""
        return [
            ToolCall(id=call.id or f"call_{uuid.uuid4().hex[:24]}", name=call.name, arguments="".join(call.arguments))
            for _, call in sorted(self.calls.items())
        ]


async def within_deadlines(
    chunks: AsyncGenerator[Chunk, None], deadlines: Deadlines, label: str
) -> AsyncGenerator[Chunk, None]:
    """The provider's chunks, or `ProviderTimeout` when one does not come in time."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    end, first_token_by = start + deadlines.total, start + deadlines.first_token
    seen_text = False
    async with aclosing(chunks) as iterator:
        while True:
            now = loop.time()
            # Before the first text the deadline is absolute (time to first token); after it, a gap between chunks.
            limit = now + deadlines.idle if seen_text else first_token_by
            wait = max(min(limit, end) - now, 0.0)
            try:
                async with asyncio.timeout(wait):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except ProviderError:
                raise
            except TimeoutError:
                if end <= limit:
                    raise ProviderTimeout(f"{label}: no complete answer within {deadlines.total:g}s") from None
                if seen_text:
                    raise ProviderTimeout(f"{label}: the stream stalled (nothing for {deadlines.idle:g}s)") from None
                raise ProviderTimeout(f"{label}: no first token within {deadlines.first_token:g}s") from None
            except Exception as exc:
                # An adapter that chokes on an unexpected response shape fails this attempt, not the whole request.
                log.exception("%s: the adapter failed on the provider's response", label)
                raise StreamBroken(f"{label}: unexpected response ({type(exc).__name__})") from exc
            # Reasoning is output too: a model that thinks for a while has begun its answer.
            seen_text = seen_text or bool(chunk.text) or bool(chunk.tool_calls) or bool(chunk.thinking)
            yield chunk


async def stream_attempt(
    channel: ChannelWriter,
    provider: Provider,
    request: ProviderRequest,
    deadlines: Deadlines,
    label: str,
    schema: dict[str, Any] | None,
    progress: Progress,
    seam: Seam | None = None,
) -> None:
    """Stream one attempt into the channel. `seam`: this attempt continues `progress.carried`, and its text passes
    the seam first (what repeats the delivered text is dropped, `sluice.engine.seam`)."""
    started = time.perf_counter()
    partial = PartialStream(schema) if schema is not None else None
    if partial is not None and progress.carried:
        partial.seed(progress.carried)  # partial objects keep growing across the seam
    async with aclosing(within_deadlines(provider.stream(request), deadlines, label)) as chunks:
        async for chunk in chunks:
            if chunk.usage is not None:
                progress.usage = chunk.usage
            if chunk.finish_reason is not None:
                progress.finish_reason = chunk.finish_reason
                progress.stop_sequence = chunk.stop_sequence
            if chunk.thinking:
                progress.first_token(started)
                for thought in chunk.thinking:
                    progress.add_thought(thought)
                    await channel.emit(
                        ThinkingEvent(
                            index=thought.index,
                            text=thought.text,
                            signature=thought.signature,
                            redacted=thought.redacted,
                        )
                    )
            # A chunk's text comes before its call pieces (adapters start a new chunk for text after a call), and
            # the events keep that order: an Anthropic client numbers its content blocks by it.
            text = chunk.text if seam is None or not chunk.text else seam.feed(chunk.text)
            if text:
                progress.first_token(started)
                progress.parts.append(text)
                await channel.emit(DeltaEvent(text=text))
                if partial is not None and (update := partial.feed(text)) is not None:
                    await channel.emit(PartialEvent(data=update))
            if chunk.tool_calls:
                progress.first_token(started)
                for delta in chunk.tool_calls:
                    progress.add_call(delta)
                    await channel.emit(
                        ToolCallEvent(index=delta.index, id=delta.id, name=delta.name, arguments=delta.arguments)
                    )
    if seam is not None and (rest := seam.close()):  # what the seam still held when the stream ended
        progress.parts.append(rest)
        await channel.emit(DeltaEvent(text=rest))
        if partial is not None and (update := partial.feed(rest)) is not None:
            await channel.emit(PartialEvent(data=update))
    if partial is not None and (pending := partial.flush()) is not None:
        await channel.emit(PartialEvent(data=pending))

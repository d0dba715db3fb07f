"""The one small interface every provider adapter implements: `stream(ProviderRequest)` yields `Chunk`s (and,
for the types that have embeddings, `embed(EmbeddingRequest)`; Anthropic also `count_tokens`). The conversation
model is in `messages`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluice.providers.messages import Message, ResponseFormat, ThinkingDelta, Tool, ToolCallDelta, ToolChoice

__all__ = [
    "Chunk",
    "Embedder",
    "EmbeddingRequest",
    "Embeddings",
    "Message",
    "Provider",
    "ProviderRequest",
    "TokenCounter",
    "Usage",
    "system_and_turns",
]


@dataclass(frozen=True)
class ProviderRequest:
    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    # The workflow's (or a strict client's) schema: asked natively where the provider can (`extra`), then validated.
    schema: dict[str, Any] | None = None
    # Portable generation parameters each adapter names its provider's way: temperature, top_p, max_tokens, stop,
    # seed (and any a chain entry's `params` set).
    params: dict[str, Any] = field(default_factory=dict)
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None  # the client's JSON mode, asked natively, not validated
    # Chat Completions fields Sluice has no model for (`logprobs`, `user`, `service_tier`…): forwarded as they are
    # by the OpenAI-shaped adapters, which speak that API; the others cannot, and leave them out.
    passthrough: dict[str, Any] = field(default_factory=dict)
    # Fields merged into the provider's request body as they are, e.g. its native structured-output switch.
    extra: dict[str, Any] = field(default_factory=dict)
    connect_timeout: float | None = None
    # False: the caller takes the whole answer at once (a non-streamed `/v1/chat/completions`). An adapter may then
    # ask its provider for a non-streamed answer and yield it as one chunk; the OpenAI-shaped ones do.
    stream: bool = True
    # Re-asks so far (`sluice.structured.reask`); each ended `messages` with the bad answer and a correction. Real
    # adapters send the messages as they are; the simulated provider reads it to behave on a re-ask.
    reasks: int = 0
    # Messages at the end of `messages` that the gateway added (a re-ask's bad answer and correction, a continuation's
    # delivered text and instruction): an adapter that sends the client's own body (`native`) appends these.
    gateway_turns: int = 0
    # The answer so far, for the provider to continue (`sluice.engine.continuation`, method `prefill`): sent as a
    # trailing assistant turn by the adapters whose provider continues one (Anthropic, Ollama, a compatible server
    # configured for it, the simulated provider); trailing whitespace is already removed (Anthropic refuses it).
    prefill: str | None = None
    # A request that came in through `/v1/messages`: {"body": the client's Messages body as it came, "beta": its
    # `anthropic-beta` header, "untranslated": what `messages`/`tools` could not hold (e.g. `messages[3].content[0]
    # (document)`)}. The Anthropic adapter sends that body (`reads_native`), so nothing is lost on the way; the others
    # get the canonical fields above, and a request with untranslated parts fails over from them (`Unsupported`).
    native: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What one provider call used, from the provider's own usage fields. The input counts every input token, those
    read from and written to the prompt cache included (as genai-prices takes it); the output counts reasoning."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # of the input, read from the provider's prompt cache
    reasoning_tokens: int = 0  # of the output, spent thinking (not in the answer's text)
    cache_write_tokens: int = 0  # of the input, written to the provider's prompt cache (Anthropic bills them higher)
    estimated: bool = False  # the provider reported nothing (a stream cut before its usage): counted from the text


@dataclass(frozen=True, slots=True)
class Chunk:
    """A normalised piece of a provider's stream: text, tool-call and reasoning pieces, and at the end usage and the
    finish reason in OpenAI's words: stop | length | tool_calls | content_filter."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    thinking: tuple[ThinkingDelta, ...] = ()  # the model's reasoning, not the answer's text
    stop_sequence: str | None = None  # with a `stop` finish: the stop sequence that ended the answer, if known


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    connect_timeout: float | None = None


@dataclass(frozen=True)
class Embeddings:
    """One vector per input, in input order."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage = field(default_factory=Usage)


class Provider(Protocol):
    """A model provider. `stream` yields normalised chunks and raises `ProviderError` subclasses."""

    name: str

    def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        """An async generator: the caller closes it (`aclosing`) when it stops reading early."""
        ...

    async def aclose(self) -> None: ...


class Embedder(Protocol):
    """A provider type that also computes embeddings (OpenAI, OpenAI-compatible servers, Gemini, Ollama)."""

    name: str

    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...


class TokenCounter(Protocol):
    """A provider type that counts the input tokens of an Anthropic Messages body itself (Anthropic's
    `/v1/messages/count_tokens`); `/v1/messages/count_tokens` estimates for the others."""

    async def count_tokens(
        self, body: dict[str, Any], model: str, *, system: str | None = None, beta: str | None = None
    ) -> int: ...


def system_and_turns(request: ProviderRequest) -> tuple[str | None, list[Message]]:
    """The system prompt (the request's, then any system messages) apart from the conversation turns, for
    providers that take the system prompt outside the message list (Anthropic, Gemini)."""
    systems = [request.system] if request.system else []
    systems += [m.text for m in request.messages if m.role == "system"]
    turns = [m for m in request.messages if m.role != "system"]
    return ("\n\n".join(systems) or None), turns

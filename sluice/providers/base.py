"""The one small interface every provider adapter implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class ProviderRequest:
    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    schema: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Fields merged into the provider's request body as they are, e.g. its native structured-output switch.
    extra: dict[str, Any] = field(default_factory=dict)
    connect_timeout: float | None = None
    # False: the caller takes the whole answer at once (a non-streamed `/v1/chat/completions`). An adapter may then
    # ask its provider for a non-streamed answer and yield it as one chunk; the OpenAI-shaped ones do.
    stream: bool = True
    # Re-asks so far (`sluice.structured.reask`); each ended `messages` with the bad answer and a correction. Real
    # adapters send the messages as they are; the simulated provider reads it to behave on a re-ask.
    reasks: int = 0


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """A normalised piece of a provider's stream: text, and at the end usage and the finish reason."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None


class Provider(Protocol):
    """A model provider. `stream` yields normalised chunks and raises `ProviderError` subclasses."""

    name: str

    def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        """An async generator: the caller closes it (`aclosing`) when it stops reading early."""
        ...

    async def aclose(self) -> None: ...


def system_and_turns(request: ProviderRequest) -> tuple[str | None, list[Message]]:
    """The system prompt (the request's, then any system messages) apart from the conversation turns, for
    providers that take the system prompt outside the message list (Anthropic, Gemini)."""
    systems = [request.system] if request.system else []
    systems += [m.content for m in request.messages if m.role == "system"]
    turns = [m for m in request.messages if m.role != "system"]
    return ("\n\n".join(systems) or None), turns

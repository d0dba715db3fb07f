"""Continuing an answer across a failed attempt, from the last character the user saw (docs/providers.md,
"Continuation").

When an attempt fails after it streamed text — a cut, a stall, an in-stream error — the run loop does not take the
text back: the next attempt (a retry, or the next chain entry) gets the original request plus the text delivered so
far, and what it writes is spliced on (`sluice.engine.seam`). Two methods, chosen per provider
(`continuation` in its config; `ProviderPool.continuation`):

    prefill       the text so far is the start of the provider's answer (a trailing assistant turn), which the
                  model continues; Anthropic, Ollama, a compatible server that continues one, the simulated provider.
    instruction   the text so far as the assistant's turn, then a user turn asking to go on from its last character;
                  every provider can do it (OpenAI, Gemini, compatible servers by default).

Structured output continues too: the continuing attempt asks for the schema by prompt (a provider's native mode
would make it start a new object), and the spliced whole is validated like any answer; one that does not validate
falls back to `reset` and the re-ask. Not continued (the answer starts over after a `reset`, as before): output with
tool-call pieces or reasoning, a workflow with `continuation: off`, a provider with `continuation: off`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sluice.engine.seam import INSTRUCTION, PREFILL
from sluice.providers.base import Message, ProviderRequest

__all__ = ["INSTRUCTION", "OFF", "PREFILL", "REQUEST", "Delivered", "continued"]

OFF = "off"
# The user turn of the instruction method. The fakes in `sluice.testing` recognise it by this exact text.
REQUEST = (
    "Your answer above was cut off. Continue it from exactly where it stops: write only the rest, starting with the "
    "very next character, and repeat nothing, so that your answer above followed by what you write now is the "
    "whole answer, in the same form."
)


@dataclass(frozen=True)
class Delivered:
    """The answer's text the run has streamed so far, across attempts: what the user has seen and a continuation
    goes on from."""

    text: str = ""
    attempt: int = 0  # the attempt whose text ends it
    first_token_at: datetime | None = None  # when its first text came


def continued(request: ProviderRequest, text: str, method: str) -> ProviderRequest:
    """`request` asking its provider to continue `text` by `method` (prefill or instruction)."""
    if method == PREFILL:
        return replace(request, prefill=text.rstrip())  # Anthropic refuses a prefill that ends with whitespace
    messages = (*request.messages, Message("assistant", text), Message("user", REQUEST))
    return replace(request, messages=messages, gateway_turns=request.gateway_turns + 2)

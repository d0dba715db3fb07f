"""Tool calls that arrive whole (Gemini, Ollama): each is one `ToolCallDelta` carrying its id, name and all of its
arguments, numbered in the order the calls come across the answer, as OpenAI numbers `tool_calls[index]`."""

from __future__ import annotations

import secrets

from sluice.providers.messages import ToolCallDelta


class WholeCalls:
    """Numbers the whole calls of one answer; `count` is how many have come so far."""

    def __init__(self) -> None:
        self.count = 0

    def delta(self, call_id: str | None, name: str | None, arguments: str) -> ToolCallDelta:
        """The next call as one delta, with a new id if the provider gave it none."""
        delta = ToolCallDelta(index=self.count, id=call_id or new_call_id(), name=name or "", arguments=arguments)
        self.count += 1
        return delta


def new_call_id() -> str:
    """An id for a call the provider gave none: unique, as clients (and other providers, on failover) expect."""
    return "call_" + secrets.token_hex(12)

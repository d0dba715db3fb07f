"""A chat request as the run loop reads it: taken from the accepted body once, then only typed fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluice.providers.base import Message

# Generation parameters a request may set over its chain entry's `params`.
OVERRIDABLE_PARAMS = ("temperature", "max_tokens", "top_p")


@dataclass(frozen=True)
class ChatInput:
    messages: tuple[Message, ...]
    system: str | None = None  # overrides the workflow's system prompt
    params: dict[str, Any] = field(default_factory=dict)  # over the chain entry's params
    schema: dict[str, Any] | None = None  # a per-request schema, compiled when the request was accepted

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChatInput:
        return cls(
            messages=tuple(Message(role=m["role"], content=m["content"]) for m in body["messages"]),
            system=body.get("system") or None,
            params={name: body[name] for name in OVERRIDABLE_PARAMS if body.get(name) is not None},
            schema=body.get("schema"),
        )

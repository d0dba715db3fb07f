"""Validated runtime objects for providers and workflows (the second step of config loading)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sluice.providers.config import ProviderConfig


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt deadlines in seconds; None means the engine's default."""

    connect: float | None = None
    first_token: float | None = None
    idle: float | None = None
    total: float | None = None


@dataclass(frozen=True)
class ChainEntry:
    provider: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None  # shorthand for timeouts.total
    timeouts: Timeouts = Timeouts()
    retries: int | None = None  # further tries on the same provider; None means the engine's default


@dataclass(frozen=True)
class CallbackPolicy:
    timeout: float = 300.0
    on_timeout: Literal["deliver", "fail"] = "deliver"


@dataclass(frozen=True)
class Workflow:
    name: str
    chain: tuple[ChainEntry, ...]
    system: str | None = None
    schema: dict[str, Any] | None = None
    event: str | None = None
    webhook_url: str | None = None
    callback: CallbackPolicy = CallbackPolicy()
    echo_fields: tuple[str, ...] = ()
    modelriver_signature: bool = True  # also sign its webhooks with X-ModelRiver-Signature (docs/webhooks.md)
    # Seconds after which a run nobody follows (no subscriber on any instance) is cancelled; None: never.
    cancel_when_unwatched_for: float | None = None


@dataclass(frozen=True)
class Catalog:
    providers: dict[str, ProviderConfig]
    workflows: dict[str, Workflow]

    def workflow(self, name: str) -> Workflow | None:
        """A named workflow, or `provider/model` (a configured provider) run directly as a one-entry chain."""
        found = self.workflows.get(name)
        if found is None and "/" in name:
            provider, _, model = name.partition("/")
            if provider in self.providers and model:
                found = Workflow(name=name, chain=(ChainEntry(provider=provider, model=model),))
        return found

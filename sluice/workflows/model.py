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
    continuation: Literal["auto", "off"] = "auto"  # an answer cut mid-stream goes on elsewhere (docs/providers.md)
    # Seconds after which a run nobody follows (no subscriber on any instance) is cancelled; None: never.
    cancel_when_unwatched_for: float | None = None


@dataclass(frozen=True)
class Catalog:
    """The providers and workflows a gateway runs. Those of the config file (`workflows`, and the providers without
    an owner) are every project's; those stored through the admin API belong to the project that made them
    (`scoped`: project → its workflows; `owners`: provider → its project), which alone sees and uses them."""

    providers: dict[str, ProviderConfig]
    workflows: dict[str, Workflow]
    scoped: dict[str, dict[str, Workflow]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def workflow(self, name: str, project_id: str | None = None) -> Workflow | None:
        """A workflow of `project_id` (or a shared one), or `provider/model` (a provider it may use) run directly as
        a one-entry chain. `project_id` None: any project's (for callers that already checked)."""
        found = self.scoped.get(project_id, {}).get(name) if project_id is not None else None
        if found is None:
            found = self.workflows.get(name)
        if found is None and project_id is None:
            found = next((mine[name] for mine in self.scoped.values() if name in mine), None)
        if found is None and "/" in name:
            provider, _, model = name.partition("/")
            if provider in self.providers and model and self.uses(provider, project_id):
                found = Workflow(name=name, chain=(ChainEntry(provider=provider, model=model),))
        return found

    def uses(self, provider: str, project_id: str | None) -> bool:
        """Whether `project_id` may use the provider: a shared one, or its own."""
        owner = self.owners.get(provider)
        return owner is None or project_id is None or owner == project_id

    def of_project(self, project_id: str) -> Catalog:
        """What one project sees: the shared providers and workflows and its own."""
        providers = {name: config for name, config in self.providers.items() if self.uses(name, project_id)}
        workflows = {**self.workflows, **self.scoped.get(project_id, {})}
        return Catalog(providers=providers, workflows=workflows, owners=self.owners)

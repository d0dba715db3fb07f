"""The one table of provider types. Adding a provider is a module with its adapter, an options model in
`options.py`, a fake protocol in `sluice.testing` for HTTP ones, and a row here; the loader, the structured-output
dialects, the console, `sluice fake-provider` and the tests all read this table.

Adapters are named as `"module:Class"` and imported on first use, so an unused adapter (and aiohttp) costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sluice.providers.errors import NotConfigured
from sluice.providers.options import (
    AnthropicOptions,
    GeminiOptions,
    OllamaOptions,
    OpenAICompatibleOptions,
    OpenAIOptions,
    Options,
    SimulatedOptions,
)

if TYPE_CHECKING:
    from sluice.providers.base import Provider
    from sluice.providers.config import ProviderConfig


@dataclass(frozen=True)
class ProviderType:
    name: str
    adapter: str  # "module:Class", imported on first use
    options: type[Options]
    description: str  # one line, for the console
    dialects: tuple[str, ...]  # structured-output dialects (`sluice.structured.native`); the first is the default,
    # and with more than one the `structured_output` option chooses
    http: bool = True  # gets the pool's shared HTTP client
    fake: str | None = None  # the wire protocol of its fake server in `sluice.testing`

    @cached_property
    def secrets(self) -> frozenset[str]:
        """Options that hold credentials."""
        return frozenset(
            name
            for name, field in self.options.model_fields.items()
            if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret")
        )

    def adapter_class(self) -> Callable[..., Provider]:
        module, _, cls = self.adapter.partition(":")
        return getattr(importlib.import_module(module), cls)


TYPES: dict[str, ProviderType] = {
    entry.name: entry
    for entry in (
        ProviderType(
            "simulated",
            "sluice.providers.simulated:SimulatedProvider",
            SimulatedOptions,
            "Built in: schema-valid answers from the prompt's own words, no model and no key.",
            dialects=("simulated",),
            http=False,
        ),
        ProviderType(
            "openai",
            "sluice.providers.openai:OpenAIProvider",
            OpenAIOptions,
            "OpenAI Chat Completions.",
            dialects=("response_format",),
            fake="openai",
        ),
        ProviderType(
            "openai-compatible",
            "sluice.providers.openai_compatible:OpenAICompatibleProvider",
            OpenAICompatibleOptions,
            "Any server that speaks OpenAI Chat Completions: vLLM, llama.cpp, LM Studio, Groq, Together, OpenRouter.",
            dialects=("response_format", "structured_outputs", "guided_json", "prompt"),
            fake="openai",
        ),
        ProviderType(
            "anthropic",
            "sluice.providers.anthropic:AnthropicProvider",
            AnthropicOptions,
            "Anthropic Messages (Claude).",
            dialects=("tool", "output_format"),
            fake="anthropic",
        ),
        ProviderType(
            "gemini",
            "sluice.providers.gemini:GeminiProvider",
            GeminiOptions,
            "Google Gemini (generativelanguage.googleapis.com).",
            dialects=("response_schema",),
            fake="gemini",
        ),
        ProviderType(
            "ollama",
            "sluice.providers.ollama:OllamaProvider",
            OllamaOptions,
            "Ollama's own chat API (/api/chat).",
            dialects=("format",),
            fake="ollama",
        ),
    )
}


def fake_protocols() -> tuple[str, ...]:
    """The wire protocols the fakes in `sluice.testing` speak, in table order."""
    return tuple(dict.fromkeys(entry.fake for entry in TYPES.values() if entry.fake))


def create_provider(config: ProviderConfig, **shared: Any) -> Provider:
    """A new adapter for a validated config; `shared` adds what the pool gives every adapter (the HTTP client)."""
    if config.missing_env:
        raise NotConfigured(f"provider {config.name!r} needs {', '.join(config.missing_env)} set in the environment")
    entry = TYPES.get(config.type)
    if entry is None:
        raise NotConfigured(f"provider type {config.type!r} is not available in this build")
    return entry.adapter_class()(name=config.name, **config.adapter_options, **shared)

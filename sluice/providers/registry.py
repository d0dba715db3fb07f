"""Provider type name → adapter class, imported lazily so an unused adapter costs nothing."""

from __future__ import annotations

import importlib
from typing import Any

from sluice.providers.base import Provider
from sluice.providers.errors import NotConfigured
from sluice.workflows.model import ProviderConfig

ADAPTERS: dict[str, str] = {
    "simulated": "sluice.providers.simulated:SimulatedProvider",
    "openai": "sluice.providers.openai:OpenAIProvider",
    "openai-compatible": "sluice.providers.openai_compatible:OpenAICompatibleProvider",
    "anthropic": "sluice.providers.anthropic:AnthropicProvider",
    "gemini": "sluice.providers.gemini:GeminiProvider",
    "ollama": "sluice.providers.ollama:OllamaProvider",
}
# Types that talk HTTP get the shared pooled client.
HTTP_TYPES = frozenset(ADAPTERS) - {"simulated"}


def create_provider(config: ProviderConfig, **shared: Any) -> Provider:
    if config.missing_env:
        raise NotConfigured(f"provider {config.name!r} needs {', '.join(config.missing_env)} set in the environment")
    target = ADAPTERS.get(config.type)
    if target is None:
        raise NotConfigured(f"provider type {config.type!r} is not available in this build")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(name=config.name, **config.options, **shared)
    except TypeError as exc:
        # An option the adapter does not take: say which, never echo the values (they may be secrets).
        raise NotConfigured(f"provider {config.name!r} ({config.type}): {exc}".replace(cls.__name__ + ".", "")) from exc

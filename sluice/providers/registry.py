"""Provider type name → adapter class, imported lazily so an unused adapter costs nothing."""

from __future__ import annotations

import importlib
from typing import Any

from sluice.providers.base import Provider
from sluice.providers.errors import NotConfigured
from sluice.workflows.model import ProviderConfig

ADAPTERS: dict[str, str] = {
    "simulated": "sluice.providers.simulated:SimulatedProvider",
}


def create_provider(config: ProviderConfig, **shared: Any) -> Provider:
    if config.missing_env:
        raise NotConfigured(f"provider {config.name!r} needs {', '.join(config.missing_env)} set in the environment")
    target = ADAPTERS.get(config.type)
    if target is None:
        raise NotConfigured(f"provider type {config.type!r} is not available in this build")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(name=config.name, **config.options, **shared)

"""One long-lived adapter instance per configured provider, created on first use."""

from __future__ import annotations

from typing import Any

from sluice.providers.base import Provider
from sluice.providers.errors import NotConfigured
from sluice.providers.registry import create_provider
from sluice.workflows.model import Catalog


class ProviderPool:
    def __init__(self, catalog: Catalog, **shared: Any) -> None:
        self.catalog = catalog
        self._shared = shared
        self._instances: dict[str, Provider] = {}

    def get(self, name: str) -> Provider:
        instance = self._instances.get(name)
        if instance is None:
            config = self.catalog.providers.get(name)
            if config is None:
                raise NotConfigured(f"provider {name!r} is not defined")
            instance = self._instances[name] = create_provider(config, **self._shared)
        return instance

    async def aclose(self) -> None:
        for instance in self._instances.values():
            await instance.aclose()
        self._instances.clear()

"""One long-lived adapter instance per configured provider, created on first use, all sharing one pooled HTTP
client (created here, closed on shutdown)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sluice.engine.breaker import BreakerPolicy, policy_from
from sluice.providers.base import Provider
from sluice.providers.errors import NotConfigured
from sluice.providers.registry import HTTP_TYPES, create_provider
from sluice.workflows.model import Catalog, ProviderConfig

if TYPE_CHECKING:  # aiohttp is imported only once an HTTP provider is used
    from sluice.providers._http import Client

# Provider options the engine reads itself; the adapter never sees them.
ENGINE_OPTIONS = ("breaker",)


class ProviderPool:
    def __init__(self, catalog: Catalog, **shared: Any) -> None:
        self.catalog = catalog
        self._shared = shared
        self._instances: dict[str, Provider] = {}
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The pooled HTTP client, created on first use (inside the event loop, as aiohttp requires)."""
        if self._client is None:
            from sluice.providers._http import create_client

            self._client = create_client()
        return self._client

    def config(self, name: str) -> ProviderConfig:
        config = self.catalog.providers.get(name)
        if config is None:
            raise NotConfigured(f"provider {name!r} is not defined")
        return config

    def reconfigure(self, catalog: Catalog) -> None:
        """Use a new catalog (an admin change); a provider whose config changed gets a new adapter on next use."""
        for name in [n for n in self._instances if catalog.providers.get(n) != self.catalog.providers.get(n)]:
            del self._instances[name]  # streams in flight keep the old adapter; adapters share the pooled client
        self.catalog = catalog

    def type_of(self, name: str) -> str:
        return self.config(name).type

    def breaker_policy(self, name: str) -> BreakerPolicy:
        try:
            return policy_from(self.config(name).options.get("breaker"))
        except (ValueError, TypeError, NotConfigured):
            return BreakerPolicy()

    def get(self, name: str) -> Provider:
        instance = self._instances.get(name)
        if instance is None:
            config = self.config(name)
            adapter_config = replace(
                config, options={k: v for k, v in config.options.items() if k not in ENGINE_OPTIONS}
            )
            shared = dict(self._shared)
            if config.type in HTTP_TYPES:
                shared["client"] = self.client
            instance = self._instances[name] = create_provider(adapter_config, **shared)
        return instance

    async def aclose(self) -> None:
        for instance in self._instances.values():
            await instance.aclose()
        self._instances.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None

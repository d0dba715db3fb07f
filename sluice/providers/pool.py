"""One long-lived adapter instance per configured provider, created on first use, all sharing one pooled HTTP
client (created here, closed on shutdown)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sluice.providers.base import Provider
from sluice.providers.config import ProviderConfig
from sluice.providers.errors import NotConfigured
from sluice.providers.options import BreakerPolicy
from sluice.providers.registry import create_provider

if TYPE_CHECKING:  # aiohttp is imported only once an HTTP provider is used
    from sluice.providers._http import Client


class Catalog(Protocol):
    """What the pool reads of a catalog (`sluice.workflows.model.Catalog`)."""

    @property
    def providers(self) -> dict[str, ProviderConfig]: ...


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

    def dialect(self, name: str) -> str:
        """The structured-output dialect the provider is asked in (`sluice.structured.native`)."""
        return self.config(name).dialect

    def continuation(self, name: str) -> str:
        """How an answer cut mid-stream is continued on this provider (`sluice.engine.continuation`)."""
        return self.config(name).continuation

    def breaker_policy(self, name: str) -> BreakerPolicy:
        return self.config(name).breaker

    def get(self, name: str) -> Provider:
        instance = self._instances.get(name)
        if instance is None:
            config = self.config(name)
            shared = dict(self._shared)
            if config.entry.http:
                shared["client"] = self.client
            instance = self._instances[name] = create_provider(config, **shared)
        return instance

    async def aclose(self) -> None:
        for instance in self._instances.values():
            await instance.aclose()
        self._instances.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None

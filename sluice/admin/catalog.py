"""The catalog a gateway runs with: the config file's (and built-in) providers and workflows, plus those stored
through the admin API, validated by the same loader code as the YAML file.

Names from the config file are read-only here: the admin API refuses to shadow them, and should the file later
define a name that is also stored, the file wins and the stored record is reported as shadowed.

The config file's records are every project's; a stored record belongs to the project that made it
(`Catalog.scoped`, `Catalog.owners`): a stored workflow may use the shared providers and its project's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from sluice.crypto import CredentialCipher, CredentialsUnreadable
from sluice.providers.config import ProviderConfig
from sluice.store.admin import AdminStore, StoredProvider
from sluice.workflows.loader import ConfigError, parse_provider, parse_workflow
from sluice.workflows.model import Catalog, Workflow

log = logging.getLogger("sluice.admin")
SYNC_INTERVAL = 2.0  # how soon another instance's admin change reaches this one


def provider_config(stored: StoredProvider, cipher: CredentialCipher, environ: Any = None) -> ProviderConfig:
    """The runtime config of a stored provider, its credentials decrypted (never logged or returned)."""
    credentials = cipher.decrypt(stored.credentials) if stored.credentials else {}
    record = {"type": stored.type, **stored.options, **credentials}
    return parse_provider(stored.name, record, os.environ if environ is None else environ)


class StoredCatalog:
    def __init__(self, base: Catalog, store: AdminStore, cipher: CredentialCipher) -> None:
        self.base = base
        self.store = store
        self.cipher = cipher
        self.problems: dict[str, str] = {}  # stored record name → why it is not in the catalog
        self._version: tuple[Any, ...] | None = None
        self._task: asyncio.Task[None] | None = None

    def is_base_workflow(self, name: str) -> bool:
        return name in self.base.workflows

    def is_base_provider(self, name: str) -> bool:
        return name in self.base.providers

    async def build(self, base: Catalog | None = None) -> Catalog:
        """Base + stored records; with `base` (a reloaded config file), that base from now on. A stored record that
        no longer validates (its provider was removed from the config file, its credentials were encrypted under
        another secret key) is left out and listed in `problems` rather than stopping the gateway."""
        base = base or self.base
        self._version = await self.store.catalog_version()
        problems: dict[str, str] = {}
        providers = dict(base.providers)
        owners: dict[str, str] = {}
        for stored in await self.store.list_providers():
            if stored.name in providers:
                problems[f"providers.{stored.name}"] = "shadowed by the config file"
                continue
            try:
                providers[stored.name] = provider_config(stored, self.cipher)
                owners[stored.name] = stored.project_id
            except (ConfigError, CredentialsUnreadable) as exc:
                problems[f"providers.{stored.name}"] = str(exc)
        runs = Catalog(providers=providers, workflows=dict(base.workflows), owners=owners)
        scoped: dict[str, dict[str, Workflow]] = {}
        for stored_wf in await self.store.list_workflows():
            if stored_wf.name in base.workflows:
                problems[f"workflows.{stored_wf.name}"] = "shadowed by the config file"
                continue
            visible = runs.of_project(stored_wf.project_id).providers
            try:
                workflow = parse_workflow(stored_wf.name, stored_wf.definition, visible)
            except ConfigError as exc:
                problems[f"workflows.{stored_wf.name}"] = str(exc)
                continue
            scoped.setdefault(stored_wf.project_id, {})[stored_wf.name] = workflow
        for where, why in problems.items():
            if self.problems.get(where) != why:
                log.warning("stored %s left out of the catalog: %s", where, why)
        self.problems = problems
        self.base = base  # with the catalog built on it, in one step: `is_base_*` never disagrees with the catalog
        return Catalog(providers=providers, workflows=runs.workflows, scoped=scoped, owners=owners)

    def start(self, on_change: Callable[[], Awaitable[None]], interval: float = SYNC_INTERVAL) -> None:
        """Poll the store so a change made through another instance's admin API reaches this one."""
        self._task = asyncio.create_task(self._watch(on_change, interval), name="sluice-catalog-sync")

    async def _watch(self, on_change: Callable[[], Awaitable[None]], interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.store.catalog_version() != self._version:
                    await on_change()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("refreshing the catalog from the store failed; retrying")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

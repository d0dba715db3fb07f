"""The YAML catalog file (`SLUICE_CONFIG`), reloaded while the gateway runs: a changed file is validated as at start
(`load_catalog`) and swapped in as a whole; a file that does not validate is refused, the error logged, and the
catalog in use kept. Nothing of a refused file applies, not even its valid parts.

A change is noticed by polling the file (one `stat` per interval, a read only when it changed), which works wherever
the file lives — a bind mount, a network file system, a Kubernetes ConfigMap swapped through symlinks — where
file-system events may never arrive; a file whose content did not change is not reloaded. `sluice serve` also
reloads on `SIGHUP`, at once and whatever the file's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from sluice.workflows.loader import ConfigError, load_catalog
from sluice.workflows.model import Catalog

log = logging.getLogger("sluice.config")

Apply = Callable[[Catalog], Awaitable[None]]
_SETTLE = 0.1  # seconds a changed file is left alone before it is read: an editor may still be writing it


class CatalogFile:
    """The catalog of `path` (None: the built-in catalog only, never reloaded)."""

    def __init__(self, path: Path | None, *, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval  # seconds between polls; 0: reloaded on SIGHUP only
        self._digest: str | None = None  # of the text the catalog in use was loaded from
        self._signature: tuple[int, ...] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def load(self) -> Catalog:
        """The catalog at start: raises `ConfigError` (the gateway does not start on a file it cannot use)."""
        if self.path is not None:
            self._signature = self._stat()
        catalog = load_catalog(self.path)
        self._digest = self._read_digest()
        return catalog

    def start(self, apply: Apply) -> None:
        """Poll the file and hand every valid change to `apply`."""
        if self.path is not None and self.interval > 0:
            self._task = asyncio.create_task(self._poll(apply), name="sluice-config-reload")

    async def reload(self, apply: Apply, *, force: bool = False) -> bool:
        """Load the file and hand the catalog to `apply` if it validates (and, unless `force`, changed). True if a new
        catalog was applied."""
        if self.path is None:
            return False
        async with self._lock:
            self._signature = self._stat()
            digest = self._read_digest()
            if digest is not None and digest == self._digest and not force:
                return False
            try:
                catalog = load_catalog(self.path)
            except ConfigError as exc:
                log.error("config %s not reloaded, the catalog in use is kept: %s", self.path, exc)
                return False
            await apply(catalog)
            self._digest = digest
        log.info(
            "config %s reloaded: %d providers, %d workflows", self.path, len(catalog.providers), len(catalog.workflows)
        )
        return True

    async def _poll(self, apply: Apply) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if self._stat() != self._signature:
                    await asyncio.sleep(_SETTLE)
                    await self.reload(apply)
            except asyncio.CancelledError:
                raise
            except Exception:  # the poll must outlive any one reload
                log.exception("reloading config %s failed; the catalog in use is kept", self.path)

    def _stat(self) -> tuple[int, ...] | None:
        assert self.path is not None
        try:
            found = os.stat(self.path)  # follows symlinks: a ConfigMap's swap changes the target
        except OSError:
            return None
        return (found.st_ino, found.st_dev, found.st_size, found.st_mtime_ns)

    def _read_digest(self) -> str | None:
        if self.path is None:
            return None
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

"""Queue, channel event logs and live delivery, behind one interface (`base.Broker`).

Implementations sit side by side and are chosen by name; a heavy driver is imported only inside its module.
"""

from __future__ import annotations

import importlib

from sluice.broker.base import Broker

IMPLEMENTATIONS = {"memory": "sluice.broker.memory:MemoryBroker", "redis": "sluice.broker.redis:RedisBroker"}


def create_broker(redis_url: str | None, *, retention_seconds: float) -> Broker:
    name = "redis" if redis_url else "memory"
    if name not in IMPLEMENTATIONS:
        raise RuntimeError("SLUICE_REDIS_URL is set but this build has no Redis broker yet")
    module_name, class_name = IMPLEMENTATIONS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if redis_url:
        return cls(redis_url, retention_seconds=retention_seconds)
    return cls(retention_seconds=retention_seconds)

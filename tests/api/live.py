"""A gateway served by uvicorn in a thread of its own, for synchronous callers (schemathesis, hypothesis)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from sluice.api.app import create_app
from sluice.api.wsframes import SERVER_OPTIONS
from sluice.settings import Settings
from tests.conftest import MASTER_KEY, free_port


@contextmanager
def threaded_gateway(data_dir: Path, **overrides: Any) -> Iterator[str]:
    """Serve a gateway on loopback from a background thread; yields its base URL."""
    port = free_port()
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "data_dir": data_dir,
        "master_key": MASTER_KEY,
        "secret_key": "fuzz-secret-key-0123456789-0123456789",
        "env": "development",
        "heartbeat_interval": 0.5,
        **overrides,
    }
    settings = Settings.from_env(environ={}, **values)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on", **SERVER_OPTIONS
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="sluice-live", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)  # a plain thread: uvicorn offers no start event to wait on
    assert server.started, "the gateway did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)

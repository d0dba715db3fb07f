"""Start a `sluice serve` subprocess for a benchmark and wait until it is ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

MASTER_KEY = "bench-master-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_gateway(config_yaml: str, **env: str) -> Iterator[str]:
    """Yield the base URL of a fresh gateway (own data dir) that runs `config_yaml`."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "sluice.yaml"
        config.write_text(config_yaml)
        port = free_port()
        environment = {**os.environ, "SLUICE_MASTER_KEY": MASTER_KEY, "SLUICE_CONFIG": str(config), **env}
        process = subprocess.Popen(
            [sys.executable, "-m", "sluice", "serve", "--port", str(port), "--data-dir", str(Path(tmp) / "data")],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("the gateway did not become ready")
            yield url
        finally:
            process.terminate()
            process.wait(10)

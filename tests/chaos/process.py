"""The gateway under test as a real `sluice serve` process that can be SIGKILLed and started again on the same port
and data directory."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import MASTER_KEY, free_port


@dataclass
class GatewayProcess:
    config: Path
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    generation: asyncio.Event = field(default_factory=asyncio.Event)  # set while the gateway is up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {
            **os.environ,
            "SLUICE_MASTER_KEY": MASTER_KEY,
            "SLUICE_SECRET_KEY": "chaos-secret-key-0123456789-abcdef",
            "SLUICE_CONFIG": str(self.config),
            "SLUICE_ENV": "development",
            "SLUICE_LOG_FORMAT": "json",
            **self.env,
        }
        command = [sys.executable, "-m", "sluice", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        self.process = spawn(command, env, self.log_path)
        async with httpx.AsyncClient(base_url=self.url) as client, asyncio.timeout(30):
            while True:
                assert self.process.poll() is None, self.log_path.read_text()[-3000:]
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        self.generation.set()

    async def kill_and_restart(self, downtime: float = 0.3) -> None:
        """SIGKILL (no shutdown of any kind), stay down a moment, start again."""
        assert self.process is not None
        self.generation.clear()
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, 10)
        self.restarts += 1
        await asyncio.sleep(downtime)
        await self.start()

    def rss_bytes(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(asyncio.to_thread(self.process.wait), 15)
            except TimeoutError:
                self.process.kill()


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

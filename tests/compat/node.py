"""Runs tests/compat/phoenix_client.mjs — the real `phoenix` JS client in Node — and returns what it printed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
NODE, NPM = shutil.which("node"), shutil.which("npm")

needs_node = pytest.mark.skipif(NODE is None or NPM is None, reason="Node 20 + npm drive the Phoenix client")


def ensure_node_modules() -> None:
    """`npm ci` from the committed lock file when a fresh clone has no node_modules yet."""
    if (HERE / "node_modules" / "phoenix").is_dir() and (HERE / "node_modules" / "ws").is_dir():
        return
    assert NPM is not None
    subprocess.run([NPM, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True, timeout=300)


async def phoenix_client(url: str, token: str, topic: str, *, wait: float = 20, **options: Any) -> list[dict[str, Any]]:
    """Every line the client printed: socket messages (`kind: msg`), join outcome, `closed`, `timeout`…"""
    ensure_node_modules()
    assert NODE is not None
    arguments = json.dumps({"url": url, "token": token, "topic": topic, **options})
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(HERE / "phoenix_client.mjs"),
        arguments,
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(wait):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    lines = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    assert process.returncode == 0, f"phoenix client exited {process.returncode}: {lines} {stderr.decode()[-2000:]}"
    return lines


def pushes(lines: list[dict[str, Any]], topic: str, event: str | None = None) -> list[dict[str, Any]]:
    """Server pushes on a topic (replies excluded), optionally of one event."""
    return [
        line
        for line in lines
        if line.get("kind") == "msg"
        and line["topic"] == topic
        and line["event"] != "phx_reply"
        and (event is None or line["event"] == event)
    ]


class ModelRiverBackend:
    """tests/compat/modelriver_verifier.mjs: a receiver that verifies like ModelRiver's demo backend."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}/webhook/modelriver"

    async def next(self, wait: float = 10) -> dict[str, Any]:
        """The verifier's verdict on the next request it receives: `{path, type, valid, error?}`."""
        assert self.process.stdout is not None
        async with asyncio.timeout(wait):
            line = await self.process.stdout.readline()
        assert line, "the ModelRiver verifier exited"
        return dict(json.loads(line))


@contextlib.asynccontextmanager
async def modelriver_backend(secret: str) -> AsyncIterator[ModelRiverBackend]:
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(HERE / "modelriver_verifier.mjs"),
        json.dumps({"secret": secret}),
        cwd=HERE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        async with asyncio.timeout(10):
            port = json.loads(await process.stdout.readline())["listening"]
        yield ModelRiverBackend(process, port)
    finally:
        process.stdin.close()  # the verifier exits when its stdin ends
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

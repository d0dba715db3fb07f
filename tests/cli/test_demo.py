"""`sluice demo` as a user runs it: a subprocess that prints the URL, serves the page and the SDK, and runs the
full chatbot flow (submit → stream → signed webhook → enrichment → callback)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from sluice.client import AsyncSluiceClient
from tests.conftest import free_port


async def test_sluice_demo_prints_the_url_and_serves_the_chatbot(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "CHATBOT_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice",
        "demo",
        "--port",
        str(port),
        "--app-port",
        str(free_port()),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        printed: list[str] = []
        async with asyncio.timeout(30):
            while not any("Open the chat" in line for line in printed):
                line = await process.stdout.readline()  # type: ignore[union-attr]
                assert line, f"sluice demo exited early: {printed}"
                printed.append(line.decode().rstrip())
        chat_url = next(line.split()[-1] for line in printed if "Open the chat" in line)
        api_key = next(line.split()[-1] for line in printed if line.startswith("API key"))
        assert any(line.startswith("Webhook step") and " on:" in line for line in printed), printed
        assert (tmp_path / ".sluice" / "sluice.db").is_file(), "the embedded store lives in ./.sluice"

        async with httpx.AsyncClient(timeout=10) as http:
            page = await http.get(chat_url)
            assert page.status_code == 200
            assert f"http://127.0.0.1:{port}/sdk/sluice.js" in page.text
            assert (await http.get(f"http://127.0.0.1:{port}/sdk/sluice.js")).status_code == 200
            chat = (await http.post(f"{chat_url}chat", json={"message": "hello demo"})).json()
        async with AsyncSluiceClient(f"http://127.0.0.1:{port}", api_key=api_key) as sluice:
            result = await sluice.wait(chat["channel_id"])
        # Enriched by the chatbot's webhook handler and delivered through the callback.
        assert result.data["id"] == chat["message_id"]
        assert result.data["conversation_id"] == chat["conversation_id"]
        assert "hello demo" in result.data["reply"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                await process.wait()

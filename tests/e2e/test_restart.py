"""A gateway killed with SIGKILL while a job streams: the restarted gateway finishes it, with one terminal event."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import MASTER_KEY, chat_body, collect_ws, events_only, free_port, paced_config


def serve(port: int, data_dir: Path, config: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SLUICE_MASTER_KEY": MASTER_KEY,
        "SLUICE_SECRET_KEY": "restart-test-secret-key-0123456789",
        "SLUICE_CONFIG": str(config),
        "SLUICE_HEARTBEAT_INTERVAL": "0.5",
    }
    command = [sys.executable, "-m", "sluice", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=url) as client, asyncio.timeout(30):
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "exited"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


async def test_sigkill_mid_stream_then_restart_completes_the_job(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    config = paced_config(tmp_path, 25)
    url = f"http://127.0.0.1:{port}"
    first = serve(port, data_dir, config)
    try:
        await wait_ready(url, first)
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as client:
            accepted = (await client.post("/v1/ai/async", json=chat_body("survive a crash please"))).json()
        before = events_only(await collect_ws(accepted["websocket_url"], stop_after=12))
        assert before[-1]["type"] in ("delta", "partial")  # killed mid-stream
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()

    second = serve(port, data_dir, config)
    try:
        await wait_ready(url, second)
        after_seq = before[-1]["seq"]
        resumed = events_only(await collect_ws(f"{accepted['websocket_url']}&after={after_seq}", timeout=30))
        fresh = events_only(await collect_ws(accepted["websocket_url"], timeout=30))
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as client:
            record = (await client.get(f"/v1/requests/{accepted['channel_id']}")).json()
    finally:
        second.terminate()
        second.wait(10)

    for stream in (before + resumed, fresh):
        seqs = [event["seq"] for event in stream]
        assert seqs == sorted(set(seqs)), "sequence numbers must only move forward, without repeats"
    assert resumed[0]["type"] == "reset" and resumed[0]["seq"] > after_seq
    terminals = [event for event in before + resumed if event["type"] in ("response", "error")]
    assert len(terminals) == 1 and resumed[-1]["type"] == "response"
    assert resumed[-1]["data"] == record["data"] and record["status"] == "completed"
    # The text after the reset alone rebuilds the answer: nothing of the killed run leaks into it.
    text = "".join(event["text"] for event in resumed if event["type"] == "delta")
    assert text.startswith('{"reply"') and '"sentiment"' in text
    assert [e for e in fresh if e["type"] in ("response", "error")] == [resumed[-1]]

"""`sluice forward`: a real CLI process forwards signed webhooks to a local server and survives a gateway restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from sluice.webhooks import verify
from tests.conftest import MASTER_KEY, StartGateway, chat_body, free_port
from tests.delivery.helpers import channel_events, serve_gateway, wait_ready, workflow_file
from tests.delivery.receiver import json_of, running_receiver


class Lines:
    """A subprocess's stdout, read line by line as it arrives."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []

    async def until(self, text: str, wait: float = 15.0) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(wait):
            while True:
                line = (await self.process.stdout.readline()).decode()
                assert line, f"forward exited; output so far: {self.seen}"
                self.seen.append(line.rstrip())
                if text in line:
                    return line


async def _start_forward(url: str, to: str) -> Lines:
    env = {**os.environ, "SLUICE_URL": url, "SLUICE_API_KEY": MASTER_KEY, "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice",
        "forward",
        "--to",
        to,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    return Lines(process)


async def test_forward_delivers_signed_webhooks_and_reconnects(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    url = f"http://127.0.0.1:{port}"
    config = workflow_file(tmp_path)
    async with (
        running_receiver() as receiver,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10) as client,
    ):
        gateway = serve_gateway(port, data_dir, config)
        forwarder: Lines | None = None
        try:
            await wait_ready(client, gateway)
            secret = (await client.post("/v1/admin/webhooks/secrets/rotate", json={"overlap_seconds": 0})).json()
            forwarder = await _start_forward(url, receiver.url)
            await forwarder.until("Ready")

            # the workflow marks its webhook as forwarded: no URL in the request, no public address needed
            body = chat_body("I love it", workflow="forwarded", events=["webhook_received"])
            accepted = (await client.post("/v1/ai/async", json=body)).json()
            arrived = await receiver.next(10)
            verify(arrived.headers, arrived.body, secret["secret"])  # signature headers intact
            payload = json_of(arrived)
            assert payload["channel_id"] == accepted["channel_id"]
            line = await forwarder.until("task.ai_generated")
            assert " 200 " in line and receiver.url in line
            assert (await client.post(payload["callback_url"], json={"ok": True})).status_code == 200
            events = await channel_events(accepted["websocket_url"])
            assert events[-1]["data"] == {"ok": True}
            deliveries = (
                await client.get("/v1/admin/webhooks/deliveries", params={"request_id": accepted["channel_id"]})
            ).json()["deliveries"]
            shown = (await client.get(f"/v1/admin/webhooks/deliveries/{deliveries[0]['id']}")).json()
            assert shown["status"] == "delivered" and shown["attempt_log"][0]["via"] == "forward"
            assert '"received":true' in shown["attempt_log"][0]["response_excerpt"]

            gateway.send_signal(signal.SIGKILL)
            gateway.wait(10)
            await forwarder.until("reconnecting")
            gateway = serve_gateway(port, data_dir, config)
            await wait_ready(client, gateway)
            await forwarder.until("Ready")

            second = (await client.post("/v1/ai/async", json=body)).json()
            again = await receiver.next(10)
            assert json_of(again)["channel_id"] == second["channel_id"]
            verify(again.headers, again.body, secret["secret"])
        finally:
            if forwarder is not None and forwarder.process.returncode is None:
                forwarder.process.terminate()
                await forwarder.process.wait()
            gateway.terminate()
            gateway.wait(10)


async def test_forward_refuses_a_bad_key_and_no_session_means_retry(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    from sluice.cli.forward import run_forward

    gw = await start_gateway(
        config_path=workflow_file(tmp_path), extra={"webhook_retry_schedule": [0, 0.05], "callback_sweep_interval": 0.2}
    )
    async with asyncio.timeout(10):
        assert await run_forward(gw.url, "sk_sluice_wrong", "http://127.0.0.1:9/") == 1
    async with gw.client() as client:
        accepted = (
            await client.post("/v1/ai/async", json=chat_body(workflow="forwarded", events=["webhook_received"]))
        ).json()
    events = await channel_events(accepted["websocket_url"])
    failures = [e for e in events if e["type"] == "webhook" and e["state"] == "failed"]
    assert len(failures) == 2 and all(e["status_code"] is None for e in failures)
    assert events[-1]["type"] == "error" and "could not be delivered" in events[-1]["message"]

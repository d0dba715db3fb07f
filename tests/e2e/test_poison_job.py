"""A poison job: a request whose run kills its gateway, every time. After `SLUICE_JOB_MAX_CRASHES` crashed runs the
restarted gateway fails it (`job_crashed`, one terminal event, the webhook told) instead of running it again — and
crash-looping — and an admin re-runs it from the admin API as a new request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import MASTER_KEY, chat_body, collect_ws, events_only, free_port, paced_config
from tests.delivery.receiver import running_receiver
from tests.e2e.test_restart import wait_ready

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}


def serve(port: int, data_dir: Path, config: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SLUICE_MASTER_KEY": MASTER_KEY,
        "SLUICE_SECRET_KEY": "poison-test-secret-key-0123456789",
        "SLUICE_CONFIG": str(config),
        "SLUICE_ENV": "development",  # the webhook receiver is on loopback
        "SLUICE_HEARTBEAT_INTERVAL": "0.5",
        "SLUICE_JOB_MAX_CRASHES": "2",
    }
    command = [sys.executable, "-m", "sluice", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_a_run_that_kills_its_gateway_is_dead_lettered_then_rerun(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    config = paced_config(tmp_path, 10)
    url = f"http://127.0.0.1:{port}"
    async with running_receiver() as receiver:
        accepted: dict[str, Any] = {}
        for crash in range(2):  # the run gets under way, and its gateway dies (as an out-of-memory kill would do)
            gateway = serve(port, data_dir, config)
            try:
                await wait_ready(url, gateway)
                if not accepted:
                    async with httpx.AsyncClient(base_url=url, headers=HEADERS) as client:
                        body = chat_body(f"poison {crash}", webhook_url=receiver.url)
                        accepted = (await client.post("/v1/ai/async", json=body)).json()
                streamed = events_only(await collect_ws(accepted["websocket_url"], stop_after=6 + crash))
                assert "delta" in [e["type"] for e in streamed], "the run was under way"
                gateway.send_signal(signal.SIGKILL)
                gateway.wait(10)
            finally:
                gateway.kill()
        assert receiver.received == []

        gateway = serve(port, data_dir, config)
        try:
            await wait_ready(url, gateway)
            events = events_only(await collect_ws(accepted["websocket_url"], timeout=20))
            # Dead-lettered: failed with job_crashed, announced once; not run a third time.
            terminals = [e for e in events if e["type"] in ("response", "error")]
            assert terminals == [events[-1]] and events[-1].get("code") == "job_crashed", events[-1]
            webhook = json.loads((await receiver.next(wait=10)).body)
            async with httpx.AsyncClient(base_url=url, headers=HEADERS) as client:
                status = (await client.get(f"/v1/requests/{accepted['channel_id']}")).json()
                listed = (await client.get("/v1/admin/requests", params={"status": "failed"})).json()["requests"]
                rerun = await client.post(f"/v1/admin/requests/{accepted['channel_id']}/rerun")
                again = await client.post(f"/v1/admin/requests/{rerun.json()['channel_id']}/rerun")  # still running
                missing = await client.post("/v1/admin/requests/nope/rerun")
                rerun_events = events_only(await collect_ws(rerun.json()["websocket_url"], timeout=20))
                rerun_status = (await client.get(f"/v1/admin/requests/{rerun.json()['channel_id']}")).json()
            rerun_webhook = json.loads((await receiver.next(wait=10)).body)
        finally:
            gateway.terminate()
            gateway.wait(10)

    assert "stopped 2 times without finishing" in events[-1]["message"]
    last_reset = max(i for i, e in enumerate(events) if e["type"] == "reset")  # the crashed run's output retracted
    assert "delta" not in [e["type"] for e in events[last_reset:]]
    assert status["status"] == "failed" and status["error"]["code"] == "job_crashed"
    assert webhook["type"] == "task.failed" and webhook["error"]["code"] == "job_crashed"
    # In the console's request log, and re-run from the admin API as a new request that completes.
    assert [(r["id"], r["error_code"]) for r in listed] == [(accepted["channel_id"], "job_crashed")]
    assert rerun.status_code == 202 and rerun.json()["rerun_of"] == accepted["channel_id"]
    assert rerun.json()["channel_id"] != accepted["channel_id"]
    assert again.status_code == 409 and again.json()["error"]["code"] == "request_not_finished"
    assert missing.status_code == 404
    assert rerun_events[-1]["type"] == "response"
    assert rerun_status["status"] == "completed" and rerun_status["request"]["rerun_of"] == accepted["channel_id"]
    assert rerun_webhook["type"] == "task.completed" and rerun_webhook["request_id"] == rerun.json()["channel_id"]

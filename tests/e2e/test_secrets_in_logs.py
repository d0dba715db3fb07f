"""A full run of `sluice serve --access-log` with JSON logs captured: no secret it was given or handed out — master
key, API keys, SLUICE_SECRET_KEY, provider credentials, webhook signing secret, ws_tokens, callback tokens — appears
in its logs, nor in any response other than the one that issues it. Failures are provoked on purpose (wrong keys,
forged and reused tokens, a provider refusing its key), because error paths are where secrets leak."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import websockets

from sluice.testing import FakeProvider, Script
from tests.chaos.process import spawn
from tests.conftest import MASTER_KEY, free_port
from tests.delivery.helpers import channel_events, wait_ready
from tests.delivery.receiver import json_of, running_receiver

SECRET_KEY = "scan-secret-key-0123456789-abcdefghijklmnop"
PROVIDER_KEY = "sk-provider-key-from-env-0123456789abcdef"
STORED_PROVIDER_KEY = "sk-stored-provider-key-9876543210fedcba"


def config(tmp_path: Path, fake_url: str) -> Path:
    path = tmp_path / "sluice.yaml"
    path.write_text(f"""
providers:
  fake: {{type: openai, api_key: "${{SCAN_PROVIDER_KEY}}", base_url: "{fake_url}"}}
workflows:
  scan:
    chain: [{{provider: fake, model: m1, retries: 0}}]
    callback: {{timeout: 30s, on_timeout: fail}}
""")
    return path


async def test_no_secret_in_logs_errors_or_responses(tmp_path: Path) -> None:
    issued: list[str] = []  # secrets handed out (each may appear only in the response that issued it)
    bodies: list[str] = []  # every other response body the run saw
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "gateway.log"
    admin = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with FakeProvider("openai") as fake, running_receiver() as receiver:
        env = {
            **os.environ,
            "SLUICE_MASTER_KEY": MASTER_KEY,
            "SLUICE_SECRET_KEY": SECRET_KEY,
            "SLUICE_CONFIG": str(config(tmp_path, fake.base_url)),
            "SLUICE_ENV": "development",
            "SLUICE_LOG_FORMAT": "json",
            "SCAN_PROVIDER_KEY": PROVIDER_KEY,
            "SLUICE_HEARTBEAT_INTERVAL": "0.5",
        }
        command = [
            sys.executable,
            "-m",
            "sluice",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
            "--access-log",
        ]
        process = spawn(command, env, log_path)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=15) as client:
                await wait_ready(client, process)

                async def call(method: str, path: str, *, issues: str | None = None, **kwargs: object) -> dict:
                    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
                    json_body = response.headers.get("content-type", "").startswith("application/json")
                    data = response.json() if json_body else {}
                    if issues:
                        issued.append(data[issues])
                    else:
                        bodies.append(response.text)
                    return data

                api_key = (await call("POST", "/v1/admin/keys", json={"name": "app"}, headers=admin, issues="key"))[
                    "key"
                ]
                user = {"Authorization": f"Bearer {api_key}"}
                await call("POST", "/v1/admin/webhooks/secrets/rotate", json={}, headers=admin, issues="secret")
                await call(
                    "POST",
                    "/v1/admin/providers",
                    headers=admin,
                    json={
                        "name": "stored",
                        "type": "openai",
                        "options": {"base_url": fake.base_url},
                        "credentials": {"api_key": STORED_PROVIDER_KEY},
                    },
                )
                fake.script(Script(status=401))
                await call("POST", "/v1/admin/providers/stored/test", headers=admin, json={"model": "m1"})
                await call("GET", "/v1/admin/providers", headers=admin)

                # the callback flow, end to end
                body = {
                    "workflow": "scan",
                    "messages": [{"role": "user", "content": "hi"}],
                    "webhook_url": receiver.url,
                    "events": ["webhook_received"],
                }
                accepted = await call("POST", "/v1/ai/async", json=body, headers=user, issues="ws_token")
                payload = json_of(await receiver.next(10))
                callback_url = payload["callback_url"]
                issued.append(callback_url.split("token=", 1)[1])
                async with client.stream(
                    "GET", f"/v1/channels/{accepted['channel_id']}/events", params={"token": accepted["ws_token"]}
                ) as sse:
                    assert sse.status_code == 200
                await call("POST", callback_url.replace(accepted["channel_id"], "nope"), json={})
                await call("POST", callback_url.split("?")[0] + "?token=cbt_forged", json={"a": 1})
                await call("POST", callback_url, json={"enriched": True})
                await call("POST", callback_url, json={"again": True})  # single-use: 409
                events = await channel_events(accepted["websocket_url"])
                assert events[-1]["type"] == "response"
                bodies.append(str(events))

                # failures: a provider refusing its key, bad credentials of every kind
                fake.script(Script(status=401))
                await call(
                    "POST",
                    "/v1/ai",
                    headers=user,
                    json={"workflow": "scan", "messages": [{"role": "user", "content": "fail"}]},
                )
                await call(
                    "POST",
                    "/v1/chat/completions",
                    headers=user,
                    json={"model": "scan", "messages": [{"role": "user", "content": "hello"}]},
                )
                for bad in (accepted["ws_token"], callback_url.split("token=", 1)[1], api_key + "x", SECRET_KEY):
                    await call(
                        "GET", f"/v1/requests/{accepted['channel_id']}", headers={"Authorization": f"Bearer {bad}"}
                    )
                await call(
                    "GET",
                    f"/v1/channels/{accepted['channel_id']}/events",
                    params={"token": accepted["ws_token"] + "tampered"},
                )
                forged = f"{url.replace('http', 'ws')}/v1/ws?channel_id={accepted['channel_id']}&token=x.y.z"
                async with websockets.connect(forged) as ws:
                    await ws.wait_closed()
                for path in (
                    "/v1/admin/requests",
                    f"/v1/admin/requests/{accepted['channel_id']}",
                    "/v1/admin/webhooks/deliveries",
                    "/v1/admin/webhooks/secrets",
                    "/v1/admin/keys",
                    "/metrics",
                ):
                    await call("GET", path, headers=admin)
                for delivery in (await call("GET", "/v1/admin/webhooks/deliveries", headers=admin))["deliveries"]:
                    await call("GET", f"/v1/admin/webhooks/deliveries/{delivery['id']}", headers=admin)
                assert any(r.headers.get("authorization") == f"Bearer {PROVIDER_KEY}" for r in fake.requests)
                assert any(r.headers.get("authorization") == f"Bearer {STORED_PROVIDER_KEY}" for r in fake.requests)
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), 15)
            except TimeoutError:
                process.kill()
    logs = log_path.read_text()
    assert '"logger"' in logs and "/v1/callback/" in logs  # JSON lines, access log included
    secrets = {
        "master key": MASTER_KEY,
        "SLUICE_SECRET_KEY": SECRET_KEY,
        "provider key": PROVIDER_KEY,
        "stored provider key": STORED_PROVIDER_KEY,
        **{f"issued #{i}": s for i, s in enumerate(issued)},
    }
    assert len(issued) == 4  # API key, webhook secret, ws_token, callback token
    leaks = [f"{name} in the logs" for name, value in secrets.items() if value in logs]
    everything = "\n".join(bodies)
    leaks += [f"{name} in a response" for name, value in secrets.items() if value in everything]
    assert not leaks, leaks

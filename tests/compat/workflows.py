"""The catalog the compat tests run: a ModelRiver-style event-driven workflow, a plain one, and one that fails."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import RunningGateway, StartGateway

FAST = {"webhook_retry_schedule": [0, 0.05, 0.05], "webhook_jitter": 0.1, "callback_sweep_interval": 0.2}

CATALOG = """
providers:
  sim: {type: simulated, pace_ms: 0}
  slowsim: {type: simulated, pace_ms: 15}
workflows:
  mr_chatbot_workflow:
    event: new_chat
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string, sentiment: "positive | negative | neutral | mixed"}
    echo_fields: [metadata.conversation_id]
    callback: {timeout: 30s, on_timeout: fail}
  plain:
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string, sentiment: "positive | negative | neutral | mixed"}
    echo_fields: [metadata.segment, messages.0.content]
  paced:
    chain: [{provider: slowsim, model: sim-1}]
    schema: {reply: string, sentiment: "positive | negative | neutral | mixed"}
    echo_fields: [metadata.segment, messages.0.content]
  mr_off:
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string, sentiment: "positive | negative | neutral | mixed"}
    modelriver_signature: false
  text_only:
    chain: [{provider: sim, model: sim-1}]
  broken:
    chain: [{provider: sim, model: sim-invalid-json-always, retries: 0}]
    schema: {reply: string}
"""


async def start(start_gateway: StartGateway, tmp_path: Path) -> RunningGateway:
    config = tmp_path / "compat.yaml"
    config.write_text(CATALOG)
    return await start_gateway(config_path=config, extra=FAST)


def ask(workflow: str, text: str = "I love this product", **extra: Any) -> dict[str, Any]:
    return {"workflow": workflow, "messages": [{"role": "user", "content": text}], **extra}


async def finished(client: httpx.AsyncClient, channel_id: str, wait: float = 10) -> dict[str, Any]:
    """The request record once it has finished (for a late join, or to compare with what was pushed)."""
    async with asyncio.timeout(wait):
        while True:
            record = (await client.get(f"/v1/requests/{channel_id}")).json()
            if record["status"] in ("completed", "failed"):
                return record
            await asyncio.sleep(0.05)

"""The run loop's structured-output policy: a schema violation is re-asked once on the same provider, then the
run fails over; every attempt is in the request log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.conftest import RunningGateway, StartGateway, chat_body, write_config

CONFIG = """
providers:
  simulated: {type: simulated, pace_ms: 0}
workflows:
  repaired:
    schema: {reply: string, sentiment: "positive | negative"}
    chain: [{provider: simulated, model: sim-invalid-json}]
  failed_over:
    schema: {reply: string, sentiment: "positive | negative"}
    chain: [{provider: simulated, model: sim-invalid-json-always}, {provider: simulated, model: sim-1}]
"""


async def run(gw: RunningGateway, workflow: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    async with gw.client() as client:
        accepted = (await client.post("/v1/ai/async", json=chat_body("I love it", workflow=workflow))).json()
        async with client.stream("GET", accepted["events_url"]) as response:
            events = [orjson.loads(line[6:]) async for line in response.aiter_lines() if line.startswith("data: ")]
        record = (await client.get(f"/v1/requests/{accepted['request_id']}")).json()
    return events, record


async def test_schema_violation_is_reasked_on_the_same_provider(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=write_config(tmp_path, CONFIG))
    events, record = await run(gw, "repaired")
    kinds = [e["type"] for e in events]
    assert kinds.count("attempt") == 2 and "failover" not in kinds
    assert kinds.index("reset") < max(i for i, k in enumerate(kinds) if k == "attempt")
    assert events[-1]["type"] == "response" and events[-1]["data"]["sentiment"] == "positive"
    assert events[-1]["meta"]["structured_mode"] == "native"
    assert [(a["model"], a["status"], a["error_code"]) for a in record["attempts"]] == [
        ("sim-invalid-json", "failed", "schema_violation"),
        ("sim-invalid-json", "succeeded", None),
    ]


async def test_repeated_schema_violation_fails_over(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=write_config(tmp_path, CONFIG))
    events, record = await run(gw, "failed_over")
    kinds = [e["type"] for e in events]
    assert kinds.count("reset") == 2 and kinds.count("failover") == 1
    assert events[-1]["type"] == "response" and events[-1]["meta"]["model"] == "sim-1"
    assert [(a["model"], a["status"]) for a in record["attempts"]] == [
        ("sim-invalid-json-always", "failed"),
        ("sim-invalid-json-always", "failed"),
        ("sim-1", "succeeded"),
    ]

"""Structured output end to end through a real gateway: repair, re-ask, failover, and the partial object on a WebSocket.

The simulated provider's scripted models (see `sluice.providers.simulated`) play the misbehaving model; each workflow
chains two entries so that failover shows.
"""

import itertools
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from sluice.workflows.loader import DEMO_SCHEMA
from sluice.workflows.shorthand import compile_schema
from tests.conftest import RunningGateway, StartGateway, chat_body, collect_ws, events_only, paced_config, write_config

VALIDATOR = jsonschema_rs.validator_for(compile_schema(DEMO_SCHEMA))
CHAINS = {
    "extra_text": ["sim-extra-text", "sim-1"],
    "trailing_comma": ["sim-trailing-comma", "sim-1"],
    "invalid_json": ["sim-invalid-json", "sim-1"],
    "missing_field": ["sim-missing-field", "sim-1"],
    "wrong_enum": ["sim-wrong-enum", "sim-1"],
    "enum_always": ["sim-wrong-enum-always", "sim-1"],
    "json_always": ["sim-invalid-json-always", "sim-1"],
    "nothing_valid": ["sim-missing-field-always", "sim-wrong-enum-always"],
}


def fault_config(directory: Path) -> Path:
    workflows = {
        name: {"chain": [{"provider": "sim", "model": model} for model in models], "schema": DEMO_SCHEMA}
        for name, models in CHAINS.items()
    }
    return write_config(
        directory,
        yaml.safe_dump(
            {"providers": {"sim": {"type": "simulated", "pace_ms": 0}}, "workflows": workflows}, sort_keys=False
        ),
    )


async def run(gw: RunningGateway, workflow: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Submit, then read the whole channel over the WebSocket and the request record."""
    async with gw.client() as client:
        accepted = (await client.post("/v1/ai/async", json=chat_body("I love it but it is slow", workflow))).json()
        events = events_only(await collect_ws(accepted["websocket_url"]))
        record = (await client.get(f"/v1/requests/{accepted['channel_id']}")).json()
    return events, record


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


@pytest.fixture
async def faults(start_gateway: StartGateway, tmp_path: Path) -> RunningGateway:
    return await start_gateway(config_path=fault_config(tmp_path))


@pytest.mark.parametrize("workflow", ["extra_text", "trailing_comma"])
async def test_syntax_slips_are_repaired_in_place(faults: RunningGateway, workflow: str) -> None:
    events, record = await run(faults, workflow)
    assert types(events).count("attempt") == 1 and "reset" not in types(events) and "failover" not in types(events)
    final = events[-1]
    assert final["type"] == "response" and VALIDATOR.is_valid(final["data"])
    assert final["meta"]["model"] == CHAINS[workflow][0]
    assert final["meta"]["structured_mode"] == "native"
    assert [a["status"] for a in record["attempts"]] == ["succeeded"]


@pytest.mark.parametrize(
    ("workflow", "says"),
    [
        ("invalid_json", "not valid JSON"),
        ("missing_field", 'missing required field "action_items"'),
        ("wrong_enum", '$.sentiment: "not-mixed" is not allowed'),
    ],
)
async def test_validation_failures_are_reasked_on_the_same_provider(
    faults: RunningGateway,
    workflow: str,
    says: str,
) -> None:
    events, record = await run(faults, workflow)
    attempts = [e for e in events if e["type"] == "attempt"]
    assert [a["model"] for a in attempts] == [CHAINS[workflow][0]] * 2  # the re-ask, no failover
    assert "failover" not in types(events)
    resets = [e for e in events if e["type"] == "reset"]
    assert len(resets) == 1 and says in resets[0]["reason"]
    final = events[-1]
    assert final["type"] == "response" and VALIDATOR.is_valid(final["data"])
    assert final["meta"]["model"] == CHAINS[workflow][0]
    assert [a["status"] for a in record["attempts"]] == ["failed", "succeeded"]
    assert record["attempts"][0]["error_code"] == "schema_violation"


@pytest.mark.parametrize("workflow", ["enum_always", "json_always"])
async def test_a_provider_still_wrong_after_the_reask_is_failed_over(faults: RunningGateway, workflow: str) -> None:
    events, record = await run(faults, workflow)
    assert [e["model"] for e in events if e["type"] == "attempt"] == [CHAINS[workflow][0]] * 2 + ["sim-1"]
    failover = next(e for e in events if e["type"] == "failover")
    assert failover["from"] == f"sim/{CHAINS[workflow][0]}" and failover["to"] == "sim/sim-1"
    assert types(events).count("reset") == 2
    # Everything streamed after the last reset belongs to the answer that was delivered.
    after_reset = events[len(events) - 1 - types(events)[::-1].index("reset") :]
    final = events[-1]
    assert final["type"] == "response" and VALIDATOR.is_valid(final["data"]) and final["meta"]["model"] == "sim-1"
    assert [e["data"] for e in after_reset if e["type"] == "partial"][-1] == final["data"]
    assert [a["status"] for a in record["attempts"]] == ["failed", "failed", "succeeded"]


async def test_when_nothing_can_produce_a_valid_object_the_error_says_why(faults: RunningGateway) -> None:
    events, record = await run(faults, "nothing_valid")
    final = events[-1]
    assert final["type"] == "error" and final["code"] == "schema_violation"
    assert "every provider failed" in final["message"] and '$.sentiment: "not-mixed"' in final["message"]
    assert "response" not in types(events)
    assert record["status"] == "failed" and len(record["attempts"]) == 4


async def test_websocket_client_sees_the_reply_grow_then_the_final_response(
    start_gateway: StartGateway,
    tmp_path: Path,
) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 5))
    async with gw.client() as client:
        accepted = (await client.post("/v1/ai/async", json=chat_body("Tell me about rivers and sluices"))).json()
    events = events_only(await collect_ws(accepted["websocket_url"]))
    partials = [e["data"] for e in events if e["type"] == "partial"]
    deltas = [e for e in events if e["type"] == "delta"]
    final = events[-1]
    assert final["type"] == "response" and VALIDATOR.is_valid(final["data"])
    replies = [p["reply"] for p in partials if "reply" in p]
    growing = [r for r in replies if r != final["data"]["reply"]]
    assert len(growing) >= 3, replies
    for before, after in itertools.pairwise(growing):
        assert len(after) > len(before) and after.startswith(before)  # strictly grows, never rewrites
    assert all(r == final["data"]["reply"] for r in replies[len(growing) :])
    assert partials[-1] == final["data"]  # the last partial is the whole object
    assert len(partials) < len(deltas) / 2  # coalesced: not one event per token
    for partial in partials:  # enums and numbers only ever appear complete
        assert partial.get("sentiment", final["data"]["sentiment"]) == final["data"]["sentiment"]
        assert partial.get("confidence", final["data"]["confidence"]) == final["data"]["confidence"]

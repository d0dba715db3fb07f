"""Every adapter, every fault, through the real gateway, against wire-faithful fake providers on loopback.

For each case the run must end the way the fault's class says (retry on the same provider, fail over, or fail fast),
the channel must end with exactly one terminal event, and the final text must come from a single attempt: the
workflow here has `continuation: off`, so output streamed before a failure is taken back (`reset`). The same faults
continued instead of retracted: test_continuation_matrix.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from sluice.providers.registry import TYPES
from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, chat_body, free_port, write_config

ADAPTERS = {name: entry.fake for name, entry in TYPES.items() if entry.fake}  # provider type -> fake protocol
PRIMARY_TEXT = "Primary answer: the first provider streams this text in pieces."
BACKUP_TEXT = "Backup answer: the second provider streams a different text."


@dataclass(frozen=True)
class Case:
    scripts: tuple[Script, ...] = ()
    refuse: bool = False  # the primary's port has no listener
    winner: str | None = "primary"  # None: the request fails
    primary_attempts: tuple[str, ...] = ("failed", "succeeded")  # store statuses of the primary's attempts
    error_code: str = ""  # of the primary's first attempt (or of the failed request)
    resets: int = 0
    min_gap: float = 0.0  # seconds between the first two attempts (Retry-After)
    extra: dict[str, Any] = field(default_factory=dict)
    # The primary's deadlines: short where the fault is a timeout the test waits for, else generous (a loaded machine
    # must not turn a quick 401 into a first-token timeout).
    timeouts: str = "{connect: 2, first_token: 5, idle: 5, total: 10}"


SHORT = "{connect: 1, first_token: 0.4, idle: 0.4, total: 10}"


def overloaded(kind: str) -> int:
    return 529 if kind == "anthropic" else 503


CASES: dict[str, Any] = {
    "429 with Retry-After": lambda k: Case(
        (Script(status=429, retry_after=0.15),), error_code="rate_limited", min_gap=0.15
    ),
    "500": lambda k: Case((Script(status=500),), error_code="provider_unavailable"),
    "503/overloaded": lambda k: Case((Script(status=overloaded(k)),), error_code="provider_unavailable"),
    "overloaded mid-stream": lambda k: Case((Script(error_after=3),), error_code="provider_unavailable", resets=1),
    "connection refused": lambda k: Case(
        refuse=True, winner="backup", primary_attempts=("failed", "failed"), error_code="provider_unavailable"
    ),
    "no first byte in time": lambda k: Case(
        (Script(first_byte_delay=2.0),),
        winner="backup",
        primary_attempts=("failed",),
        error_code="provider_timeout",
        timeouts=SHORT,
    ),
    "cut after N chunks": lambda k: Case(
        (Script(cut_after=3),), winner="backup", primary_attempts=("failed",), error_code="stream_broken", resets=1
    ),
    "stall mid-stream": lambda k: Case(
        (Script(stall_after=3),),
        winner="backup",
        primary_attempts=("failed",),
        error_code="provider_timeout",
        resets=1,
        timeouts=SHORT,
    ),
    "malformed chunk": lambda k: Case(
        (Script(malformed_at=2),), winner="backup", primary_attempts=("failed",), error_code="stream_broken", resets=1
    ),
    "400": lambda k: Case(
        (Script(status=400),), winner=None, primary_attempts=("failed",), error_code="invalid_request"
    ),
    "401": lambda k: Case(
        (Script(status=401),), winner="backup", primary_attempts=("failed",), error_code="provider_auth_failed"
    ),
}


def matrix_config(directory: Path, provider_type: str, primary_url: str, backup_url: str, timeouts: str) -> Path:
    return write_config(
        directory,
        f"""
providers:
  primary: {{type: {provider_type}, api_key: test-key, base_url: "{primary_url}", breaker: {{failures: 1000}}}}
  backup: {{type: {provider_type}, api_key: test-key, base_url: "{backup_url}"}}
workflows:
  matrix:
    continuation: "off"
    chain:
      - {{provider: primary, model: model-a, retries: 1, timeouts: {timeouts}}}
      - {{provider: backup, model: model-b, timeouts: {{first_token: 5, idle: 5}}}}
""",
    )


async def sse_events(lines: AsyncIterator[str]) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) async for line in lines if line.startswith("data: ")]


@pytest.mark.parametrize("fault", list(CASES))
@pytest.mark.parametrize("provider_type", list(ADAPTERS))
async def test_fault(start_gateway: StartGateway, tmp_path: Path, provider_type: str, fault: str) -> None:
    kind = ADAPTERS[provider_type]
    case: Case = CASES[fault](kind)
    async with FakeProvider(kind, text=PRIMARY_TEXT) as primary, FakeProvider(kind, text=BACKUP_TEXT) as backup:
        primary.script(*case.scripts)
        primary_url = f"http://127.0.0.1:{free_port()}" if case.refuse else primary.base_url
        config = matrix_config(tmp_path, provider_type, primary_url, backup.base_url, case.timeouts)
        gw = await start_gateway(config_path=config)
        async with gw.client() as client:
            accepted = (await client.post("/v1/ai/async", json=chat_body("hi", workflow="matrix"))).json()
            request_id = accepted["request_id"]
            async with asyncio.timeout(15), client.stream("GET", accepted["events_url"]) as response:
                assert response.status_code == 200
                events = await sse_events(response.aiter_lines())
        terminal = [e for e in events if e["type"] in ("response", "error")]
        assert len(terminal) == 1 and events[-1] is terminal[0], [e["type"] for e in events]
        assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[0]["seq"] + len(events)))
        assert sum(e["type"] == "reset" for e in events) == case.resets

        # The final text is exactly one attempt's text, and what streamed since the last attempt event.
        last_attempt = max(i for i, e in enumerate(events) if e["type"] == "attempt")
        streamed = "".join(e["text"] for e in events[last_attempt:] if e["type"] == "delta")
        if case.winner is None:
            assert terminal[0]["type"] == "error" and terminal[0]["code"] == case.error_code
            assert backup.requests == []
        else:
            expected = PRIMARY_TEXT if case.winner == "primary" else BACKUP_TEXT
            assert terminal[0]["type"] == "response", terminal[0]
            assert terminal[0]["data"]["content"] == expected == streamed
            assert terminal[0]["meta"]["provider"] == case.winner
        # A reset comes before any failover that follows streamed output.
        for i, event in enumerate(events):
            if event["type"] == "failover":
                since = events[max(j for j in range(i) if events[j]["type"] == "attempt") : i]
                if any(e["type"] == "delta" for e in since):
                    assert since[-1]["type"] == "reset"

        async with gw.client() as client:
            record = (await client.get(f"/v1/requests/{request_id}")).json()
        mine = [a for a in record["attempts"] if a["provider"] == "primary"]
        assert tuple(a["status"] for a in mine) == case.primary_attempts
        assert mine[0]["error_code"] == case.error_code
        assert [a["attempt"] for a in record["attempts"]] == list(range(1, len(record["attempts"]) + 1))
        if case.min_gap:
            starts = [datetime.fromisoformat(a["started_at"]) for a in mine]
            assert (starts[1] - starts[0]).total_seconds() >= case.min_gap - 0.01
        if not case.refuse:
            assert len(primary.requests) == len(mine)

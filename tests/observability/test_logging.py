"""Structured logs: JSON lines with the request id of the HTTP call or job; the id is echoed as X-Request-ID."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from sluice.observability.logging import JsonFormatter, bind_request_id, request_id
from tests.conftest import RunningGateway

SCRIPT = """
import logging
from sluice.observability.logging import bind_request_id, configure_logging
assert configure_logging()
assert not configure_logging()  # once only
bind_request_id("req-123")
logging.getLogger("sluice.worker").warning("job %s done", "j1", extra={"attempts": 2})
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("sluice.api").exception("boom")
"""


def test_configured_logging_writes_json_lines_with_the_request_id() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    first, second = lines[0], lines[1]
    assert first["message"] == "job j1 done" and first["level"] == "warning" and first["logger"] == "sluice.worker"
    assert first["request_id"] == "req-123" and first["attempts"] == 2 and first["ts"].endswith("Z")
    assert second["request_id"] == "req-123" and "ZeroDivisionError" in second["error"]


def test_formatter_leaves_out_an_unset_request_id() -> None:
    bind_request_id(None)
    record = logging.makeLogRecord({"name": "sluice", "levelname": "INFO", "msg": "plain"})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "plain" and "request_id" not in entry
    assert request_id.get() is None


async def test_http_responses_carry_a_request_id(gw: RunningGateway) -> None:
    async with gw.client() as client:
        mine = await client.get("/metrics", headers={"X-Request-ID": "trace-42"})
        fresh = await client.get("/metrics")
        bogus = await client.get("/metrics", headers={"X-Request-ID": "bad id\twith spaces"})
    assert mine.headers["x-request-id"] == "trace-42"
    assert len(fresh.headers["x-request-id"]) == 32
    assert bogus.headers["x-request-id"] != "bad id\twith spaces"

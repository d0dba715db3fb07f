"""Continuation through the real gateway, against each provider type's wire-faithful fake: every adapter and method,
every cut point, text and structured. The primary fake is cut at an exact character; the backup (same type, same answer)
is asked to continue, by prefill or by instruction, and answers the rest as a model would (restating the word it was
cut in, or starting over). The channel must carry the whole answer once — no character lost or doubled at the seam —
with a `splice` and no `reset`, one terminal event, a structured answer that validates, and partial objects that
only grow."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, chat_body, write_config
from tests.engine.test_fault_matrix import sse_events

TEXT = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun."
DATA = {"reply": "The quick brown fox jumps over the lazy dog.", "score": 0.875, "mood": "happy"}
JSON = orjson.dumps(DATA).decode()
SCHEMA = {"reply": "string", "score": "number", "mood": "happy | sad"}
REFUSED = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "This model does not support assistant message prefill. The conversation must end with a user "
        "message.",
    },
}


@dataclass(frozen=True)
class Adapter:
    type: str
    fake: str
    options: str = ""
    methods: tuple[str, ...] = ("instruction",)  # the splices' methods, in order
    # The backup answers a prefill with Anthropic's 400 (Claude 4.6 and later): once, as the adapter remembers it and
    # asks by instruction from then on.
    refuses_prefill: bool = False


ADAPTERS = {
    "openai": Adapter("openai", "openai"),
    "openai-compatible": Adapter("openai-compatible", "openai"),
    "openai-compatible prefill": Adapter("openai-compatible", "openai", "continuation: prefill", ("prefill",)),
    "anthropic": Adapter("anthropic", "anthropic", methods=("prefill",)),
    "anthropic, prefill refused": Adapter(
        "anthropic", "anthropic", methods=("prefill", "instruction"), refuses_prefill=True
    ),
    "gemini": Adapter("gemini", "gemini"),
    "ollama": Adapter("ollama", "ollama", methods=("prefill",)),
}
# Where the primary's stream is cut: after its first chunk, or after an exact number of characters.
CUTS: dict[str, dict[str, Script]] = {
    "text": {
        "after 1 chunk": Script(cut_after=1),
        "mid-word": Script(cut_at=TEXT.index("brown") + 2),
        "after a space": Script(cut_at=TEXT.index("lazy")),
        "in-stream error": Script(error_after=3),  # e.g. Anthropic's overloaded_error mid-stream
        "stall": Script(stall_after=2),  # nothing more: the idle deadline ends the attempt
    },
    "structured": {
        "after 1 chunk": Script(cut_after=1),
        "inside a JSON string": Script(cut_at=JSON.index("brown") + 3),
        "inside a number": Script(cut_at=JSON.index("0.875") + 3),
        "between keys": Script(cut_at=JSON.index(',"mood"') + 1),
    },
}
RESTATES = itertools.cycle(["none", "word", "all"])  # how an instructed backup begins its answer, in turn


def config(directory: Path, adapter: Adapter, primary_url: str, backup_url: str) -> Path:
    options = f", {adapter.options}" if adapter.options else ""
    # No retry on the primary (its failure goes to the backup); a short idle deadline for the stall.
    primary = "{provider: primary, model: model-a, retries: 0, timeouts: {idle: 0.3}}"
    return write_config(
        directory,
        f"""
providers:
  primary: {{type: {adapter.type}, api_key: k, base_url: "{primary_url}", breaker: {{failures: 1000}}}}
  backup: {{type: {adapter.type}, api_key: k, base_url: "{backup_url}"{options}}}
workflows:
  text:
    chain: [{primary}, {{provider: backup, model: model-b}}]
  structured:
    chain: [{primary}, {{provider: backup, model: model-b}}]
    schema: {orjson.dumps(SCHEMA).decode()}
""",
    )


@pytest.mark.parametrize("name", list(ADAPTERS))
async def test_every_cut_continues_exactly(start_gateway: StartGateway, tmp_path: Path, name: str) -> None:
    adapter = ADAPTERS[name]
    async with FakeProvider(adapter.fake, text=TEXT) as primary, FakeProvider(adapter.fake, text=TEXT) as backup:
        gw = await start_gateway(config_path=config(tmp_path, adapter, primary.base_url, backup.base_url))
        async with gw.client() as client:
            first = True
            for kind, cuts in CUTS.items():
                answer = JSON if kind == "structured" else TEXT
                for where, cut in cuts.items():
                    primary.script(dataclasses.replace(cut, text=answer))
                    if adapter.refuses_prefill and first:
                        backup.script(Script(status=400, body=REFUSED))
                    backup.script(Script(text=answer, restate=next(RESTATES)))
                    events = await run(client, kind)
                    methods = adapter.methods if first or not adapter.refuses_prefill else ("instruction",)
                    case = f"{name}, {kind}, cut {where}"
                    check(events, kind, methods, case)
                    # What the backup was asked, on the wire: the method, and the answer so far (a prefill without
                    # its trailing whitespace).
                    method, so_far = backup.protocol.continuing(backup.requests[-1].body) or ("none", "")
                    splice = [e for e in events if e["type"] == "splice"][-1]
                    delivered = "".join(e["text"] for e in events if e["type"] == "delta" and e["seq"] < splice["seq"])
                    assert method == methods[-1], case
                    assert so_far == (delivered.rstrip() if method == "prefill" else delivered), (case, so_far)
                    first = False


async def run(client: Any, workflow: str) -> list[dict[str, Any]]:
    accepted = (await client.post("/v1/ai/async", json=chat_body("tell me", workflow=workflow))).json()
    async with asyncio.timeout(15), client.stream("GET", accepted["events_url"]) as response:
        assert response.status_code == 200
        return await sse_events(response.aiter_lines())


def check(events: list[dict[str, Any]], kind: str, methods: tuple[str, ...], case: str) -> None:
    kinds = [e["type"] for e in events]
    terminal = [e for e in events if e["type"] in ("response", "error")]
    assert len(terminal) == 1 and events[-1] is terminal[0], (case, kinds)
    assert terminal[0]["type"] == "response", (case, terminal[0])
    assert "reset" not in kinds, (case, kinds)
    splices = [e for e in events if e["type"] == "splice"]
    assert tuple(s["method"] for s in splices) == methods, (case, splices)
    streamed = "".join(e["text"] for e in events if e["type"] == "delta")
    for splice in splices:  # each continues exactly where the text stood when it came
        before = "".join(e["text"] for e in events if e["type"] == "delta" and e["seq"] < splice["seq"])
        assert splice["at_chars"] == len(before), (case, splice)
    meta = terminal[0]["meta"]
    assert meta["continued"] is True and meta["provider"] == "backup", case
    if kind == "text":
        assert streamed == TEXT, (case, streamed)  # every character once: nothing lost or doubled at the seam
        assert terminal[0]["data"]["content"] == TEXT
        return
    assert streamed == JSON, (case, streamed)
    assert terminal[0]["data"] == DATA, case  # the spliced whole, validated against the schema
    replies = [e["data"].get("reply", "") for e in events if e["type"] == "partial"]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(replies)), (case, replies)

"""Continuation under random cuts: how often an answer cut mid-stream is continued (by prefill, by instruction) or
falls back to `reset`, and whether every seam is exact (docs/providers.md, "Continuation").

    .venv/bin/python bench/continuation.py [--cuts 60] [--seed 7] [--json bench/results/continuation.json]

For each provider type (and method) a gateway (`sluice serve`, embedded default) runs a two-entry chain on two fakes of
that type (`sluice.testing`) that know the same answer. Each request cuts the primary at a random character of a
random answer — plain text, text with accents and an emoji, or a structured object — and the backup continues it the
way a model might (restating nothing, the word it was cut in, or everything). A cut counts as exact when the text the
channel delivered equals the answer (nothing lost or doubled at the seam), a structured answer also validates to the
object, and the channel had one terminal event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gateway import MASTER_KEY, running_gateway

from sluice.testing import FakeProvider, Script

TEXTS = [
    "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun by the river.",
    "Café au lait, naïve résumé, façade — déjà vu 😀 and a few more words to go on with after that.",
]
DATA = {"reply": "Streams can be cut anywhere; the answer should still come out whole.", "score": 0.875, "mood": "sad"}
SCHEMA = {"reply": "string", "score": "number", "mood": "happy | sad"}
REFUSED = {
    "type": "error",
    "error": {"type": "invalid_request_error", "message": "This model does not support assistant message prefill."},
}
# name: (provider type, fake protocol, extra backup options, whether the backup refuses a prefill first)
SETUPS: dict[str, tuple[str, str, str, bool]] = {
    "openai": ("openai", "openai", "", False),
    "openai-compatible": ("openai-compatible", "openai", "", False),
    "openai-compatible, prefill": ("openai-compatible", "openai", ", continuation: prefill", False),
    "anthropic": ("anthropic", "anthropic", "", False),
    "anthropic 4.6+ (prefill refused)": ("anthropic", "anthropic", "", True),
    "gemini": ("gemini", "gemini", "", False),
    "ollama": ("ollama", "ollama", "", False),
}


def config(kind: str, primary: str, backup: str, options: str) -> str:
    entries = "[{provider: primary, model: model-a}, {provider: backup, model: model-b}]"
    return (
        f'providers:\n  primary: {{type: {kind}, api_key: k, base_url: "{primary}", breaker: {{failures: 100000}}}}\n'
        f'  backup: {{type: {kind}, api_key: k, base_url: "{backup}"{options}}}\n'
        f"workflows:\n  text: {{chain: {entries}}}\n"
        f"  structured: {{chain: {entries}, schema: {json.dumps(SCHEMA)}}}\n"
    )


async def one_cut(client: httpx.AsyncClient, primary: FakeProvider, backup: FakeProvider, rng: random.Random,
                  refuses: bool) -> tuple[str, bool]:  # fmt: skip
    """(what happened: prefill | instruction | reset | error, exact) for one randomly cut answer."""
    structured = rng.random() < 0.4
    answer = json.dumps(DATA, separators=(",", ":")) if structured else rng.choice(TEXTS)
    primary.script(Script(text=answer, cut_at=rng.randint(1, len(answer) - 2)))
    if refuses:
        backup.script(Script(status=400, body=REFUSED))
    backup.script(Script(text=answer, restate=rng.choice(["none", "word", "all"])))
    body = {"workflow": "structured" if structured else "text", "messages": [{"role": "user", "content": "go"}]}
    accepted = (await client.post("/v1/ai/async", json=body)).json()
    events = []
    async with client.stream("GET", accepted["events_url"]) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [event["type"] for event in events]
    terminal = [event for event in events if event["type"] in ("response", "error")]
    streamed = "".join(event["text"] for event in events if event["type"] == "delta")
    splices = [event["method"] for event in events if event["type"] == "splice"]
    outcome = "reset" if "reset" in kinds else (splices[-1] if splices else "none")
    if not terminal or terminal[-1]["type"] == "error":
        return "error", False
    data = terminal[-1]["data"]
    exact = len(terminal) == 1 and streamed == answer and (data == DATA if structured else data["content"] == answer)
    return outcome, exact


async def measure(name: str, cuts: int, rng: random.Random) -> dict[str, Any]:
    kind, protocol, options, refuses = SETUPS[name]
    async with FakeProvider(protocol) as primary, FakeProvider(protocol) as backup:
        with running_gateway(config(kind, primary.base_url, backup.base_url, options)) as url:
            headers = {"Authorization": f"Bearer {MASTER_KEY}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
                results = [await one_cut(client, primary, backup, rng, refuses and i == 0) for i in range(cuts)]
    outcomes = Counter(outcome for outcome, _ in results)
    return {
        "cuts": cuts,
        "prefill": outcomes["prefill"],
        "instruction": outcomes["instruction"],
        "reset": outcomes["reset"],
        "failed": outcomes["error"] + outcomes["none"],
        "exact": sum(exact for _, exact in results),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    report = {name: await measure(name, args.cuts, rng) for name in SETUPS}
    print(f"{'provider type':34} {'cuts':>5} {'prefill':>8} {'instr.':>7} {'reset':>6} {'failed':>7} {'exact':>6}")
    for name, row in report.items():
        print(f"{name:34} {row['cuts']:5d} {row['prefill']:8d} {row['instruction']:7d} {row['reset']:6d} "
              f"{row['failed']:7d} {row['exact']:6d}")  # fmt: skip
    total = {key: sum(row[key] for row in report.values()) for key in next(iter(report.values()))}
    continued = total["prefill"] + total["instruction"]
    print(
        f"all: {total['cuts']} cuts, continued {continued} ({100 * continued / total['cuts']:.1f} %: prefill "
        f"{total['prefill']}, instruction {total['instruction']}), reset {total['reset']}, failed {total['failed']}; "
        f"exact seams {total['exact']} ({100 * total['exact'] / total['cuts']:.1f} %)"
    )
    return {"by_provider": report, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuts", type=int, default=60, help="random cuts per provider type")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "continuation.json")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

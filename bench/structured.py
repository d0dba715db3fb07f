"""Structured-output costs: partial-event rate for a fast stream, and validation cost per response.

    .venv/bin/python bench/structured.py [--reply-chars 2000] [--runs 2000]

Everything runs in-process on the demo schema (the seed article's chatbot schema); no network, no gateway.
Part 1 streams a document in 4-character tokens through `PartialStream` at several token rates on a simulated clock
(so the figures do not depend on machine load), then unpaced on the real clock. Part 2 times `finalize` on a valid
answer, on one that needs repair, and on one that fails validation, and compares validators when they are installed.
"""

from __future__ import annotations

import argparse
import json
import time
import timeit
from collections.abc import Callable
from typing import Any

from sluice.structured import PartialStream, SchemaViolation, finalize
from sluice.structured.validate import validate, validators
from sluice.workflows.loader import DEMO_SCHEMA
from sluice.workflows.shorthand import compile_schema

SCHEMA = compile_schema(DEMO_SCHEMA)


def document(reply_chars: int) -> dict[str, Any]:
    words = "the sluice gate opens and the water runs on towards the mill " * (reply_chars // 60 + 1)
    return {
        "reply": words[:reply_chars],
        "summary": "A question about sluices and mills.",
        "sentiment": "neutral",
        "confidence": 0.82,
        "topics": ["sluice", "mill", "water"],
        "action_items": [{"task": "Check the gate", "priority": "high"}, {"task": "Log the level", "priority": "low"}],
    }


def tokens_of(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_stats(tokens: list[str], rate: float | None, interval: float) -> dict[str, float]:
    """Feed tokens at `rate` tokens/s on a simulated clock (None: as fast as possible on the real clock)."""
    simulated = [0.0]
    clock: Callable[[], float] = (lambda: simulated[0]) if rate else time.monotonic
    stream = PartialStream(SCHEMA, interval=interval, clock=clock)
    events = payload = 0
    started = time.perf_counter()
    for token in tokens:
        if rate:
            simulated[0] += 1 / rate
        update = stream.feed(token)
        if update is not None:
            events += 1
            payload += len(json.dumps(update))
    if (update := stream.flush()) is not None:
        events += 1
        payload += len(json.dumps(update))
    cpu = time.perf_counter() - started
    duration = len(tokens) / rate if rate else cpu
    return {
        "events": events,
        "per_s": events / duration,
        "cpu_us_per_token": cpu / len(tokens) * 1e6,
        "kb_sent": payload / 1024,
        "duration_s": duration,
    }


def part_one(reply_chars: int) -> None:
    text = json.dumps(document(reply_chars))
    tokens = tokens_of(text)
    print(f"## Partial events — demo schema, reply {reply_chars} chars, {len(text)} bytes, {len(tokens)} tokens")
    print(f"{'stream':34} {'interval':>8} {'events':>7} {'events/s':>9} {'µs/token':>9} {'KB sent':>8}")
    for label, rate in (
        ("50 tok/s (typical model)", 50),
        ("200 tok/s (fast model)", 200),
        ("1000 tok/s (burst)", 1000),
        ("unpaced (real clock)", None),
    ):
        for interval in (0.0, 0.040):
            s = stream_stats(tokens, rate, interval)
            print(
                f"{label:34} {interval * 1000:>6.0f}ms {s['events']:>7.0f} {s['per_s']:>9.1f} "
                f"{s['cpu_us_per_token']:>9.1f} {s['kb_sent']:>8.1f}"
            )


def per_call_us(fn: Callable[[], Any], runs: int) -> float:
    return min(timeit.repeat(fn, number=runs, repeat=3)) / runs * 1e6


def part_two(reply_chars: int, runs: int) -> None:
    value = document(reply_chars)
    text = json.dumps(value)
    fenced = f"Sure! Here it is:\n```json\n{text[:-1]},\n```"
    wrong = text.replace('"neutral"', '"calm"')

    def violation() -> None:
        try:
            finalize(SCHEMA, wrong)
        except SchemaViolation:
            pass

    started = time.perf_counter()
    validators._by_id.clear()
    validators._by_hash.clear()
    validators.get(SCHEMA)
    compile_ms = (time.perf_counter() - started) * 1000
    print(f"\n## Validation cost per response — {len(text)} bytes, {runs} runs (best of 3)")
    print(f"compile (once per schema, cached)        {compile_ms:8.3f} ms")
    print(f"validate(object)  jsonschema-rs           {per_call_us(lambda: validate(SCHEMA, value), runs):8.2f} µs")
    print(f"finalize(text)    parse + validate        {per_call_us(lambda: finalize(SCHEMA, text), runs):8.2f} µs")
    print(f"finalize(text)    fence + comma repaired  {per_call_us(lambda: finalize(SCHEMA, fenced), runs):8.2f} µs")
    print(f"finalize(text)    enum violation raised   {per_call_us(violation, runs):8.2f} µs")
    try:
        import fastjsonschema

        check = fastjsonschema.compile(SCHEMA)
        print(f"(compare) fastjsonschema validate        {per_call_us(lambda: check(value), runs):8.2f} µs")
    except ImportError:
        pass
    try:
        import jsonschema

        slow = jsonschema.Draft202012Validator(SCHEMA)
        cost = per_call_us(lambda: slow.validate(value), runs // 10)
        print(f"(compare) jsonschema validate            {cost:8.2f} µs")
    except ImportError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reply-chars", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    part_one(args.reply_chars)
    part_two(args.reply_chars, args.runs)


if __name__ == "__main__":
    main()

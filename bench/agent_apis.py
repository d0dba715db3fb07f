"""Scenario 8: the agent APIs' streaming overhead beside Chat Completions, same upstream, same run.

    .venv/bin/python bench/agent_apis.py [--concurrency 1 64] [--repeats 3] [--seconds 3] [--chunks 20]
                                         [--json bench/results/agent_apis.json]

The same client (bench/loadgen.py) asks the same question, streamed, of the mock upstream directly (Chat
Completions) and of Sluice through each API it speaks: `/v1/chat/completions`, `/v1/messages` (Anthropic Messages)
and `/v1/responses` (OpenAI Responses). Sluice's workflow `bench` has the mock as its only provider (an
`openai-compatible` server), so the Messages and Responses rows also pay for translating the answer into their
event formats. For each concurrency the targets take turns, `repeats` times; the table shows medians of the
repeats: latency p50/p99, the overhead over direct, time to the first text (TTFT: the first chunk carrying text)
and requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import WORKFLOW, mock_upstream, sluice_gateway
from loadgen import chat_body, install_uvloop, run_load
from overhead import overhead, print_table, summarise

QUESTION = "How fast is this gateway?"
MAX_TOKENS = 1024  # the Messages API needs it; the mock's answer is shorter


def body_for(api: str, model: str) -> dict[str, Any]:
    """The same streamed question in each API's request shape."""
    if api == "messages":
        return {
            "model": model,
            "max_tokens": MAX_TOKENS,
            "stream": True,
            "messages": [{"role": "user", "content": QUESTION}],
        }
    if api == "responses":
        return {"model": model, "input": QUESTION, "stream": True}
    return chat_body(model, True)


async def measure(
    targets: dict[str, tuple[str, str | None, str]],
    *,
    concurrency: list[int],
    repeats: int,
    seconds: float,
    requests: int,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for level in concurrency:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(repeats):
            for name, (url, key, api) in targets.items():  # turns, so drift in the machine's load hits every target
                model = "mock" if name == "direct" else WORKFLOW
                runs[name].append(
                    await run_load(
                        url,
                        body_for(api, model),
                        concurrency=level,
                        requests=max(requests, level * 4),
                        duration=seconds,
                        key=key,
                        warmup=2,
                    )
                )
        row = {name: summarise(found) for name, found in runs.items()}
        for name in targets:
            if name != "direct":
                row[name]["overhead"] = overhead(row["direct"], row[name])
        results[str(level)] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="upper bound of one run")
    parser.add_argument("--requests", type=int, default=3000, help="upper bound of one run")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per streamed reply")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "agent_apis.json")
    args = parser.parse_args()
    install_uvloop()
    report: dict[str, Any] = {"chunks": args.chunks, "repeats": args.repeats, "seconds": args.seconds}
    with ExitStack() as stack:
        upstream = stack.enter_context(mock_upstream(chunks=args.chunks))
        sluice_url, key = stack.enter_context(sluice_gateway(upstream))
        targets: dict[str, tuple[str, str | None, str]] = {
            "direct": (f"{upstream}/chat/completions", None, "chat"),
            "chat": (f"{sluice_url}/v1/chat/completions", key, "chat"),
            "messages": (f"{sluice_url}/v1/messages", key, "messages"),
            "responses": (f"{sluice_url}/v1/responses", key, "responses"),
        }
        results = asyncio.run(
            measure(
                targets,
                concurrency=args.concurrency,
                repeats=args.repeats,
                seconds=args.seconds,
                requests=args.requests,
            )
        )
        report["stream"] = results
        print_table(
            f"streaming through each API, {args.chunks} chunks, medians of {args.repeats} runs "
            "(+ = overhead over direct)",
            results,
            True,
        )
        for level, row in results.items():
            chat = row["chat"]["overhead"]
            for api in ("messages", "responses"):
                mine = row[api]["overhead"]
                print(
                    f"{level:>5} {api}/chat: +p50 {_ratio(mine['p50_ms'], chat['p50_ms'])}  "
                    f"req/s {_ratio(row[api]['rps'], row['chat']['rps'])}"
                )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:5.2f}x" if a is not None and b else "    -"


if __name__ == "__main__":
    main()

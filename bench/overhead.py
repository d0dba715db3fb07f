"""Scenarios 1, 2 and 5: what a gateway adds to an OpenAI-shaped call, direct vs Sluice (vs LiteLLM), same run;
and, with `--mode tools`, scenario 6: the same streamed call with `tools`, answered with a tool call whose arguments
stream in `--chunks` pieces (the report's key is then `tools`).

    .venv/bin/python bench/overhead.py [--concurrency 1 16 64 256] [--repeats 3] [--seconds 3] [--litellm]
                                       [--mode sync|stream|both|tools] [--json bench/results/overhead.json]

The same client (bench/loadgen.py) sends the same `POST /v1/chat/completions` to: the mock upstream directly, Sluice
(a workflow `bench` whose only provider is the mock, called as `model: bench`) and, with `--litellm`, the LiteLLM proxy
(one worker, model `bench` = the mock). For each concurrency the targets take turns, `repeats` times, and the table
shows medians of the repeats: latency p50/p99, the overhead (through - direct, p50 and p99), requests/s, and the
ratios Sluice/LiteLLM. Streaming adds time to the first content chunk (TTFT; with tools, the first piece of the
call's arguments). Each run is bounded by `--requests` and `--seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import LITELLM_KEY, WORKFLOW, litellm_proxy, mock_upstream, sluice_gateway
from loadgen import chat_body, install_uvloop, run_load


def _median(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for part in path:
            value = value[part]
        if value is not None:
            values.append(value)
    return round(statistics.median(values), 3) if values else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "p50_ms": _median(runs, "latency_ms", "p50"),
        "p90_ms": _median(runs, "latency_ms", "p90"),
        "p99_ms": _median(runs, "latency_ms", "p99"),
        "rps": _median(runs, "rps"),
        "ttft_p50_ms": _median(runs, "ttft_ms", "p50"),
        "ttft_p99_ms": _median(runs, "ttft_ms", "p99"),
        "errors": sum(run["errors"] for run in runs),
        "error_examples": runs[-1]["error_examples"],
        "runs": runs,
    }


async def measure(
    targets: dict[str, tuple[str, str | None]],
    *,
    stream: bool,
    concurrency: list[int],
    repeats: int,
    seconds: float,
    requests: int,
    rate: float | None = None,
    tools: bool = False,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for level in concurrency:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(repeats):
            for name, (url, key) in targets.items():  # turns, so drift in the machine's load hits every target
                model = "mock" if name == "direct" else WORKFLOW
                runs[name].append(
                    await run_load(
                        url,
                        chat_body(model, stream, tools),
                        concurrency=level,
                        requests=max(requests, level * 4),
                        duration=seconds,
                        key=key,
                        warmup=2,
                        rate=rate,
                    )
                )
        results[str(level)] = {name: summarise(found) for name, found in runs.items()}
        for name in targets:
            if name != "direct":
                results[str(level)][name]["overhead"] = overhead(
                    results[str(level)]["direct"], results[str(level)][name]
                )
    return results


def answers_with_a_tool_call(url: str, key: str | None, model: str) -> bool:
    """One streamed request with tools: does the answer stream a tool call? (A gateway that drops the tools answers
    text instead, and its figures would not be about tools at all.)"""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.post(url, json=chat_body(model, True, tools=True), headers=headers, timeout=30)
    return answer.status_code == 200 and '"tool_calls"' in answer.text and '"get_weather"' in answer.text


def overhead(direct: dict[str, Any], through: dict[str, Any]) -> dict[str, float | None]:
    def minus(name: str) -> float | None:
        if direct.get(name) is None or through.get(name) is None:
            return None
        return round(through[name] - direct[name], 3)

    return {"p50_ms": minus("p50_ms"), "p99_ms": minus("p99_ms"), "ttft_p50_ms": minus("ttft_p50_ms")}


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:7.1f}x" if a and b else "      -"


def print_table(title: str, results: dict[str, Any], stream: bool) -> None:
    print(f"\n{title}")
    head = (
        f"{'conc':>5} {'target':8} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} "
        + (f"{'TTFT50':>8} {'+TTFT50':>8} " if stream else "")
        + f"{'req/s':>9} {'err':>4}"
    )
    print(head)
    for level, row in results.items():
        for name, values in row.items():
            extra = values.get("overhead", {})
            cells = [
                f"{level:>5} {name:8} {_f(values['p50_ms'])} {_f(values['p99_ms'])}",
                f"{_f(extra.get('p50_ms'))} {_f(extra.get('p99_ms'))}",
            ]
            if stream:
                cells.append(f"{_f(values['ttft_p50_ms'])} {_f(extra.get('ttft_p50_ms'))}")
            cells.append(f"{values['rps'] or 0:9.1f} {values['errors']:4d}")
            print(" ".join(cells))
        if "litellm" in row:
            sluice, litellm = row["sluice"], row["litellm"]
            print(
                f"{'':5} sluice/litellm: req/s {ratio(sluice['rps'], litellm['rps'])}   "
                f"litellm/sluice: +p50 {ratio(litellm['overhead']['p50_ms'], sluice['overhead']['p50_ms'])}  "
                f"+p99 {ratio(litellm['overhead']['p99_ms'], sluice['overhead']['p99_ms'])}"
            )


def _f(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else f"{'-':>8}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="upper bound of one run")
    parser.add_argument("--requests", type=int, default=3000, help="upper bound of one run")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per streamed reply")
    parser.add_argument("--litellm", action="store_true", help="also measure the LiteLLM proxy (scenario 5)")
    parser.add_argument("--paced-rate", type=float, default=200.0, help="requests/s of the paced run; 0: none")
    parser.add_argument("--paced-concurrency", type=int, default=64)
    parser.add_argument(
        "--mode", choices=["sync", "stream", "both", "tools"], default="both", help="tools: streamed, with tools"
    )
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "overhead.json")
    args = parser.parse_args()
    install_uvloop()
    tools = args.mode == "tools"
    modes = [False, True] if args.mode == "both" else [args.mode in ("stream", "tools")]
    report: dict[str, Any] = {"chunks": args.chunks, "repeats": args.repeats, "seconds": args.seconds}
    with ExitStack() as stack:
        upstream = stack.enter_context(mock_upstream(chunks=args.chunks))
        sluice_url, key = stack.enter_context(sluice_gateway(upstream))
        targets: dict[str, tuple[str, str | None]] = {
            "direct": (f"{upstream}/chat/completions", None),
            "sluice": (f"{sluice_url}/v1/chat/completions", key),
        }
        if args.litellm:
            litellm_url = stack.enter_context(litellm_proxy(upstream))
            targets["litellm"] = (f"{litellm_url}/v1/chat/completions", LITELLM_KEY)
        if tools:
            verified = {
                name: answers_with_a_tool_call(url, key, "mock" if name == "direct" else WORKFLOW)
                for name, (url, key) in targets.items()
            }
            report["tools_verified"] = verified
            for name, ok in verified.items():
                if not ok:
                    print(f"! {name}: the answer has no tool call (the tools were not passed on?)", file=sys.stderr)
        for stream in modes:
            name = "tools" if tools else "stream" if stream else "sync"
            results = asyncio.run(
                measure(
                    targets,
                    stream=stream,
                    concurrency=args.concurrency,
                    repeats=args.repeats,
                    seconds=args.seconds,
                    requests=args.requests,
                    tools=tools,
                )
            )
            report[name] = results
            how = "streaming with tools" if tools else "streaming" if stream else "non-streaming"
            print_table(
                f"{how} /v1/chat/completions, {args.chunks} {'argument pieces' if tools else 'chunks'}, "
                f"medians of {args.repeats} runs (+ = overhead over direct)",
                results,
                stream,
            )
            if args.paced_rate:
                # Closed-loop latency at 64 connections is queueing (64 / throughput); paced below saturation it
                # is what one request costs. LiteLLM is left out: it saturates below this rate.
                paced = {k: v for k, v in targets.items() if k != "litellm"}
                results = asyncio.run(
                    measure(
                        paced,
                        stream=stream,
                        concurrency=[args.paced_concurrency],
                        repeats=args.repeats,
                        seconds=args.seconds,
                        requests=args.requests,
                        rate=args.paced_rate,
                        tools=tools,
                    )
                )
                report[f"{name}_paced"] = {"rate": args.paced_rate, **results}
                print_table(
                    f"  paced: {args.paced_rate:g} requests/s over {args.paced_concurrency} connections "
                    "(open loop, below saturation)",
                    results,
                    stream,
                )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

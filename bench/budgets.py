"""Scenario 9: what a budget and rate limits cost per request — the same non-streamed completion with a key that has
a budget, rpm and tpm, and with a key that has none, same gateway, same run.

    .venv/bin/python bench/budgets.py [--concurrency 1 64] [--repeats 3] [--seconds 3]
                                      [--json bench/results/budgets.json]

One gateway on the embedded default (SQLite, in-process broker), its `bench` workflow on the mock upstream priced
by a `prices` entry (so both keys' requests are priced alike). The limited key's limits are far above the load: every
request is checked, reserved and settled, none is refused. For each concurrency the two keys take turns, `repeats`
times; the table shows medians: latency p50/p99, requests/s, the gateway process's CPU time per request, and the
difference the limits make (limited - unlimited). The issue's target: +p50 ≤ 0.1 ms at concurrency 1.
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
from _gateway import MASTER_KEY, running_gateway
from _servers import WORKFLOW, mock_upstream, pid_listening, sluice_config
from cpu_per_request import cpu_seconds
from loadgen import chat_body, install_uvloop, run_load
from overhead import summarise

LIMITS = {"budget_usd": 1e9, "budget_period": "monthly", "rpm": 1_000_000_000, "tpm": 1_000_000_000_000}


def priced_config(upstream: str) -> str:
    return sluice_config(upstream).replace("base_url:", "prices: {mock: {input: 0.15, output: 0.6}}, base_url:", 1)


def new_key(url: str, name: str, **limits: Any) -> str:
    """A key with `limits`; on a gateway without them (bench/compare's base before #19), a key that is refused, so
    the scenario shows as one the base cannot run."""
    created = httpx.post(
        f"{url}/v1/admin/keys", json={"name": name, **limits}, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    if created.status_code == 422 and limits:
        return "sk_sluice_limits-not-supported-by-this-gateway"
    created.raise_for_status()
    return str(created.json()["key"])


async def measure(
    url: str, pid: int, keys: dict[str, str], *, concurrency: list[int], repeats: int, seconds: float, requests: int
) -> dict[str, Any]:
    body = chat_body(WORKFLOW, False)
    body["max_tokens"] = 256  # a worst case to reserve
    results: dict[str, Any] = {}
    for level in concurrency:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in keys}
        cpu: dict[str, list[float]] = {name: [] for name in keys}
        for _ in range(repeats):
            for name, key in keys.items():  # turns, so drift in the machine's load hits both
                before = cpu_seconds(pid)
                found = await run_load(
                    f"{url}/v1/chat/completions",
                    body,
                    concurrency=level,
                    requests=max(requests, level * 4),
                    duration=seconds,
                    key=key,
                    warmup=2,
                )
                cpu[name].append((cpu_seconds(pid) - before) * 1e6 / max(found["ok"] + 2, 1))
                runs[name].append(found)
        row = {
            name: {**summarise(found), "cpu_us": round(statistics.median(cpu[name]))} for name, found in runs.items()
        }
        row["limited"]["added"] = {
            field: round(row["limited"][field] - row["unlimited"][field], 3)
            for field in ("p50_ms", "p99_ms", "cpu_us")
            if row["limited"].get(field) is not None and row["unlimited"].get(field) is not None
        }
        results[str(level)] = row
    return results


def print_results(results: dict[str, Any], repeats: int) -> None:
    """The table; the JSON has it under `sync` (level → key → figures), as bench/compare reads it."""
    print(f"\nnon-streamed /v1/chat/completions, a key with a budget + rpm + tpm vs one without, medians of {repeats}")
    print(
        f"{'conc':>5} {'key':10} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'CPU µs':>8} {'+p50 ms':>8} {'+CPU µs':>8}"
    )
    for level, row in results.items():
        for name in ("unlimited", "limited"):
            found = row[name]
            added = found.get("added", {})
            print(
                f"{level:>5} {name:10} {found['p50_ms']:>8} {found['p99_ms']:>8} {found['rps']:>9} "
                f"{found['cpu_us']:>8} {added.get('p50_ms', ''):>8} {added.get('cpu_us', ''):>8}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="upper bound of one run")
    parser.add_argument("--requests", type=int, default=3000, help="upper bound of one run")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "budgets.json")
    args = parser.parse_args()
    install_uvloop()
    with ExitStack() as stack:
        upstream = stack.enter_context(mock_upstream())
        url = stack.enter_context(running_gateway(priced_config(upstream)))
        keys = {"unlimited": new_key(url, "unlimited"), "limited": new_key(url, "limited", **LIMITS)}
        results = asyncio.run(
            measure(
                url,
                pid_listening(url),
                keys,
                concurrency=args.concurrency,
                repeats=args.repeats,
                seconds=args.seconds,
                requests=args.requests,
            )
        )
    print_results(results, args.repeats)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"repeats": args.repeats, "seconds": args.seconds, "sync": results}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""Scenario 7: what Sluice adds to `POST /v1/embeddings`, direct vs through Sluice, same run.

    .venv/bin/python bench/embeddings.py [--concurrency 1 64] [--repeats 3] [--seconds 3] [--inputs 8]
                                         [--dimensions 1536] [--encoding base64 float]
                                         [--json bench/results/embeddings.json]

The same client (bench/loadgen.py) sends the same embeddings request — `--inputs` short texts, answered with vectors
of `--dimensions` floats — to the mock upstream directly and to Sluice (the workflow `bench`, whose only provider is
the mock as an `openai-compatible` server). `base64` is what the `openai` package asks for unless told otherwise;
`float` is the JSON array of numbers. For each encoding and concurrency the two targets take turns, `repeats` times;
the table shows medians of the repeats: latency p50/p99, the overhead (through - direct) and requests/s.
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
from loadgen import install_uvloop, run_load
from overhead import overhead, print_table, summarise


def embeddings_body(model: str, inputs: int, dimensions: int, encoding: str) -> dict[str, Any]:
    texts = [f"document {i}: the sluice gate opens and the water runs on towards the mill" for i in range(inputs)]
    return {"model": model, "input": texts, "dimensions": dimensions, "encoding_format": encoding}


async def measure(
    targets: dict[str, tuple[str, str | None]],
    *,
    encoding: str,
    inputs: int,
    dimensions: int,
    concurrency: list[int],
    repeats: int,
    seconds: float,
    requests: int,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for level in concurrency:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(repeats):
            for name, (url, key) in targets.items():  # turns, so drift in the machine's load hits both
                model = "mock" if name == "direct" else WORKFLOW
                runs[name].append(
                    await run_load(
                        url,
                        embeddings_body(model, inputs, dimensions, encoding),
                        concurrency=level,
                        requests=max(requests, level * 4),
                        duration=seconds,
                        key=key,
                        warmup=2,
                    )
                )
        row = {name: summarise(found) for name, found in runs.items()}
        row["sluice"]["overhead"] = overhead(row["direct"], row["sluice"])
        results[str(level)] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="upper bound of one run")
    parser.add_argument("--requests", type=int, default=3000, help="upper bound of one run")
    parser.add_argument("--inputs", type=int, default=8, help="texts per request")
    parser.add_argument("--dimensions", type=int, default=1536)
    parser.add_argument("--encoding", nargs="+", choices=["base64", "float"], default=["base64", "float"])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "embeddings.json")
    args = parser.parse_args()
    install_uvloop()
    report: dict[str, Any] = {
        "inputs": args.inputs,
        "dimensions": args.dimensions,
        "repeats": args.repeats,
        "seconds": args.seconds,
    }
    with ExitStack() as stack:
        upstream = stack.enter_context(mock_upstream())
        sluice_url, key = stack.enter_context(sluice_gateway(upstream))
        targets: dict[str, tuple[str, str | None]] = {
            "direct": (f"{upstream}/embeddings", None),
            "sluice": (f"{sluice_url}/v1/embeddings", key),
        }
        for encoding in args.encoding:
            results = asyncio.run(
                measure(
                    targets,
                    encoding=encoding,
                    inputs=args.inputs,
                    dimensions=args.dimensions,
                    concurrency=args.concurrency,
                    repeats=args.repeats,
                    seconds=args.seconds,
                    requests=args.requests,
                )
            )
            report[encoding] = results
            print_table(
                f"/v1/embeddings, {args.inputs} inputs x {args.dimensions} dimensions, encoding_format {encoding}, "
                f"medians of {args.repeats} runs (+ = overhead over direct)",
                results,
                False,
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""The gateway's own CPU time per request: a figure the machine's other work hardly moves.

    .venv/bin/python bench/cpu_per_request.py [--stream] [--concurrency 64] [--requests 6000] [--runs 3]

Latency and requests/s on a 2-core machine move with everything else that runs (the client, the mock, other
developers' work); the CPU time the gateway process itself spends per request does not, much. This starts the
gateway on the mock (as bench/overhead.py does), sends warm-up requests, then `--requests` `/v1/chat/completions` at
`--concurrency`, and divides the gateway process's user+system time (`/proc/<pid>/stat`) by the requests answered.

To compare two revisions, run it from an empty directory with `PYTHONPATH=<a checkout of each>` (bench/compare.py
says why), alternating: `for rev in a b a b; do (cd /tmp/empty && PYTHONPATH=/tmp/$rev python …); done`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import WORKFLOW, mock_upstream, pid_listening, sluice_gateway
from loadgen import chat_body, install_uvloop, run_load


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    install_uvloop()
    body = chat_body(WORKFLOW, args.stream)
    per_request: list[float] = []
    with mock_upstream(chunks=20) as upstream, sluice_gateway(upstream) as (url, key):
        pid = pid_listening(url)
        target = f"{url}/v1/chat/completions"
        load = dict(concurrency=args.concurrency, duration=120.0, key=key)
        asyncio.run(run_load(target, body, requests=args.requests // 3, warmup=2, **load))
        for _ in range(args.runs):
            before = cpu_seconds(pid)
            result = asyncio.run(run_load(target, body, requests=args.requests, **load))
            per_request.append((cpu_seconds(pid) - before) * 1e6 / max(result["ok"], 1))
            print(f"gateway CPU {per_request[-1]:.0f} µs/request, {result['rps']} req/s, {result['errors']} errors")
    print(f"median {statistics.median(per_request):.0f} µs/request ({'streamed' if args.stream else 'whole'})")


if __name__ == "__main__":
    main()

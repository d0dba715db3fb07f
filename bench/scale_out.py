"""Requests/s of one `sluice serve` instance vs two on the same Redis and PostgreSQL, in the same run.

    .venv/bin/python bench/scale_out.py [--seconds 10] [--concurrency 32] [--json bench/results/scale_out.json]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--redis-url redis://127.0.0.1:6379/0]

Each request is a full `POST /v1/ai` (synchronous): store insert, job on the Redis stream, a worker runs the
simulated provider with no pacing (~100 deltas + partials appended to the channel log), the API instance follows
the log until the terminal event and answers. Clients send round-robin to the instances. Every configuration gets
its own fresh database and Redis key prefix (dropped afterwards). Also reported: CPU seconds used by the instances,
by this load generator, and by the whole machine (from /proc), which tells what limits the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

MASTER_KEY = "bench-master-key-0123456789"
CONFIG = "providers:\n  simulated: {type: simulated, pace_ms: 0}\n"
BODY = {"workflow": "demo", "messages": [{"role": "user", "content": "How well does this gateway scale out?"}]}
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICKS


async def fresh_backends(database_url: str, redis_url: str) -> tuple[str, str, str]:
    import asyncpg

    name = f"sluice_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    prefix = f"sluice-bench-{uuid.uuid4().hex[:10]}:"
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}")), f"{redis_url}?key_prefix={prefix}", name


async def drop_backends(database_url: str, redis_url: str, name: str, prefix_url: str) -> None:
    import asyncpg
    import redis.asyncio as aioredis

    admin = await asyncpg.connect(database_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()
    client = aioredis.Redis.from_url(redis_url)
    prefix = prefix_url.split("key_prefix=")[1]
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


def start(
    count: int, tmp: Path, database_url: str | None, redis_url: str | None, catalog: str = CONFIG
) -> list[tuple[str, subprocess.Popen[bytes]]]:
    """`count` `sluice serve` processes on `catalog`, on the embedded default or (both URLs given) the services."""
    config = tmp / "sluice.yaml"
    config.write_text(catalog)
    env = {
        **os.environ,
        "SLUICE_MASTER_KEY": MASTER_KEY,
        "SLUICE_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "SLUICE_CONFIG": str(config),
    }
    env.pop("SLUICE_DATABASE_URL", None)
    env.pop("SLUICE_REDIS_URL", None)
    if database_url and redis_url:
        env.update(SLUICE_DATABASE_URL=database_url, SLUICE_REDIS_URL=redis_url)
    instances = []
    for i in range(count):
        port = free_port()
        command = [sys.executable, "-m", "sluice", "serve", "--port", str(port), "--data-dir", str(tmp / f"i{i}")]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        instances.append((f"http://127.0.0.1:{port}", process))
    return instances


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client, asyncio.timeout(60):
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def load(urls: list[str], seconds: float, concurrency: int) -> tuple[int, int, list[float]]:
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients = [httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) for url in urls]
    latencies: list[float] = []
    failures = 0
    stop = time.perf_counter() + seconds

    async def client_loop(index: int) -> None:
        nonlocal failures
        turn = index
        while time.perf_counter() < stop:
            client = clients[turn % len(clients)]
            turn += 1
            started = time.perf_counter()
            response = await client.post("/v1/ai", json=BODY)
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures += 1

    try:
        await asyncio.gather(*(client_loop(i) for i in range(concurrency)))
    finally:
        for client in clients:
            await client.aclose()
    return len(latencies), failures, latencies


async def redis_commands(url: str) -> int:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    stats = await client.info("commandstats")
    await client.aclose()
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def measure(count: int, args: argparse.Namespace, *, embedded: bool = False) -> dict[str, Any]:
    """`count` instances on Redis + PostgreSQL, or (embedded) one on SQLite and the in-process broker."""
    database_url, redis_url, name = await fresh_backends(args.database_url, args.redis_url)
    with tempfile.TemporaryDirectory() as tmp:
        instances = start(count, Path(tmp), None if embedded else database_url, None if embedded else redis_url)
        try:
            urls = [url for url, _ in instances]
            await asyncio.gather(*(wait_ready(url) for url in urls))
            await load(urls, 2.0, args.concurrency)  # warm-up: connections, pools, JIT-less caches
            pids = [process.pid for _, process in instances]
            cpu_before = [cpu_seconds(pid) for pid in pids]
            self_before, machine_before = cpu_seconds(os.getpid()), machine_busy_seconds()
            commands_before = await redis_commands(args.redis_url)
            started = time.perf_counter()
            done, failures, latencies = await load(urls, args.seconds, args.concurrency)
            elapsed = time.perf_counter() - started
            instances_cpu = sum(cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True))
            self_cpu = cpu_seconds(os.getpid()) - self_before
            machine_cpu = machine_busy_seconds() - machine_before
            commands = await redis_commands(args.redis_url) - commands_before
        finally:
            for _, process in instances:
                process.terminate()
            for _, process in instances:
                process.wait(15)
    await drop_backends(args.database_url, args.redis_url, name, redis_url)
    ordered = sorted(latencies)
    return {
        "instances": count,
        "backends": "sqlite+memory" if embedded else "postgresql+redis",
        "redis_commands_per_request": None if embedded else round(commands / max(done, 1), 1),
        "seconds": round(elapsed, 2),
        "completed": done,
        "failed": failures,
        "requests_per_second": round(done / elapsed, 1),
        "latency_ms": {
            "p50": round(statistics.median(ordered) * 1000, 1),
            "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 1),
        },
        "instance_cpu_ms_per_request": round(instances_cpu * 1000 / max(done, 1), 1),
        "cpu_seconds": {
            "instances": round(instances_cpu, 2),
            "load_generator": round(self_cpu, 2),
            "machine": round(machine_cpu, 2),
            "machine_cores": os.cpu_count(),
        },
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    baseline = await measure(1, args, embedded=True)
    results = [await measure(count, args) for count in (1, 2)]
    for result in (baseline, *results):
        print(json.dumps(result))
    ratio = results[1]["requests_per_second"] / max(results[0]["requests_per_second"], 0.001)
    print(f"two instances / one instance: {ratio:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps({"embedded": baseline, "runs": results, "ratio": round(ratio, 2)}, indent=2) + "\n"
        )


if __name__ == "__main__":
    asyncio.run(main())

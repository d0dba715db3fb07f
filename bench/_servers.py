"""The processes a benchmark measures: the mock upstream, a Sluice gateway pointed at it, the LiteLLM proxy."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _gateway import MASTER_KEY, free_port, running_gateway

HERE = Path(__file__).resolve().parent
WORKFLOW = "bench"  # the workflow name, also the model name every client sends
# LiteLLM's proxy refuses to start without a strong master key; with no database it checks it in memory.
LITELLM_KEY = "sk-bench-" + "5a1ce" * 8


@contextmanager
def mock_upstream(chunks: int = 20, pace_ms: float = 0.0, ttft_ms: float = 0.0, hold: bool = False) -> Iterator[str]:
    """Yield the mock's base URL (`…/v1`)."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "mock_upstream.py"),
            "--chunks",
            str(chunks),
            "--pace-ms",
            str(pace_ms),
            "--ttft-ms",
            str(ttft_ms),
            *(["--hold"] if hold else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def sluice_config(upstream: str, merge_reads: bool = True) -> str:
    """A catalog with one `openai-compatible` provider on the mock and a workflow without schema."""
    option = "" if merge_reads else ", merge_reads: false"
    return (
        f'providers:\n  mock: {{type: openai-compatible, base_url: "{upstream}"{option}}}\n'
        f"workflows:\n  {WORKFLOW}:\n    chain:\n      - {{provider: mock, model: mock}}\n"
    )


def pid_listening(url: str) -> int:
    """The pid of the process listening on `url`'s port (the gateway runs as a subprocess of `running_gateway`)."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return int(out.split("pid=", 1)[1].split(",", 1)[0])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def sluice_gateway(upstream: str, merge_reads: bool = True) -> Iterator[tuple[str, str]]:
    """Yield (base URL, a project API key) of a fresh gateway whose `bench` workflow calls the mock."""
    with running_gateway(sluice_config(upstream, merge_reads)) as url:
        created = httpx.post(
            f"{url}/v1/admin/keys", json={"name": "bench"}, headers={"Authorization": f"Bearer {MASTER_KEY}"}
        )
        created.raise_for_status()
        yield url, created.json()["key"]


@contextmanager
def litellm_proxy(upstream: str) -> Iterator[str]:
    """Yield the base URL of a LiteLLM proxy (one worker, its own venv) whose `bench` model is the mock."""
    from litellm_env import ensure

    python = ensure()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "litellm.yaml"
        config.write_text(
            f"model_list:\n  - model_name: {WORKFLOW}\n    litellm_params:\n      model: openai/mock\n"
            f'      api_base: "{upstream}"\n      api_key: sk-mock\n'
            "litellm_settings:\n  telemetry: false\n  set_verbose: false\n"
        )
        port = free_port()
        env = {
            **os.environ,
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "true",
            "LITELLM_MASTER_KEY": LITELLM_KEY,
        }
        env.pop("VIRTUAL_ENV", None)
        log = (Path(tmp) / "litellm.log").open("w")
        process = subprocess.Popen(
            [
                str(python),
                "-m",
                "litellm.proxy.proxy_cli",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"LiteLLM exited: {(Path(tmp) / 'litellm.log').read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/health/liveliness").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.25)
            else:
                raise RuntimeError("LiteLLM did not become ready")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()

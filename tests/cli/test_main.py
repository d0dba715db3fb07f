"""The `sluice` command: `keys create` prints only the key; `chat` streams a workflow's answer token by token; `serve`
checks its settings before it starts."""

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import StartGateway, paced_config

SLUICE = [sys.executable, "-m", "sluice"]


def test_keys_create_prints_only_a_working_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SLUICE, "keys", "create", "--name", "ci", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sk_sluice_")
    assert lines[0] not in (tmp_path / "sluice.db").read_bytes().decode("latin-1")  # only its hash is stored


def test_keys_create_with_a_budget_and_limits(tmp_path: Path) -> None:
    command = [*SLUICE, "keys", "create", "--name", "capped", "--data-dir", str(tmp_path)]
    limits = ["--budget-usd", "12.5", "--budget-period", "monthly", "--rpm", "60", "--tpm", "90000"]
    subprocess.run([*command, *limits], capture_output=True, text=True, timeout=60, check=True)
    refused = subprocess.run([*command, "--budget-period", "weekly"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "weekly" in refused.stderr
    with sqlite3.connect(tmp_path / "sluice.db") as db:
        row = db.execute("SELECT budget_usd, budget_period, rpm, tpm FROM api_keys WHERE name = 'capped'").fetchone()
    assert row == (12.5, "monthly", 60, 90000)


async def test_chat_streams_the_reply_as_it_grows(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 15))
    process = await asyncio.create_subprocess_exec(
        *SLUICE,
        "chat",
        "--url",
        gw.url,
        "--api-key",
        gw.api_key,
        "thanks, this is great",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    reads: list[bytes] = []
    async with asyncio.timeout(30):
        while chunk := await process.stdout.read(64):
            reads.append(chunk)
        await process.wait()
    output = b"".join(reads).decode()
    assert process.returncode == 0, (await process.stderr.read()).decode()
    assert output.startswith("You said: \u201cthanks, this is great\u201d")
    assert len(reads) > 3  # it arrived in pieces, not as one write at the end
    stderr = (await process.stderr.read()).decode()
    assert '"sentiment": "positive"' in stderr


def test_chat_without_a_key_explains_how_to_get_one() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SLUICE_API_KEY", "SLUICE_MASTER_KEY")}
    result = subprocess.run([*SLUICE, "chat", "hi"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert "sluice keys create" in result.stderr


def test_serve_refuses_malformed_gc_thresholds(tmp_path: Path) -> None:
    env = {**os.environ, "SLUICE_GC_THRESHOLDS": "700,ten"}
    result = subprocess.run(
        [*SLUICE, "serve", "--port", "9", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "SLUICE_GC_THRESHOLDS must be three positive integers" in result.stderr

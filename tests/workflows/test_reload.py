"""Hot reload of the YAML catalog: a changed file is validated and swapped in whole, an invalid one refused (logged,
the catalog in use kept); `sluice serve` reloads on SIGHUP."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.workflows.model import Catalog
from sluice.workflows.reload import CatalogFile
from tests.conftest import MASTER_KEY, StartGateway, chat_body, free_port, write_config
from tests.delivery.helpers import eventually
from tests.e2e.test_restart import wait_ready

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}
FIRST = """
providers:
  sim: {type: simulated, pace_ms: 0}
workflows:
  first: {chain: [{provider: sim, model: sim-1}]}
"""
# A second provider and a workflow that needs it: they arrive together or not at all.
SECOND = """
providers:
  sim: {type: simulated, pace_ms: 0}
  other: {type: simulated, pace_ms: 0}
workflows:
  first: {chain: [{provider: sim, model: sim-1}]}
  second: {chain: [{provider: other, model: sim-2}], system: "Be brief."}
"""
# Valid in part: `third` alone would load, `broken` names a provider nobody defines.
INVALID = """
providers:
  sim: {type: simulated, pace_ms: 0}
workflows:
  third: {chain: [{provider: sim, model: sim-1}]}
  broken: {chain: [{provider: nobody, model: x}]}
"""


async def workflows(client: httpx.AsyncClient) -> set[str]:
    listed = (await client.get("/v1/admin/workflows", headers=HEADERS)).json()["workflows"]
    return {wf["name"] for wf in listed if wf["source"] == "config"}


async def test_a_changed_file_is_swapped_in_and_an_invalid_one_refused(
    start_gateway: StartGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, FIRST)
    gw = await start_gateway(config_path=config, config_poll_interval=0.05)
    async with gw.client() as client:
        assert await workflows(client) == {"first"}

        config.write_text(SECOND)
        assert await eventually(lambda: _has(client, {"first", "second"}))
        answered = await client.post("/v1/ai", json=chat_body("hi", workflow="second"))
        assert answered.status_code == 200 and answered.json()["meta"]["provider"] == "other"

        caplog.set_level(logging.ERROR, logger="sluice.config")
        config.write_text(INVALID)
        refusal = await eventually(lambda: _logged(caplog, "not reloaded"))
        assert "workflows.broken" in refusal and "nobody" in refusal and str(config) in refusal
        assert await workflows(client) == {"first", "second"}, "nothing of a refused file applies"
        assert await gw.gateway.reload_config() is False  # SIGHUP's path refuses it as well
        still = await client.post("/v1/ai", json=chat_body("hi", workflow="second"))
        assert still.status_code == 200

        config.write_text(FIRST)  # fixed: taken, and what the file no longer defines is gone
        assert await eventually(lambda: _has(client, {"first"}))
        gone = await client.post("/v1/ai", json=chat_body("hi", workflow="second"))
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "workflow_not_found"


async def _has(client: httpx.AsyncClient, names: set[str]) -> bool:
    return await workflows(client) == names


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> str | None:
    return next((record.getMessage() for record in caplog.records if text in record.getMessage()), None)


async def test_only_a_changed_content_is_applied_unless_forced(tmp_path: Path) -> None:
    config = write_config(tmp_path, FIRST)
    applied: list[Catalog] = []

    async def apply(catalog: Catalog) -> None:
        applied.append(catalog)

    catalog_file = CatalogFile(config, interval=0)
    assert set(catalog_file.load().workflows) >= {"first", "demo"}
    config.write_text(FIRST)  # touched, same text
    assert await catalog_file.reload(apply) is False and applied == []
    assert await catalog_file.reload(apply, force=True) is True and len(applied) == 1
    config.write_text(SECOND)
    assert await catalog_file.reload(apply) is True and "second" in applied[-1].workflows
    config.unlink()  # a file that went away is refused like an invalid one
    assert await catalog_file.reload(apply) is False and len(applied) == 2


def serve(port: int, tmp_path: Path, config: Path) -> subprocess.Popen[bytes]:
    env: dict[str, Any] = {
        **os.environ,
        "SLUICE_MASTER_KEY": MASTER_KEY,
        "SLUICE_SECRET_KEY": "reload-test-secret-key-0123456789",
        "SLUICE_CONFIG": str(config),
        "SLUICE_CONFIG_POLL_INTERVAL": "0",  # no polling: only the signal can reload it
    }
    command = [sys.executable, "-m", "sluice", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_sluice_serve_reloads_its_config_on_sighup(tmp_path: Path) -> None:
    config = write_config(tmp_path, FIRST)
    port = free_port()
    process = serve(port, tmp_path, config)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, process)
        async with httpx.AsyncClient(base_url=url) as client:
            assert await workflows(client) == {"first"}
            config.write_text(SECOND)
            process.send_signal(signal.SIGHUP)
            assert await eventually(lambda: _has(client, {"first", "second"}))
            assert process.poll() is None, "SIGHUP reloads; it does not stop the gateway"
    finally:
        process.terminate()
        process.wait(10)

"""The browser SDK files served at /sdk/ (importable cross-origin as ES modules)."""

from __future__ import annotations

from pathlib import Path

from sluice.api.sdk import resolve_sdk_file, sdk_root
from tests.conftest import RunningGateway


async def test_the_sdk_modules_are_served_with_cors(gw: RunningGateway) -> None:
    async with gw.client() as client:
        for name in ("sluice.js", "state.js", "storage.js", "react.js", "sluice.d.ts"):
            response = await client.get(f"/sdk/{name}", headers={"Origin": "http://127.0.0.1:9"})
            assert response.status_code == 200, name
            assert response.headers["access-control-allow-origin"] == "*"
        module = await client.get("/sdk/sluice.js")
        assert module.headers["content-type"].startswith("text/javascript")
        assert "export class SluiceClient" in module.text
        missing = await client.get("/sdk/nothing.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "sdk_file_not_found"


def test_only_top_level_sdk_files_resolve() -> None:
    root = sdk_root()
    assert root is not None and (root / "sluice.js").is_file()
    assert resolve_sdk_file(root, "sluice.js") == root / "sluice.js"
    for path in ("../../pyproject.toml", "test/client.test.js", ".hidden.js", "package-lock.json", "nope.py"):
        assert resolve_sdk_file(root, path) is None, path
    assert resolve_sdk_file(Path("/nonexistent"), "sluice.js") is None

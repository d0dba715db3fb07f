"""The console's shells and static files: served without data, escaped, no path outside the static directory."""

from __future__ import annotations

import httpx

from tests.conftest import RunningGateway


async def test_pages_and_static_files(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as client:
        root = await client.get("/console")
        assert root.status_code == 307 and root.headers["location"] == "/console/overview"
        for page in ("overview", "keys", "providers", "workflows", "requests", "webhooks", "playground", "login"):
            response = await client.get(f"/console/{page}")
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), page
            assert f"/console/static/{page}.js" in response.text, page
        script = await client.get("/console/static/console.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert (await client.get("/console/static/console.css")).headers["content-type"].startswith("text/css")
        for bad in (
            "/console/static/..%2Froutes.py",
            "/console/static/routes.py",
            "/console/static/.hidden.js",
            "/console/nope",
        ):
            assert (await client.get(bad)).status_code == 404, bad
        detail = await client.get("/console/requests/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        assert detail.status_code == 200 and "<img" not in detail.text and "&lt;img src=x" in detail.text
        assert "/console/static/request.js" in detail.text
        assert "/console" not in (await client.get("/openapi.json")).json()["paths"]

"""Schemathesis fuzzing of every HTTP operation in `/openapi.json`, against a live gateway on loopback.

For valid and invalid inputs (positive and negative generation), with the master key, a project API key and no key:
never a 5xx, and every response has a documented status, content type and body shape. The operations are read from
the app itself, so a route added later is fuzzed with no change here; `test_every_route_served_is_fuzzed` fails for a
route the app serves but leaves out of `/openapi.json` (and so out of the fuzzing), unless it is one of the few that
serve pages and files rather than the API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from sluice.api.app import create_app
from sluice.settings import Settings
from tests.api.live import threaded_gateway
from tests.conftest import MASTER_KEY

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {"master": 20, "api_key": 6, "none": 3}
# Served but not API operations: FastAPI's own documentation pages, the console's HTML shells and static files (their
# data comes from the admin API, which is fuzzed), and the browser SDK's files.
NOT_THE_API = {
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/oauth2-redirect",
    "GET /redoc",
    "GET /console",
    "GET /console/login",
    "GET /console/{page}",
    "GET /console/requests/{request_id}",
    "GET /console/static/{name}",
    "GET /sdk/{path}",
}


def _operations() -> list[str]:
    """Every HTTP operation the app documents (WebSocket routes are documented as upgrades and fuzzed elsewhere)."""
    document = create_app(Settings(secret_key="collect-only")).openapi()
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if "websockets" not in (operation.get("tags") or []):
                found.append(f"{method.upper()} {path}")
    return found


def _served(routes: list[Any]) -> set[str]:
    """Every HTTP route the app serves, as `METHOD /path` (path parameters without their converters)."""
    found: set[str] = set()
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers as wrappers
        if included is not None:
            found |= _served(included.routes)
        elif isinstance(route, Route):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            found |= {f"{method} {path}" for method in route.methods or () if method != "HEAD"}
    return found


def test_every_route_served_is_fuzzed() -> None:
    served = _served(create_app(Settings(secret_key="collect-only")).routes)
    fuzzed = set(_operations())
    assert served - fuzzed == NOT_THE_API, "a route left out of /openapi.json is not fuzzed: document it"
    assert fuzzed <= served
    # The agent APIs of the last round among them (they are found like any other, not listed here to be fuzzed).
    assert {
        "POST /v1/messages",
        "POST /v1/messages/count_tokens",
        "POST /v1/responses",
        "POST /v1/embeddings",
    } <= fuzzed
    assert {"GET /v1/models", "GET /v1/models/{model_id}", "POST /v1/admin/requests/{request_id}/rerun"} <= fuzzed


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with threaded_gateway(Path(tmp_path_factory.mktemp("fuzz")) / "data") as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as client:
            document = client.get("/openapi.json").json()
            api_key = client.post("/v1/admin/keys", json={"name": "fuzz"}).json()["key"]
        yield {"url": url, "schema": schemathesis.openapi.from_dict(document), "api_key": api_key}


@pytest.mark.parametrize("label", _operations())
@pytest.mark.parametrize("who", list(EXAMPLES))
def test_operation_never_fails_and_matches_its_schema(live: dict[str, Any], label: str, who: str) -> None:
    operation = live["schema"].find_operation_by_label(label)
    assert operation is not None, label
    key = {"master": MASTER_KEY, "api_key": live["api_key"], "none": None}[who]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    modes = [GenerationMode.POSITIVE]
    if operation.body or operation.path_parameters or operation.query:
        modes.append(GenerationMode.NEGATIVE)  # an operation without inputs has no invalid input to send
    for mode in modes:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES[who],
            database=None,
            derandomize=True,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=live["url"], headers=headers, timeout=15, checks=CHECKS)

        call()

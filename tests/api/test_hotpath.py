"""The hot path of `POST /v1/chat/completions` keeps the contract FastAPI gives the route: the same statuses and
error bodies (OpenAI's shape) for the same requests, whichever of the two serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sluice.api.hotpath import SluiceAPI
from tests.conftest import RunningGateway, StartGateway

MAX_BODY = 4_000
HI = [{"role": "user", "content": "hi"}]


async def chunked(size: int) -> AsyncIterator[bytes]:
    """A body with no Content-Length (chunked transfer): only counting the bytes as they come can refuse it."""
    yield b'{"model": "demo", "messages": [{"role": "user", "content": "'
    for _ in range(size // 1000):
        yield b"x" * 1000
    yield b'"}]}'


# name -> (headers beyond the API key, body as JSON or raw bytes)
CASES: dict[str, tuple[dict[str, str], Any]] = {
    "no key": ({"Authorization": ""}, {"model": "demo", "messages": HI}),
    "wrong key": ({"Authorization": "Bearer sk_sluice_wrong"}, {"model": "demo", "messages": HI}),
    "basic auth": ({"Authorization": "Basic abc"}, {"model": "demo", "messages": HI}),
    "not JSON": ({"Content-Type": "application/json"}, b"{nope"),
    "no messages": ({}, {"model": "demo", "messages": []}),
    "bad role": ({}, {"model": "demo", "messages": [{"role": "robot", "content": "hi"}]}),
    "bad temperature": ({}, {"model": "demo", "messages": HI, "temperature": 7}),
    "unknown model": ({}, {"model": "nope", "messages": HI}),
    "tool without function": ({}, {"model": "demo", "messages": HI, "tools": [{"type": "function"}]}),
    "bad image part": (
        {},
        {"model": "demo", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    ),
    "declared too large": ({}, {"model": "demo", "messages": [{"role": "user", "content": "x" * MAX_BODY}]}),
    "ok": ({}, {"model": "demo", "messages": HI, "max_tokens": 5}),
}


@pytest.fixture
async def gw(start_gateway: StartGateway) -> RunningGateway:
    return await start_gateway(max_body_bytes=MAX_BODY)


async def answer(gw: RunningGateway, headers: dict[str, str], body: Any) -> httpx.Response:
    async with gw.client() as client:
        if isinstance(body, bytes):
            return await client.post("/v1/chat/completions", content=body, headers=headers)
        return await client.post("/v1/chat/completions", json=body, headers=headers)


def essence(response: httpx.Response) -> tuple[int, Any]:
    """What must not differ: the status, and the error body or the answer's shape (ids and times do differ)."""
    body = response.json()
    if response.status_code != 200:
        return response.status_code, body
    return 200, (body["object"], body["model"], body["choices"][0]["message"]["role"], sorted(body["usage"]))


async def test_every_case_is_answered_as_fastapi_answers_it(gw: RunningGateway) -> None:
    app = gw.server.config.app
    assert isinstance(app, SluiceAPI) and app.hot_path is not None
    hot = {name: await answer(gw, *case) for name, case in CASES.items()}
    hot_path, app.hot_path = app.hot_path, None
    try:
        plain = {name: await answer(gw, *case) for name, case in CASES.items()}
    finally:
        app.hot_path = hot_path
    for name in CASES:
        assert essence(hot[name]) == essence(plain[name]), name
    statuses = {name: response.status_code for name, response in hot.items()}
    assert statuses == {
        "no key": 401,
        "wrong key": 401,
        "basic auth": 401,
        "not JSON": 400,
        "no messages": 400,
        "bad role": 400,
        "bad temperature": 400,
        "unknown model": 404,
        "tool without function": 400,
        "bad image part": 400,
        "declared too large": 413,
        "ok": 200,
    }
    errors = {name: response.json()["error"] for name, response in hot.items() if response.status_code != 200}
    assert all(set(error) == {"message", "type", "param", "code"} for error in errors.values())
    types = {name: error["type"] for name, error in errors.items()}
    assert types == {
        **{name: "authentication_error" for name in ("no key", "wrong key", "basic auth")},
        **{name: "invalid_request_error" for name in errors if name not in ("no key", "wrong key", "basic auth")},
    }
    assert [errors[name]["code"] for name in ("no key", "wrong key", "basic auth")] == [
        "missing_api_key",
        "invalid_api_key",
        "missing_api_key",
    ]
    params = {name: error["param"] for name, error in errors.items() if error["code"] == "invalid_request"}
    assert params == {
        "not JSON": None,  # the body as a whole is wrong
        "no messages": "messages",
        "bad role": "messages[0].role",
        "bad temperature": "temperature",
        "tool without function": "tools[0].function",
        "bad image part": "messages[0].content[0].image_url.url",
    }
    assert errors["not JSON"]["message"] == "the body is not valid JSON"
    assert errors["bad role"]["message"].startswith("messages[0].role: ")
    assert errors["unknown model"]["code"] == "model_not_found"


async def test_a_chunked_body_over_the_limit_is_refused(gw: RunningGateway) -> None:
    async with gw.client() as client:
        response = await client.post(
            "/v1/chat/completions", content=chunked(MAX_BODY * 2), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["error"] == {
        "message": f"the request body is over the limit of {MAX_BODY} bytes",
        "type": "invalid_request_error",
        "param": None,
        "code": "payload_too_large",
    }


async def test_the_answer_names_its_request_once(gw: RunningGateway) -> None:
    response = await answer(gw, {"X-Request-ID": "caller-chosen-id"}, CASES["ok"][1])
    assert response.status_code == 200
    ids = response.headers.get_list("x-request-id")
    assert ids == [response.json()["id"].removeprefix("chatcmpl-")]  # the request's own id, as the log has it


async def test_an_error_before_the_request_exists_echoes_the_callers_id(gw: RunningGateway) -> None:
    response = await answer(gw, {"X-Request-ID": "caller-chosen-id"}, {"model": "nope", "messages": HI})
    assert response.status_code == 404
    assert response.headers.get_list("x-request-id") == ["caller-chosen-id"]


@pytest.mark.parametrize("hot", [True, False])
async def test_the_rate_limit_is_an_openai_429_with_retry_after(start_gateway: StartGateway, hot: bool) -> None:
    gw = await start_gateway(rate_limit="1/hour")
    app = gw.server.config.app
    assert isinstance(app, SluiceAPI)
    if not hot:
        app.hot_path = None
    first = await answer(gw, {}, CASES["ok"][1])
    refused = await answer(gw, {}, CASES["ok"][1])
    assert first.status_code == 200
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 3600
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("rate_limit_error", "rate_limited", None)


async def test_other_routes_keep_sluice_errors(gw: RunningGateway) -> None:
    async with gw.client() as client:
        refused = await client.post("/v1/ai/async", json={"workflow": "demo", "messages": [{"role": "robot"}]})
        too_large = await client.post("/v1/ai/async", content=b"x" * (MAX_BODY + 1))
    assert refused.status_code == 422 and set(refused.json()["error"]) == {"code", "message"}
    assert refused.json()["error"]["message"].startswith("messages[0].role: ")
    assert too_large.status_code == 413 and set(too_large.json()["error"]) == {"code", "message"}

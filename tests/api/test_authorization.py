"""The authorization matrix: every documented route, with every kind of credential gives the right answer.

Credentials: none, a wrong key, another project's API key and admin key, this project's API key and admin key, the
master key, a `ws_token` and a callback token (the last two sent as bearer tokens, where they must open nothing).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import MASTER_KEY, RunningGateway, StartGateway, chat_body
from tests.delivery.helpers import FAST, workflow_file
from tests.delivery.receiver import json_of, running_receiver

OPEN = {"GET /healthz", "GET /readyz", "GET /metrics"}  # deliberately public (docs/security.md)
API = {
    "POST /v1/ai/async",
    "POST /v1/ai",
    "GET /v1/requests/{request_id}",
    "POST /v1/requests/{request_id}/cancel",
    "POST /v1/channels/{channel_id}/token",
    "POST /v1/chat/completions",
    "POST /v1/embeddings",
    "GET /v1/models",
    "GET /v1/models/{model_id}",
    "POST /v1/responses",
    "GET /v1/responses/{response_id}",
    "POST /v1/responses/{response_id}/cancel",
    "POST /v1/messages",
    "POST /v1/messages/count_tokens",
}
CHANNEL = {"GET /v1/channels/{channel_id}/events"}
# The operator's alone: creating projects and setting their budgets (a project's admins cannot raise their own).
MASTER_ONLY = {"POST /v1/admin/projects", "PUT /v1/admin/projects/{project_id}/limits"}
CALLBACK = {"POST /v1/callback/{channel_id}"}
# Routes whose path names a resource of this project: another project's key gets 404, as if it did not exist.
PROJECT_SCOPED = {
    "GET /v1/requests/{request_id}",
    "POST /v1/requests/{request_id}/cancel",
    "POST /v1/channels/{channel_id}/token",
    "GET /v1/admin/requests/{request_id}",
    "POST /v1/admin/requests/{request_id}/rerun",
    "GET /v1/responses/{response_id}",
    "POST /v1/responses/{response_id}/cancel",
}


@dataclass
class World:
    gw: RunningGateway
    creds: dict[str, str | None]
    channel_id: str  # a request of the default project, awaiting its callback
    ws_token: str
    callback_url: str


@pytest.fixture
async def world(start_gateway: StartGateway, tmp_path: Path) -> AsyncIterator[World]:
    gw = await start_gateway(config_path=workflow_file(tmp_path), extra=FAST)
    store, project = gw.gateway.store, gw.gateway.default_project_id
    other = await store.ensure_project("other")
    creds: dict[str, str | None] = {
        "none": None,
        "wrong": "sk_sluice_not-a-real-key",
        "master": MASTER_KEY,
        "api": gw.api_key,
        "admin": (await store.create_api_key(project, "admin", admin=True))[0],
        "other_api": (await store.create_api_key(other, "other"))[0],
        "other_admin": (await store.create_api_key(other, "other admin", admin=True))[0],
    }
    async with running_receiver() as receiver, gw.client() as client:
        body = chat_body("hello", workflow="slow_callback", webhook_url=receiver.url, events=["webhook_received"])
        accepted = (await client.post("/v1/ai/async", json=body)).json()
        payload = json_of(await receiver.next())
        creds["ws_token"] = accepted["ws_token"]
        creds["callback_token"] = payload["callback_url"].split("token=", 1)[1]
        yield World(gw, creds, accepted["channel_id"], accepted["ws_token"], payload["callback_url"])


def routes(gw: RunningGateway) -> list[tuple[str, str]]:
    document = gw.server.config.app.openapi()  # type: ignore[union-attr]
    return [
        (method.upper(), path)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
        if "websockets" not in (op.get("tags") or [])
    ]


def expected(route: str, who: str) -> set[int] | str:
    """The statuses `who` may get on `route`, or "allowed" (anything but 401/403/5xx)."""
    if route in OPEN:
        return "allowed"
    if route in CHANNEL or route in CALLBACK:
        return "allowed" if who in ("master", "api", "admin") else ({404} if who.startswith("other") else {401})
    if who in ("none", "wrong", "ws_token", "callback_token"):
        return {401}  # a ws_token or callback token is never an API key
    admin_route = route not in API
    if route in MASTER_ONLY:
        return "allowed" if who == "master" else {403}
    if who == "other_api":
        return {403} if admin_route else ({404} if route in PROJECT_SCOPED else "allowed")
    if who == "other_admin":
        return {404} if route in PROJECT_SCOPED else "allowed"
    if who == "api" and admin_route:
        return {403}
    return "allowed"


def path_of(path: str, world: World) -> str:
    # Project resources use the real channel; other ids are made up (so an admin call changes nothing).
    values = {
        "request_id": world.channel_id,
        "channel_id": world.channel_id,
        "key_id": "key_missing",
        "name": "no-such-thing",
        "delivery_id": "msg_missing",
        "model_id": "demo",
        "response_id": world.channel_id,
        "project_id": "proj_missing",
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


FAST_MODEL = "sim/sim-1"  # the simulated provider without pacing (the `demo` workflow answers at reading speed)


def body_of(method: str, path: str) -> Any:
    if path == "/v1/chat/completions":
        return {"model": FAST_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    if path == "/v1/responses":
        return {"model": FAST_MODEL, "input": "hi"}
    if path.startswith("/v1/messages"):
        return {"model": FAST_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    if path == "/v1/embeddings":
        return {"model": "demo", "input": "hi"}
    if path in ("/v1/ai/async", "/v1/ai"):
        return chat_body("hi", workflow="deliver_fast")
    return {} if method in ("POST", "PUT") else None


async def test_every_route_against_every_credential(world: World) -> None:
    failures = []
    checked = 0
    async with httpx.AsyncClient(base_url=world.gw.url, timeout=15) as client:
        for method, path in routes(world.gw):
            route = f"{method} {path}"
            if route in CALLBACK:
                continue  # single-use: checked on its own below
            for who, credential in world.creds.items():
                headers = {"Authorization": f"Bearer {credential}"} if credential else {}
                request = client.build_request(
                    method, path_of(path, world), headers=headers, json=body_of(method, path)
                )
                response = await client.send(request, stream=True)  # an open channel streams: read only the head
                if response.headers.get("content-type", "").startswith("application/json"):
                    await response.aread()
                await response.aclose()
                checked += 1
                want = expected(route, who)
                ok = (
                    (response.status_code not in (401, 403) and response.status_code < 500)
                    if want == "allowed"
                    else response.status_code in want
                )
                if not ok:
                    failures.append(f"{route} as {who}: {response.status_code} (want {want}) {response.text[:120]}")
                if response.status_code in (401, 403, 404):
                    error = response.json()["error"]
                    # A clear, machine-readable refusal (the Anthropic face's is typed, not coded).
                    assert error.get("code") or error.get("type"), route
    assert not failures, "\n".join(failures)
    assert checked >= 30 * len(world.creds)


async def test_ws_token_opens_only_its_own_channel(world: World, start_gateway: StartGateway) -> None:
    gw = world.gw
    async with gw.client() as client:
        other = (await client.post("/v1/ai/async", json=chat_body("x", workflow="deliver_fast"))).json()
        sse = await client.get(
            f"/v1/channels/{other['channel_id']}/events",
            params={"token": world.ws_token},
            headers={"Authorization": ""},
        )
        assert sse.status_code == 403 and sse.json()["error"]["code"] == "wrong_channel"
        own = f"/v1/channels/{world.channel_id}/events?token={world.ws_token}"
        async with client.stream("GET", own, headers={"Authorization": ""}) as stream:
            assert stream.status_code == 200  # its own channel, still open (awaiting the callback)
            first = await anext(stream.aiter_lines())
            assert first.startswith("retry:")
    base = f"{gw.ws_url}/v1/ws?channel_id={other['channel_id']}"
    for token, code in (
        (world.ws_token, 4403),
        (world.creds["callback_token"], 4401),
        ("", 4401),
        ("eyJhbGciOiJIUzI1NiJ9.e30.forged", 4401),
    ):
        assert await ws_close_code(f"{base}&token={token}") == code
    # the Phoenix endpoint refuses to join another channel's topic with this token
    project = gw.gateway.default_project_id
    url = f"{gw.ws_url}/socket/websocket?token={world.ws_token}&vsn=2.0.0"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps(["1", "1", f"ai_response:{project}:{other['channel_id']}", "phx_join", {}]))
        reply = json.loads(await ws.recv())
    assert reply[3] == "phx_reply" and reply[4]["status"] == "error"
    # a callback token is not a ws_token either
    with pytest.raises(InvalidStatus):
        async with websockets.connect(f"{gw.ws_url}/socket/websocket?token={world.creds['callback_token']}&vsn=2.0.0"):
            pass


async def ws_close_code(url: str) -> int | None:
    async with websockets.connect(url) as ws:
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        return ws.close_code


async def test_callback_token_is_single_use_and_bound_to_its_channel(world: World) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        elsewhere = world.callback_url.replace(world.channel_id, "00000000-0000-0000-0000-000000000000")
        assert (await client.post(elsewhere, json={"x": 1})).status_code == 404
        bare = world.callback_url.split("?", 1)[0]
        assert (await client.post(bare, json={"x": 1})).status_code == 401
        forged = await client.post(f"{bare}?token=cbt_forged", json={"x": 1})
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_callback_token"
        wrong_project = await client.post(
            bare, json={"x": 1}, headers={"Authorization": f"Bearer {world.creds['other_admin']}"}
        )
        assert wrong_project.status_code == 404  # another project's admin key cannot answer for this project
        first = await client.post(world.callback_url, json={"approved": True})
        second = await client.post(world.callback_url, json={"approved": False})
    assert first.status_code == 200, first.text
    assert second.status_code == 409 and second.json()["error"]["code"] == "callback_already_used"
    async with world.gw.client() as client:
        record = (await client.get(f"/v1/requests/{world.channel_id}")).json()
    assert record["status"] == "completed" and record["data"] == {"approved": True}


async def test_a_key_of_one_project_cannot_read_manage_or_spend_anything_of_another(world: World) -> None:
    """Project "other" stores a provider and a workflow: this project's admin cannot see, edit, delete, test or
    build on them, nor touch the other project's keys or budget; its API key cannot run them; the other project's
    budget does not count this project's spending, and this project's requests are not refused by it."""
    creds = world.creds

    def as_(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {creds[who]}"}

    async with httpx.AsyncClient(base_url=world.gw.url, timeout=15) as client:
        theirs = {"name": "theirs", "type": "simulated", "options": {"pace_ms": 0}}
        assert (await client.post("/v1/admin/providers", json=theirs, headers=as_("other_admin"))).status_code == 201
        flow = {"name": "their_flow", "chain": [{"provider": "theirs", "model": "sim-1"}]}
        assert (await client.post("/v1/admin/workflows", json=flow, headers=as_("other_admin"))).status_code == 201
        other_keys = (await client.get("/v1/admin/keys", headers=as_("other_admin"))).json()["keys"]
        other_project = (await client.get("/v1/admin/projects/current", headers=as_("other_admin"))).json()
        assert (await client.post("/v1/ai", json=chat_body("hi", "their_flow"), headers=as_("other_api"))).is_success

        listed = (await client.get("/v1/admin/workflows", headers=as_("admin"))).json()["workflows"]
        assert "their_flow" not in {w["name"] for w in listed}
        providers = (await client.get("/v1/admin/providers", headers=as_("admin"))).json()["providers"]
        assert "theirs" not in {p["name"] for p in providers}
        manage = [
            ("GET", "/v1/admin/workflows/their_flow", None),
            ("PUT", "/v1/admin/workflows/their_flow", {"chain": [{"provider": "simulated", "model": "x"}]}),
            ("DELETE", "/v1/admin/workflows/their_flow", None),
            ("PUT", "/v1/admin/providers/theirs", {"options": {"pace_ms": 5}}),
            ("DELETE", "/v1/admin/providers/theirs", None),
            ("POST", "/v1/admin/providers/theirs/test", {"model": "sim-1"}),
            ("PUT", f"/v1/admin/keys/{other_keys[0]['id']}/limits", {"budget_usd": 1000}),
        ]
        for method, path, body in manage:
            answer = await client.request(method, path, json=body, headers=as_("admin"))
            assert answer.status_code == 404, (method, path, answer.text)
        built_on = {"name": "mine", "chain": [{"provider": "theirs", "model": "sim-1"}]}
        refused = await client.post("/v1/admin/workflows", json=built_on, headers=as_("admin"))
        assert refused.status_code == 422 and "theirs" in refused.text
        projects = (await client.get("/v1/admin/projects", headers=as_("admin"))).json()["projects"]
        assert [p["id"] for p in projects] == [world.gw.gateway.default_project_id]
        raised = await client.put(
            f"/v1/admin/projects/{other_project['id']}/limits", json={"budget_usd": 1e6}, headers=as_("other_admin")
        )
        assert raised.status_code == 403  # not even its own project's budget: the operator sets it

        for path, body in (
            ("/v1/ai", chat_body("hi", "their_flow")),
            ("/v1/chat/completions", {"model": "theirs/sim-1", "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/chat/completions", {"model": "their_flow", "messages": [{"role": "user", "content": "hi"}]}),
        ):
            answer = await client.post(path, json=body, headers=as_("api"))
            assert answer.status_code == 404, (path, answer.text)
        models = (await client.get("/v1/models", headers=as_("api"))).json()["data"]
        assert not {"their_flow", "theirs/sim-1"} & {m["id"] for m in models}

        # Their budget (set by the operator) caps their keys only, and their spend is not listed here.
        capped = await client.put(
            f"/v1/admin/projects/{other_project['id']}/limits", json={"budget_usd": 0}, headers=as_("master")
        )
        assert capped.status_code == 200, capped.text
        priced = {"model": FAST_MODEL, "messages": [{"role": "user", "content": "hi"}]}
        assert (await client.post("/v1/chat/completions", json=priced, headers=as_("api"))).status_code == 200
        spend = (await client.get("/v1/admin/spend", headers=as_("admin"))).json()
        assert not {k["key"] for k in spend["by_key"]} & {k["id"] for k in other_keys}

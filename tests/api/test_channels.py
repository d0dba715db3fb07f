"""WebSocket and SSE subscriptions: late connect, resume, one terminal event, heartbeats, fan-out, retention."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import StartGateway, chat_body, collect_ws, events_only, paced_config


async def submit(client: httpx.AsyncClient, text: str = "hello there") -> dict:
    response = await client.post("/v1/ai/async", json=chat_body(text))
    assert response.status_code == 202, response.text
    return response.json()


async def wait_finished(client: httpx.AsyncClient, channel_id: str) -> dict:
    async with asyncio.timeout(15):
        while True:
            record = (await client.get(f"/v1/requests/{channel_id}")).json()
            if record["status"] in ("completed", "failed"):
                return record
            await asyncio.sleep(0.02)


def assert_one_terminal_in_order(events: list[dict], first_seq: int = 1) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(first_seq, first_seq + len(events))), seqs
    terminals = [e for e in events if e["type"] in ("response", "error")]
    assert len(terminals) == 1 and events[-1] is terminals[0]


async def test_late_subscriber_gets_every_event_then_close(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with gw.client() as client:
        accepted = await submit(client)
        await wait_finished(client, accepted["channel_id"])  # connect only after the run is over
    events = events_only(await collect_ws(accepted["websocket_url"]))
    assert_one_terminal_in_order(events)
    types = [e["type"] for e in events]
    assert types[:3] == ["status", "status", "attempt"] and types[-1] == "response"
    assert events[0]["status"] == "queued" and events[1]["status"] == "running"
    assert "delta" in types and "partial" in types


async def test_websocket_resume_after_n_has_no_gap_and_no_duplicate(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 5))
    async with gw.client() as client:
        accepted = await submit(client)
    first = events_only(await collect_ws(accepted["websocket_url"], stop_after=6))
    last_seen = first[-1]["seq"]
    rest = events_only(await collect_ws(f"{accepted['websocket_url']}&after={last_seen}"))
    assert rest[0]["seq"] == last_seen + 1
    assert_one_terminal_in_order(first + rest)
    full = events_only(await collect_ws(accepted["websocket_url"]))
    assert full == first + rest


async def test_sse_resume_with_last_event_id(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 5))
    async with gw.client() as client:
        accepted = await submit(client)
        url = f"/v1/channels/{accepted['channel_id']}/events"

        async def read(headers: dict[str, str], limit: int | None) -> list[dict]:
            events: list[dict] = []
            async with client.stream("GET", url, params={"token": accepted["ws_token"]}, headers=headers) as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                async for line in resp.aiter_lines():
                    if line.startswith("id: "):
                        event_id = int(line[4:])
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        assert event["seq"] == event_id
                        events.append(event)
                        if limit is not None and len(events) >= limit:
                            break
            return events

        first = await read({}, 4)
        rest = await read({"Last-Event-ID": str(first[-1]["seq"])}, None)
        assert_one_terminal_in_order(first + rest)
        again = await client.get(
            url, params={"token": accepted["ws_token"]}, headers={"Last-Event-ID": str(rest[-1]["seq"])}
        )
        assert again.status_code == 204  # EventSource stops reconnecting after the terminal event


async def test_several_subscribers_each_get_the_full_stream(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 2))
    async with gw.client() as client:
        accepted = await submit(client)
    streams = await asyncio.gather(*(collect_ws(accepted["websocket_url"]) for _ in range(5)))
    reference = events_only(streams[0])
    assert_one_terminal_in_order(reference)
    for frames in streams[1:]:
        assert events_only(frames) == reference


async def test_heartbeats_while_idle(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 400), heartbeat_interval=0.1)
    async with gw.client() as client:
        accepted = await submit(client)
    frames = await collect_ws(accepted["websocket_url"], stop_after=5)
    heartbeats = [f for f in frames if f["type"] == "heartbeat"]
    assert heartbeats and all("seq" not in f and f["ts"].endswith("Z") for f in heartbeats)


async def test_retention_passed_sends_the_stored_result_explicitly(start_gateway: StartGateway) -> None:
    gw = await start_gateway(retention_seconds=0.05)
    async with gw.client() as client:
        accepted = await submit(client)
        record = await wait_finished(client, accepted["channel_id"])
        async with asyncio.timeout(5):
            while await gw.gateway.broker.log_info(accepted["channel_id"]) is not None:
                await asyncio.sleep(0.02)
    frames = events_only(await collect_ws(accepted["websocket_url"]))
    assert len(frames) == 1
    assert frames[0]["type"] == "response" and frames[0]["from_store"] is True
    assert frames[0]["data"] == record["data"]


@pytest.mark.parametrize("problem", ["other_channel", "expired", "tampered", "missing"])
async def test_bad_ws_token_closes_with_4xxx_and_reason(start_gateway: StartGateway, problem: str) -> None:
    gw = await start_gateway()
    async with gw.client() as client:
        first, second = await submit(client), await submit(client)
    signer = gw.gateway.signer
    token = {
        "other_channel": second["ws_token"],
        "expired": signer.ws_token(first["channel_id"], first["project_id"], ttl=-5),
        "tampered": first["ws_token"][:-3] + ("AAA" if not first["ws_token"].endswith("AAA") else "BBB"),
        "missing": "",
    }[problem]
    url = f"{gw.ws_url}/v1/ws?channel_id={first['channel_id']}&token={token}"
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    expected = 4403 if problem == "other_channel" else 4401
    assert closed.value.rcvd.code == expected
    assert closed.value.rcvd.reason


async def test_bad_sse_token_is_401_or_403(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with gw.client() as client:
        first, second = await submit(client), await submit(client)
        url = f"/v1/channels/{first['channel_id']}/events"
        other = await client.get(url, params={"token": second["ws_token"]}, headers={"Authorization": ""})
        assert other.status_code == 403 and other.json()["error"]["code"] == "wrong_channel"
        bad = await client.get(url, params={"token": "nonsense"}, headers={"Authorization": ""})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_token"
        unknown = await client.get("/v1/channels/nope/events", params={"token": first["ws_token"]})
        assert unknown.status_code == 403


async def test_ws_token_does_not_open_api_routes(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with gw.client() as client:
        accepted = await submit(client)
        response = await client.get(
            f"/v1/requests/{accepted['channel_id']}", headers={"Authorization": f"Bearer {accepted['ws_token']}"}
        )
        assert response.status_code == 401


async def test_a_fresh_token_opens_the_channel_after_the_first_expired(start_gateway: StartGateway) -> None:
    gw = await start_gateway(ws_token_ttl=60)
    async with gw.client() as client:
        accepted = await submit(client)
        await wait_finished(client, accepted["channel_id"])
        expired = gw.gateway.signer.ws_token(accepted["channel_id"], accepted["project_id"], ttl=-1)
        refreshed = (await client.post(f"/v1/channels/{accepted['channel_id']}/token")).json()
        other_project = await gw.gateway.store.ensure_project("elsewhere")
        outsider, _ = await gw.gateway.store.create_api_key(other_project, "outsider")
        refused = await client.post(
            f"/v1/channels/{accepted['channel_id']}/token", headers={"Authorization": f"Bearer {outsider}"}
        )
    assert refused.status_code == 404
    assert refreshed["ws_token"] != expired and refreshed["expires_in"] == 60
    events = events_only(await collect_ws(refreshed["websocket_url"]))
    assert events[-1]["type"] == "response"


async def test_leaving_an_idle_channel_frees_the_stream_slot_at_once(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    # A token a minute and no heartbeat for a minute: only noticing the client leave can give the slot back.
    gw = await start_gateway(
        config_path=paced_config(tmp_path, 60_000), heartbeat_interval=60, max_concurrent_streams=1
    )
    async with gw.client() as client:
        first, second = await submit(client), await submit(client)
    async with websockets.connect(first["websocket_url"]) as held:
        assert "seq" in json.loads(await held.recv())
        async with websockets.connect(second["websocket_url"]) as refused:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(refused.recv(), 5)
            assert closed.value.rcvd.code == 4429

    async def accepted() -> bool:
        async with websockets.connect(second["websocket_url"]) as ws:
            try:
                return "seq" in json.loads(await asyncio.wait_for(ws.recv(), 5))
            except websockets.ConnectionClosed:
                return False

    async with asyncio.timeout(5):  # far less than the next token or heartbeat
        while not await accepted():
            await asyncio.sleep(0.05)


async def test_frames_from_the_client_are_ignored(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 5))
    async with gw.client() as client:
        accepted = await submit(client)
    frames = []
    async with asyncio.timeout(15), websockets.connect(accepted["websocket_url"]) as ws:
        for text in ("hello", "again", "and again"):
            await ws.send(text)
        async for frame in ws:
            frames.append(json.loads(frame))
    assert ws.close_code == 1000
    assert_one_terminal_in_order(events_only(frames))


async def test_a_missing_channel_id_closes_with_4400(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with websockets.connect(f"{gw.ws_url}/v1/ws?token=x") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4400 and "channel_id" in closed.value.rcvd.reason


def awaiting_chain(task: asyncio.Task) -> list[str]:
    """`module:function` of each coroutine a task is suspended in, outermost first (as far as asyncio exposes them:
    not into an async generator)."""
    frames, awaiting = [], task.get_coro()
    while awaiting is not None and (frame := getattr(awaiting, "cr_frame", None)) is not None:
        frames.append(f"{frame.f_globals.get('__name__')}:{frame.f_code.co_qualname}")
        awaiting = awaiting.cr_await
    return frames


def serving_tasks(new: set[asyncio.Task]) -> list[list[str]]:
    """The chains of the server's connection tasks among `new`: those uvicorn runs the app in, and those waiting on
    its `receive` — not the test's own clients (same loop), nor the broker's (on Python 3.11 a Redis subscriber's
    `asyncio.wait_for` runs its wait as a task, whatever the transport)."""
    return [chain for chain in map(awaiting_chain, new) if chain and chain[0].startswith(("uvicorn.", "starlette."))]


async def test_an_idle_sse_subscriber_is_held_as_an_idle_websocket_one(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    # An idle subscriber costs the frames its tasks are suspended in, for as long as it waits: SSE is served as /v1/ws
    # is, before FastAPI's ~20 layers of middleware, routing and dependency frames (bench/fanout.py: memory per idle
    # subscriber of each).
    gw = await start_gateway(config_path=paced_config(tmp_path, 60_000), heartbeat_interval=60)
    async with gw.client() as client:
        accepted = await submit(client)
        before = asyncio.all_tasks()
        async with websockets.connect(accepted["websocket_url"]) as ws:
            assert json.loads(await ws.recv())["seq"] == 1
            ws_tasks = serving_tasks(asyncio.all_tasks() - before)
        before = asyncio.all_tasks()
        url, params = f"/v1/channels/{accepted['channel_id']}/events", {"token": accepted["ws_token"]}
        async with client.stream("GET", url, params=params) as sse:
            lines = sse.aiter_lines()
            while not (await anext(lines)).startswith("data: "):
                pass
            sse_tasks = serving_tasks(asyncio.all_tasks() - before)
    [sse_chain] = [chain for chain in sse_tasks if chain[0].endswith(".run_asgi")]  # the connection's task
    [ws_chain] = [chain for chain in ws_tasks if chain[0].endswith(".run_asgi")]
    layers = [frame for frame in sse_chain if frame.startswith(("fastapi.", "starlette."))]
    assert layers == [], layers
    assert len(sse_chain) <= len(ws_chain), (sse_chain, ws_chain)
    assert len(sse_tasks) == len(ws_tasks) == 2  # the connection's own task, and the one waiting for it to leave


@pytest.mark.parametrize("hot", [True, False])
async def test_sse_answers_the_same_served_bare_or_through_fastapi(
    start_gateway: StartGateway, tmp_path: Path, hot: bool
) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 0))
    app = gw.server.config.app
    if not hot:
        app.hot_path = None  # FastAPI's route serves it
    async with gw.client() as client:
        done, other = await submit(client), await submit(client)
        await wait_finished(client, done["channel_id"])
        url = f"/v1/channels/{done['channel_id']}/events"
        answers = {
            "no token": await client.get(url, headers={"Authorization": ""}),
            "bad token": await client.get(url, params={"token": "x.y.z"}),
            "other channel's token": await client.get(url, params={"token": other["ws_token"]}),
            "bad after": await client.get(url, params={"token": done["ws_token"], "after": "-1"}),
            "unknown channel": await client.get("/v1/channels/nope/events"),
            "seen the end": await client.get(url, params={"token": done["ws_token"], "after": "99999"}),
            "the stream": await client.get(url, params={"token": done["ws_token"]}),
        }
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "no token": 401,
        "bad token": 401,
        "other channel's token": 403,
        "bad after": 400,
        "unknown channel": 404,
        "seen the end": 204,
        "the stream": 200,
    }
    codes = {name: answer.json()["error"]["code"] for name, answer in answers.items() if answer.status_code >= 400}
    assert codes == {
        "no token": "missing_token",
        "bad token": "invalid_token",
        "other channel's token": "wrong_channel",
        "bad after": "invalid_after",
        "unknown channel": "channel_not_found",
    }
    stream = answers["the stream"]
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["cache-control"] == "no-cache" and stream.headers["x-request-id"]
    events = [json.loads(line[6:]) for line in stream.text.splitlines() if line.startswith("data: ")]
    assert stream.text.startswith("retry: 1000\n\n") and events[-1]["type"] == "response"
    assert_one_terminal_in_order(events)

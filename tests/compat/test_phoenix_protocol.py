"""The Phoenix v2 endpoint frame by frame, with a plain WebSocket client: handshake auth, heartbeats, join refusals,
leave, duplicate joins, malformed frames."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.compat.workflows import ask, start
from tests.conftest import RunningGateway, StartGateway
from tests.delivery.receiver import running_receiver


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ref = 0

    async def send(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        self.ref += 1
        await self.ws.send(json.dumps([join_ref, str(self.ref), topic, event, payload]))
        return str(self.ref)

    async def reply_to(self, ref: str, wait: float = 5) -> list[Any]:
        """The `phx_reply` to one push (pushes that arrive first are skipped)."""
        async with asyncio.timeout(wait):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame[3] == "phx_reply" and frame[1] == ref:
                    return frame

    async def until(self, topic: str, event: str, join_ref: str | None = None, wait: float = 10) -> list[list[Any]]:
        """Every frame up to the first `event` on `topic` (of that join, if given)."""
        frames = []
        async with asyncio.timeout(wait):
            while True:
                frame = json.loads(await self.ws.recv())
                frames.append(frame)
                if frame[2] == topic and frame[3] == event and join_ref in (None, frame[0]):
                    return frames


async def accepted(gw: RunningGateway, workflow: str = "text_only") -> dict[str, Any]:
    async with gw.client() as client:
        return (await client.post("/v1/ai/async", json=ask(workflow))).json()


def socket_url(gw: RunningGateway, token: str, vsn: str = "2.0.0") -> str:
    return f"{gw.ws_url}/socket/websocket?token={token}&vsn={vsn}"


async def test_handshake_refused_without_a_valid_token(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    good = (await accepted(gw))["ws_token"]
    for url in (socket_url(gw, "nope"), f"{gw.ws_url}/socket/websocket?vsn=2.0.0", socket_url(gw, good, "1.0.0")):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url):
                pass
        assert refused.value.response.status_code == 403


async def test_heartbeats_joins_and_refusals(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    first = await accepted(gw)
    channel, project = first["channel_id"], first["project_id"]
    async with websockets.connect(socket_url(gw, first["ws_token"])) as ws:
        client = Client(ws)
        beat = await client.reply_to(await client.send("phoenix", "heartbeat", {}))
        assert beat == [None, "1", "phoenix", "phx_reply", {"status": "ok", "response": {}}]

        other = str(uuid.uuid4())
        refusals = {
            f"ai_response:{project}:{other}": "unauthorized_channel_access",
            f"ai_response:proj_other:{channel}": "unauthorized_project_access",
            "ai_response:not-a-uuid": "invalid_channel_uuid",
            f"ai_response:bad project!:{channel}": "invalid_project_uuid",
            "ai_response:a:b:c": "invalid_channel_format",
            "ai_response:": "invalid_channel_format",
            "room:lobby": "unmatched topic",
        }
        for topic, reason in refusals.items():
            ref = await client.send(topic, "phx_join", {}, join_ref="j")
            reply = await client.reply_to(ref)
            assert reply[4] == {"status": "error", "response": {"reason": reason}}, topic
        bad_after = await client.reply_to(await client.send(first["websocket_channel"], "phx_join", {"after": -1}))
        assert bad_after[4]["response"] == {"reason": "invalid_after"}

        # a push on a topic that was never joined
        stray = await client.reply_to(await client.send(first["websocket_channel"], "heartbeat", {}))
        assert stray[4] == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_channel_heartbeat_leave_and_rejoin(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    first = await accepted(gw)
    topic = first["websocket_channel"]
    async with websockets.connect(socket_url(gw, first["ws_token"])) as ws:
        client = Client(ws)
        join = await client.send(topic, "phx_join", {}, join_ref="10")
        frames = await client.until(topic, "phx_close")
        assert frames[0][:4] == ["10", join, topic, "phx_reply"] and frames[0][4]["status"] == "ok"
        pushed = [frame for frame in frames[1:] if frame[3] != "phx_reply"]
        assert all(frame[0] == "10" and frame[1] is None for frame in pushed[:-1])  # pushes carry the join_ref
        assert [frame[4]["status"] for frame in pushed if frame[3] == "response"] == ["success"]

        # join again (the topic was closed): past the end, the topic just closes; from the start, the result again
        await client.send(topic, "phx_join", {"after": 10**9}, join_ref="20")
        frames = await client.until(topic, "phx_close", join_ref="20")
        assert [f[3] for f in frames] == ["phx_reply", "phx_close"]
        await client.send(topic, "phx_join", {}, join_ref="30")
        frames = await client.until(topic, "phx_close", join_ref="30")
        assert [f[4]["status"] for f in frames if f[3] == "response" and f[0] == "30"] == ["success"]

        unknown = await client.reply_to(await client.send("phoenix", "heartbeat", {}))
        assert unknown[4]["status"] == "ok"
        left = await client.reply_to(await client.send(topic, "phx_leave", {}, join_ref="30"))
        assert left[4]["status"] == "ok"


async def test_channel_heartbeat_unknown_events_and_rejoin_while_open(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start(start_gateway, tmp_path)
    # the callback step keeps the channel open: the receiver takes the webhook and never calls back (30 s window)
    async with running_receiver() as receiver, gw.client() as http:
        body = ask("mr_chatbot_workflow", webhook_url=receiver.url, events=["new_chat"])
        first = (await http.post("/v1/ai/async", json=body)).json()
        await receiver.next()
        topic = first["websocket_channel"]
        async with websockets.connect(socket_url(gw, first["ws_token"])) as ws:
            client = Client(ws)
            await client.send(topic, "phx_join", {}, join_ref="1")
            frames = await client.until(topic, "response", join_ref="1")
            assert frames[-1][4]["status"] == "ai_generated"
            beat = await client.reply_to(await client.send(topic, "heartbeat", {}, join_ref="1"))
            assert beat[4] == {"status": "ok", "response": {}}
            odd = await client.reply_to(await client.send(topic, "shout", {}, join_ref="1"))
            assert odd[4]["status"] == "error"

            # a second join of an open topic replaces the first: its join is closed, the new one replays
            await client.send(topic, "phx_join", {}, join_ref="2")
            frames = await client.until(topic, "response", join_ref="2")
            assert [f[0] for f in frames if f[3] == "phx_close"] == ["1"]
            assert frames[-1][4]["status"] == "ai_generated"

            left = await client.reply_to(await client.send(topic, "phx_leave", {}, join_ref="2"))
            assert left[4]["status"] == "ok"
            # after leaving, the topic is unknown to the socket
            stray = await client.reply_to(await client.send(topic, "heartbeat", {}, join_ref="2"))
            assert stray[4]["response"] == {"reason": "unmatched topic"}


async def test_malformed_frame_closes_the_socket(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    first = await accepted(gw)
    async with websockets.connect(socket_url(gw, first["ws_token"])) as ws:
        await ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat"}))  # the v1 object format
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


async def test_heartbeats_are_answered_while_a_join_reads_the_store(
    start_gateway: StartGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # phoenix.js drops a socket whose heartbeat goes unanswered for one heartbeat interval, and the join's reply
    # with it: a join that waits on a slow store must not hold the heartbeats up.
    gw = await start(start_gateway, tmp_path)
    first = await accepted(gw)
    store = gw.gateway.store
    read_store, released = asyncio.Event(), asyncio.Event()
    get_request = store.get_request

    async def slow_get_request(request_id: str) -> Any:
        read_store.set()
        await released.wait()
        return await get_request(request_id)

    topic = f"ai_response:{first['project_id']}:{first['channel_id']}"
    async with websockets.connect(socket_url(gw, first["ws_token"])) as ws:
        client = Client(ws)
        monkeypatch.setattr(store, "get_request", slow_get_request)
        join = await client.send(topic, "phx_join", {})
        await asyncio.wait_for(read_store.wait(), 5)
        beat = await client.reply_to(await client.send("phoenix", "heartbeat", {}), wait=2)
        assert beat[4]["status"] == "ok"  # answered while the join still waits for the store
        released.set()
        joined = await client.reply_to(join)
    assert joined[4]["status"] == "ok" and joined[4]["response"]["channel_id"] == first["channel_id"]

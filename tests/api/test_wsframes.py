"""Channel events written as frames built once (sluice/api/wsframes.py): the frames are valid, `sluice serve`'s setup
takes the direct path, and a connection it does not apply to (permessage-deflate) gets the same events through ASGI."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from sluice.api.wsframes import DirectFrames, frame_of
from tests.conftest import RunningGateway, StartGateway, chat_body


def parse(data: bytes) -> list[Frame]:
    """The frames in `data`, read by the `websockets` package's own parser (as a client reads a server's frames)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            raise AssertionError("incomplete frame")
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_frames_of_every_length_encoding_parse_back(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # multi-byte UTF-8: the length is the encoded one
    (frame,) = parse(frame_of(text))
    assert frame.opcode is Opcode.TEXT and frame.fin and frame.data.decode() == text


def test_a_batch_is_one_write_of_consecutive_frames() -> None:
    texts = ['{"seq":1}', "x" * 300, '{"seq":3}']
    assert [f.data.decode() for f in parse(b"".join(frame_of(t) for t in texts))] == texts


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many events went through `DirectFrames.write` (the real method still runs)."""
    counted: list[int] = []
    write = DirectFrames.write

    async def counting(self: DirectFrames, events: list[Any]) -> None:
        counted.append(len(events))
        await write(self, events)

    monkeypatch.setattr(DirectFrames, "write", counting)
    return counted


async def events_of(gw: RunningGateway) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=gw.url, headers=gw.headers, timeout=10) as client:
        accepted = (await client.post("/v1/ai/async", json=chat_body("tell me something"))).json()
    received = []
    async with asyncio.timeout(15), websockets.connect(accepted["websocket_url"]) as ws:
        async for message in ws:
            event = orjson.loads(message)
            if event["type"] != "heartbeat":
                received.append(event)
    return received


def check_stream(events: list[dict[str, Any]]) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and events[0]["type"] == "status"
    assert [e["type"] for e in events].count("response") == 1 and events[-1]["type"] == "response"
    streamed = "".join(e["text"] for e in events if e["type"] == "delta")  # the demo workflow answers JSON
    assert orjson.loads(streamed) == events[-1]["data"] and any(e["type"] == "partial" for e in events)


async def test_serves_setup_writes_frames_directly(gw: RunningGateway, writes: list[int]) -> None:
    events = await events_of(gw)
    check_stream(events)
    assert sum(writes) == len(events)  # every event went out as a prebuilt frame


async def test_a_compressed_connection_gets_the_same_events_through_asgi(
    start_gateway: StartGateway, writes: list[int]
) -> None:
    gw = await start_gateway(server_options={"ws_per_message_deflate": True})  # the client offers deflate
    check_stream(await events_of(gw))
    assert writes == []

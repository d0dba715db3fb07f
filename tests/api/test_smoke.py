import asyncio
import json

import websockets

from tests.conftest import RunningGateway, chat_body


async def test_async_request_streams_to_websocket(gw: RunningGateway) -> None:
    async with gw.client() as client:
        accepted = (await client.post("/v1/ai/async", json=chat_body("I love this"))).json()
    events = []
    async with websockets.connect(accepted["websocket_url"]) as ws:
        async with asyncio.timeout(10):
            async for frame in ws:
                event = json.loads(frame)
                if event["type"] != "heartbeat":
                    events.append(event)
    assert events[-1]["type"] == "response"
    assert events[-1]["data"]["sentiment"] == "positive"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

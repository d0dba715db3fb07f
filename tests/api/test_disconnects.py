"""A client of the chat APIs that hangs up before its answer stops the provider call (its request ends `cancelled`,
with what had streamed); a background response's does not: it is a durable job, meant to outlive its caller."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from sluice.testing import Script
from tests.cancelling import SLOW, Slow
from tests.delivery.helpers import admin_client, eventually

QUESTION = [{"role": "user", "content": "Tell me a long story."}]
LATE = Script(first_byte_delay=10.0)  # an answer that takes long to begin (a non-streamed call waits for all of it)


async def cancelled_by_its_client(slow: Slow, request_id: str) -> dict[str, Any]:
    """The request as the store has it, once its end is written (a pass-through is written behind its end)."""
    await slow.fake.wait_hangup(within=1.0)
    record = await eventually(lambda: slow.gw.gateway.store.get_request(request_id))
    assert record.status == "cancelled" and record.meta["cancel_reason"] == "client_disconnected"
    assert record.error["code"] == "cancelled"
    return {"data": record.data, "attempts": await slow.gw.gateway.store.list_attempts(request_id)}


async def read_until(lines: Any, marker: str) -> None:
    async with asyncio.timeout(5):
        while marker not in await anext(lines):
            pass


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "slow", "messages": QUESTION, "stream": True}),
        ("/v1/messages", {"model": "slow", "max_tokens": 500, "messages": QUESTION, "stream": True}),
        ("/v1/responses", {"model": "slow", "input": "Tell me a long story.", "stream": True}),
    ],
    ids=["chat-completions", "messages", "responses"],
)
async def test_a_streamed_answer_whose_client_leaves_stops_its_provider_call(
    slow: Slow, path: str, body: dict[str, Any]
) -> None:
    slow.fake.script(SLOW)
    async with slow.client() as client, client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        await read_until(response.aiter_lines(), "word1")
    # The client left (the connection is closed when the stream is).
    ended = await cancelled_by_its_client(slow, request_id)
    assert ended["data"]["content"].startswith("word0 word1")
    assert [a["status"] for a in ended["attempts"]] == ["cancelled"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "slow", "messages": QUESTION}),  # the hot path, before FastAPI
        ("/v1/messages", {"model": "slow", "max_tokens": 500, "messages": QUESTION}),
        ("/v1/responses", {"model": "slow", "input": "Tell me a long story."}),
    ],
    ids=["chat-completions", "messages", "responses"],
)
async def test_a_whole_answer_whose_client_gives_up_stops_its_provider_call(
    slow: Slow, path: str, body: dict[str, Any]
) -> None:
    slow.fake.script(LATE)
    async with slow.client() as client:
        with pytest.raises(httpx.ReadTimeout):  # the client's own timeout: it closes the connection
            await client.post(path, json=body, timeout=0.3)
    async with admin_client(slow.gw) as admin:  # its id was in the answer nobody got: the request log has it

        async def logged() -> list[dict[str, Any]]:
            return list((await admin.get("/v1/admin/requests")).json()["requests"])

        [request] = await eventually(logged)
    ended = await cancelled_by_its_client(slow, request["id"])
    assert ended["data"] is None and [a["status"] for a in ended["attempts"]] == ["cancelled"]
    assert slow.fake.hangups[0].chunks == 0  # it left before the first byte


async def test_a_background_response_outlives_its_streaming_client(slow: Slow) -> None:
    slow.fake.script(Script(chunk_delay=0.05, chunks=12))
    body = {"model": "slow", "input": "Take your time.", "stream": True, "background": True}
    async with slow.client() as client, client.stream("POST", "/v1/responses", json=body) as response:
        request_id = response.headers["x-request-id"]
        await read_until(response.aiter_lines(), "output_text.delta")
    record = await slow.gw.gateway.wait_terminal(request_id)
    assert record.type == "response" and slow.fake.hangups == []

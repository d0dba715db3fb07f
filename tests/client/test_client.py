"""The Python SDK against a real gateway on loopback (the `gw` fixture): no mocked transport."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel

from sluice.client import (
    Accepted,
    AsyncSluiceClient,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RequestFailed,
    SluiceClient,
    TransportError,
)
from tests.cancelling import SLOW, Slow
from tests.conftest import RunningGateway, StartGateway, free_port, paced_config, write_config


@pytest.fixture
async def gw(start_gateway: StartGateway, tmp_path: Path) -> RunningGateway:
    """A gateway whose simulated provider does not pause between tokens: these tests are about the SDK."""
    return await start_gateway(config_path=paced_config(tmp_path, 0))


class Chatbot(BaseModel):
    reply: str
    sentiment: Literal["positive", "negative", "neutral"]
    confidence: float


async def test_submit_then_stream_every_event_in_order(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 5))  # paced, so partial objects are not coalesced
    async with AsyncSluiceClient(gw.url, api_key=gw.api_key) as sluice:
        accepted = await sluice.submit("demo", "I love streaming", metadata={"conversationId": "c-1"})
        assert isinstance(accepted, Accepted)
        assert accepted.websocket_url.startswith(gw.ws_url) and accepted.ws_token
        assert accepted.browser_params() == {
            "channel_id": accepted.channel_id,
            "websocket_url": accepted.websocket_url,
            "ws_token": accepted.ws_token,
        }
        events = [event async for event in sluice.stream(accepted.channel_id)]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [e.type for e in events]
    assert kinds[0] == "status" and events[0]["status"] == "queued"
    assert "delta" in kinds and "partial" in kinds
    assert kinds[-1] == "response" and events[-1].terminal
    reply = events[-1].data["reply"]
    assert "I love streaming" in reply
    # The partial objects grow toward the final reply.
    partial_replies = [e.data.get("reply", "") for e in events if e.type == "partial"]
    assert all(reply.startswith(text) for text in partial_replies)
    assert len(set(partial_replies)) > 3


async def test_stream_after_resumes_and_wait_returns_the_result(gw: RunningGateway) -> None:
    async with AsyncSluiceClient(gw.url, api_key=gw.api_key) as sluice:
        accepted = await sluice.submit("demo", "resume me")
        everything = [event async for event in sluice.stream(accepted.channel_id)]
        tail = [event async for event in sluice.stream(accepted.channel_id, after=5)]
        assert [e.seq for e in tail] == [e.seq for e in everything[5:]]
        assert [event async for event in sluice.stream(accepted.channel_id, after=everything[-1].seq)] == []
        result = await sluice.wait(accepted.channel_id)
        assert result.data == everything[-1].data
        info = await sluice.get_request(accepted.channel_id)
    assert info.status == "completed" and info.finished
    assert info.data == result.data
    assert info.attempts and info.attempts[0]["status"] == "succeeded"


async def test_run_with_a_pydantic_schema_sends_its_json_schema(gw: RunningGateway) -> None:
    async with AsyncSluiceClient(gw.url, api_key=gw.api_key) as sluice:
        result = await sluice.run("demo", "thanks, this is great", schema=Chatbot)
    assert result.status == "completed"
    assert set(result.data) == {"reply", "sentiment", "confidence"}  # the model's schema, not the workflow's
    parsed = result.parse(Chatbot)
    assert parsed.sentiment == "positive" and 0 <= parsed.confidence <= 1
    record = await gw.gateway.store.get_request(result.channel_id)
    assert record is not None
    assert record.body["schema"] == Chatbot.model_json_schema()


async def test_api_errors_are_typed_exceptions(gw: RunningGateway) -> None:
    async with AsyncSluiceClient(gw.url, api_key="sk_sluice_not-a-key") as wrong:
        with pytest.raises(AuthenticationError) as auth:
            await wrong.submit("demo", "hi")
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"
    async with AsyncSluiceClient(gw.url, api_key=gw.api_key) as sluice:
        with pytest.raises(NotFoundError) as missing:
            await sluice.submit("no-such-workflow", "hi")
        assert missing.value.code == "workflow_not_found" and "demo" in missing.value.message
        with pytest.raises(NotFoundError):
            await sluice.get_request("00000000-0000-0000-0000-000000000000")
        with pytest.raises(BadRequestError) as invalid:
            await sluice.submit("demo", [])
        assert invalid.value.status_code == 422 and invalid.value.code == "invalid_request"
        with pytest.raises(NotFoundError):
            [event async for event in sluice.stream("00000000-0000-0000-0000-000000000000")]
    async with AsyncSluiceClient(f"http://127.0.0.1:{free_port()}", api_key="k", max_reconnects=0) as closed:
        with pytest.raises(TransportError):
            await closed.submit("demo", "hi")


async def test_a_failed_run_raises_request_failed(start_gateway: StartGateway, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        (
            "providers:\n"
            "  simulated: {type: simulated, pace_ms: 0}\n"
            "workflows:\n"
            "  broken:\n"
            "    chain: [{provider: simulated, model: sim-invalid-json-always}]\n"
            "    schema: {reply: string}\n"
        ),
    )
    gw = await start_gateway(config_path=config)
    async with AsyncSluiceClient(gw.url, api_key=gw.api_key) as sluice:
        with pytest.raises(RequestFailed) as failed:
            await sluice.run("broken", "hi")
        assert failed.value.channel_id and failed.value.code
        accepted = await sluice.submit("broken", "hi")
        with pytest.raises(RequestFailed):
            await sluice.wait(accepted.channel_id)


async def test_the_sync_client_does_the_same(gw: RunningGateway) -> None:
    def use_sync_client() -> tuple[list[str], str, str]:
        with SluiceClient(gw.url, api_key=gw.api_key) as sluice:
            accepted = sluice.submit("demo", "hello from a thread")
            kinds = [event.type for event in sluice.stream(accepted.channel_id)]
            status = sluice.get_request(accepted.channel_id).status
            reply = sluice.run("demo", "and again").data["reply"]
        return kinds, status, reply

    # The gateway runs in this test's event loop: the blocking client must run in another thread.
    kinds, status, reply = await asyncio.to_thread(use_sync_client)
    assert kinds[0] == "status" and kinds[-1] == "response"
    assert status == "completed"
    assert "and again" in reply


async def test_cancel_ends_the_request_sync_and_async(slow: Slow) -> None:
    slow.fake.script(SLOW, SLOW)
    async with AsyncSluiceClient(slow.gw.url, api_key=slow.gw.api_key) as sluice:
        accepted = await sluice.submit("slow", "a long story")
        async for event in sluice.stream(accepted.channel_id):
            if event.type == "delta":
                break  # it is streaming
        cancelled = await sluice.cancel(accepted.request_id)
        with pytest.raises(RequestFailed) as failed:
            await sluice.wait(accepted.channel_id)
    assert cancelled.finished and cancelled.status == "cancelled" and cancelled.data["content"].startswith("word0")
    assert failed.value.code == "cancelled"
    assert accepted.browser_params(cancellable=True)["cancel_url"] == accepted.cancel_url
    assert "cancel_url" not in accepted.browser_params()

    def use_sync_client() -> str:
        with SluiceClient(slow.gw.url, api_key=slow.gw.api_key) as sluice:
            accepted = sluice.submit("slow", "another")
            for event in sluice.stream(accepted.channel_id):
                if event.type == "delta":
                    break
            with pytest.raises(NotFoundError):
                sluice.cancel("req_unknown")
            return sluice.cancel(accepted.request_id).status

    assert await asyncio.to_thread(use_sync_client) == "cancelled"
    await slow.fake.wait_hangup(2, within=2.0)  # both provider calls were closed

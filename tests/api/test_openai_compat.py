"""`/v1/chat/completions` driven by the official `openai` package, unchanged, against the real gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import orjson
import pytest

from sluice.api.hotpath import SluiceAPI
from sluice.api.openai_compat import _usage
from sluice.testing import FakeProvider, Script
from tests.conftest import RunningGateway, StartGateway, write_config

FAKE_TEXT = "Claude-shaped answer streamed through the OpenAI face."
BACKUP_TEXT = "The backup's answer."


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeProvider, FakeProvider]]:
    async with FakeProvider("anthropic", text=FAKE_TEXT) as claude, FakeProvider("gemini", text=BACKUP_TEXT) as gem:
        yield claude, gem


@pytest.fixture
async def gateway(
    start_gateway: StartGateway, tmp_path: Path, fakes: tuple[FakeProvider, FakeProvider]
) -> RunningGateway:
    claude, gem = fakes
    config = write_config(
        tmp_path,
        f"""
providers:
  claude: {{type: anthropic, api_key: k, base_url: "{claude.base_url}"}}
  gem: {{type: gemini, api_key: k, base_url: "{gem.base_url}"}}
workflows:
  chat:
    chain:
      - {{provider: claude, model: claude-x, retries: 0, timeouts: {{first_token: 0.5, idle: 0.5}}}}
      - {{provider: gem, model: gemini-y}}
""",
    )
    return await start_gateway(config_path=config)


def client(gw: RunningGateway, api_key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=api_key or gw.api_key, max_retries=0, timeout=10)


async def test_not_streamed_provider_model(gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    async with client(gateway) as sdk:
        completion = await sdk.chat.completions.create(
            model="claude/claude-x",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            max_tokens=50,
        )
    assert completion.choices[0].message.content == FAKE_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    sent = fakes[0].requests[0]
    assert sent.body["model"] == "claude-x" and sent.body["system"] == "Be brief." and sent.body["max_tokens"] == 50


async def test_streamed_with_usage(gateway: RunningGateway) -> None:
    async with client(gateway) as sdk:
        stream = await sdk.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == FAKE_TEXT
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3  # really streamed
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


async def test_failover_before_first_token_is_invisible(
    gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]
) -> None:
    fakes[0].script(Script(status=529), Script(status=529))
    async with client(gateway) as sdk:
        completion = await sdk.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        stream = await sdk.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert completion.choices[0].message.content == BACKUP_TEXT
    assert streamed == BACKUP_TEXT


@pytest.mark.parametrize("streamed", [True, False])
async def test_a_cut_mid_stream_continues_on_the_next_provider_and_the_sdk_gets_the_whole_text(
    gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider], streamed: bool
) -> None:
    # Claude is cut mid-word; Gemini, asked to continue (by instruction), restates the word and goes on.
    fakes[0].script(Script(cut_at=FAKE_TEXT.index("answer") + 3))
    fakes[1].script(Script(text=FAKE_TEXT, restate="word"))
    async with client(gateway) as sdk:
        if streamed:
            stream = await sdk.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        else:
            completion = await sdk.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
            text = completion.choices[0].message.content or ""
    assert text == FAKE_TEXT  # no exception, every character once
    # Gemini got what had been delivered (what the gateway read before the cut: all of it, or less when the cut
    # came in the same read as the last bytes) as the answer to go on from.
    delivered = fakes[1].requests[-1].body["contents"][-2]["parts"][0]["text"]
    assert delivered and FAKE_TEXT.startswith(delivered) and len(delivered) <= FAKE_TEXT.index("answer") + 3


async def test_a_failure_after_streamed_text_that_cannot_continue_raises_in_the_stream(
    gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]
) -> None:
    fakes[0].script(Script(cut_after=3))
    fakes[1].script(Script(status=400))  # the provider that would continue refuses the request: the run fails
    async with client(gateway) as sdk:
        stream = await sdk.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        received = []
        with pytest.raises(openai.APIError, match="scripted failure: HTTP 400") as raised:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    assert FAKE_TEXT.startswith("".join(received)) and received
    assert (raised.value.type, raised.value.code) == ("invalid_request_error", "invalid_request")  # OpenAI's shape


async def test_errors_are_openai_errors(gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    messages = [{"role": "user", "content": "hi"}]
    async with client(gateway) as sdk:
        with pytest.raises(openai.NotFoundError, match="neither a workflow"):
            await sdk.chat.completions.create(model="nope", messages=messages)  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError, match="n must be 1"):
            await sdk.chat.completions.create(model="chat", messages=messages, n=2)  # type: ignore[arg-type]
        orphan = [*messages, {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}]
        with pytest.raises(openai.BadRequestError, match=r"messages\[1\]\.tool_call_id: 'call_9' answers no") as bad:
            await sdk.chat.completions.create(model="chat", messages=orphan)  # type: ignore[arg-type]
        assert (bad.value.type, bad.value.code, bad.value.param) == (
            "invalid_request_error",
            "invalid_request",
            "messages[1].tool_call_id",
        )
        fakes[0].script(Script(status=400))
        with pytest.raises(openai.BadRequestError, match="HTTP 400") as upstream:
            await sdk.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
        assert (upstream.value.type, upstream.value.code) == ("invalid_request_error", "invalid_request")
    assert fakes[1].requests == []  # a 400 fails fast: the backup was never asked
    async with client(gateway, api_key="sk-wrong") as sdk:
        with pytest.raises(openai.AuthenticationError) as unknown:
            await sdk.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
    assert (unknown.value.type, unknown.value.code) == ("authentication_error", "invalid_api_key")


async def test_schema_workflow_answers_json_text(gateway: RunningGateway) -> None:
    async with client(gateway) as sdk:
        completion = await sdk.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "I love it"}]
        )
    data = orjson.loads(completion.choices[0].message.content or "")
    assert data["sentiment"] == "positive"


async def test_a_completion_is_in_the_request_log_once_finished(gateway: RunningGateway) -> None:
    # A pass-through (sluice/passthrough.py): not recorded before its answer, written to the log just after it.
    async with gateway.client() as http:
        answer = await http.post(
            "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert answer.status_code == 200, answer.text
        request_id = answer.json()["id"].removeprefix("chatcmpl-")
        for _ in range(250):
            found = await http.get(f"/v1/requests/{request_id}")
            if found.status_code != 404:
                break
            await asyncio.sleep(0.02)
        assert found.status_code == 200, found.text
        record = found.json()
        assert record["status"] == "completed" and record["data"] == {"content": FAKE_TEXT}
        assert [a["status"] for a in record["attempts"]] == ["succeeded"]
        assert record["completed_at"] is not None


async def test_a_non_streamed_completion_is_non_streamed_upstream(start_gateway: StartGateway, tmp_path: Path) -> None:
    # Nobody reads the answer before it is whole, so the OpenAI-shaped provider is asked for one JSON answer; the
    # first-token deadline then cannot apply (the first text is the whole answer): only the total one does.
    async with FakeProvider("openai", text=FAKE_TEXT) as upstream:
        config = write_config(
            tmp_path,
            f"""
providers:
  up: {{type: openai-compatible, base_url: "{upstream.base_url}/v1"}}
workflows:
  chat:
    chain:
      - {{provider: up, model: m, retries: 0, timeouts: {{first_token: 0.3, total: 10}}}}
""",
        )
        gw = await start_gateway(config_path=config)
        messages = [{"role": "user", "content": "hi"}]
        async with client(gw) as sdk:
            upstream.script(Script(first_byte_delay=0.6))
            whole = await sdk.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
            assert whole.choices[0].message.content == FAKE_TEXT and whole.usage and whole.usage.completion_tokens
            assert upstream.requests[-1].body["stream"] is False

            upstream.script(Script(first_byte_delay=0.6))
            # Streamed, the first-token deadline applies; it passes before any token, so the answer is an HTTP error.
            with pytest.raises(openai.InternalServerError, match=r"no first token within 0\.3s") as raised:
                await sdk.chat.completions.create(
                    model="chat",
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                )
            assert (raised.value.status_code, raised.value.code) == (504, "provider_timeout")
            assert upstream.requests[-1].body["stream"] is True


# A streamed completion whose chain fails before its first token -------------------------------------------------


@pytest.fixture
async def once(start_gateway: StartGateway, tmp_path: Path, fakes: tuple[FakeProvider, FakeProvider]) -> RunningGateway:
    """One provider, no retry, no failover (its failure is the answer's), one stream at a time per key."""
    config = write_config(
        tmp_path,
        f"""
providers:
  claude: {{type: anthropic, api_key: k, base_url: "{fakes[0].base_url}"}}
workflows:
  once:
    chain:
      - {{provider: claude, model: claude-x, retries: 0}}
""",
    )
    return await start_gateway(config_path=config, max_concurrent_streams=1)  # heartbeat_interval: 0.5 s


def counting_releases(gw: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens of the stream slots given back to the broker, one entry per release that reached it."""
    released: list[str] = []
    broker = gw.gateway.quotas.broker
    release = broker.release_slot

    async def counted(key: str, token: str) -> None:
        released.append(token)
        await release(key, token)

    monkeypatch.setattr(broker, "release_slot", counted)
    return released


def serve_with(gw: RunningGateway, hot: bool) -> None:
    app = gw.server.config.app
    assert isinstance(app, SluiceAPI)
    if not hot:
        app.hot_path = None  # FastAPI's route serves it (the same handler)


STREAM = {"model": "once", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.mark.parametrize("hot", [True, False])
@pytest.mark.parametrize(("upstream", "status", "code"), [(429, 429, "rate_limited"), (400, 400, "invalid_request"),
                                                          (500, 502, "provider_unavailable")])  # fmt: skip
async def test_a_stream_failing_before_its_first_token_is_an_http_error(
    once: RunningGateway,
    fakes: tuple[FakeProvider, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    hot: bool,
    upstream: int,
    status: int,
    code: str,
) -> None:
    serve_with(once, hot)
    released = counting_releases(once, monkeypatch)
    fakes[0].script(Script(status=upstream))
    async with once.client() as http:
        failed = await http.post("/v1/chat/completions", json=STREAM)
        assert failed.status_code == status, failed.text
        assert failed.headers["content-type"] == "application/json" and failed.headers["x-request-id"]
        error = failed.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
        assert error["type"] == ("server_error" if status >= 500 else "rate_limit_error" if status == 429 else
                                 "invalid_request_error")  # fmt: skip
        assert len(released) == 1  # its slot, given back once
        # The key's only slot is free again: the next stream gets it.
        async with http.stream("POST", "/v1/chat/completions", json=STREAM) as ok:
            assert ok.status_code == 200
            lines = [line async for line in ok.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [orjson.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == FAKE_TEXT
    assert len(released) == 2 and len(set(released)) == 2


async def test_the_sdk_raises_the_status_error_of_a_stream_failing_before_its_first_token(
    once: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]
) -> None:
    fakes[0].script(Script(status=429), Script(status=429))
    async with client(once) as sdk:
        with pytest.raises(openai.RateLimitError) as raised:
            await sdk.chat.completions.create(model="once", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert (raised.value.status_code, raised.value.type, raised.value.code) == (429, "rate_limit_error", "rate_limited")


@pytest.mark.parametrize("hot", [True, False])
async def test_a_stream_failing_after_text_ends_with_an_in_stream_error_and_frees_its_slot(
    once: RunningGateway, fakes: tuple[FakeProvider, FakeProvider], monkeypatch: pytest.MonkeyPatch, hot: bool
) -> None:
    serve_with(once, hot)
    released = counting_releases(once, monkeypatch)
    fakes[0].script(Script(cut_after=2))
    async with once.client() as http, http.stream("POST", "/v1/chat/completions", json=STREAM) as cut:
        assert cut.status_code == 200
        lines = [line async for line in cut.aiter_lines() if line.startswith("data: ")]
    chunks = [orjson.loads(line.removeprefix("data: ")) for line in lines]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    streamed = "".join(c["choices"][0]["delta"]["content"] for c in chunks[1:-1])
    assert streamed and FAKE_TEXT.startswith(streamed)
    assert chunks[-1]["error"]["code"] == "stream_broken" and chunks[-1]["error"]["type"] == "server_error"
    assert "data: [DONE]" not in lines
    for _ in range(100):  # the response's own end gives the slot back, just after the last byte
        if released:
            break
        await asyncio.sleep(0.01)
    assert len(released) == 1


@pytest.mark.parametrize("hot", [True, False])
async def test_a_slow_first_token_gets_its_headers_at_the_heartbeat(
    once: RunningGateway, fakes: tuple[FakeProvider, FakeProvider], hot: bool
) -> None:
    # Past one heartbeat interval (0.5 s here) with no token the stream starts anyway, with a keep-alive; a failure
    # after that can only be an in-stream error.
    serve_with(once, hot)
    fakes[0].script(Script(first_byte_delay=1.5), Script(status=500, first_byte_delay=1.5))
    loop = asyncio.get_running_loop()
    async with once.client() as http:
        for ends_with in ("data: [DONE]", '"code":"provider_unavailable"'):
            started = loop.time()
            async with http.stream("POST", "/v1/chat/completions", json=STREAM) as slow:
                headers_after = loop.time() - started
                assert slow.status_code == 200 and slow.headers["x-request-id"]
                body = "".join([line + "\n" async for line in slow.aiter_lines()])
            assert headers_after < 1.2, headers_after
            assert body.index(": keep-alive") < body.index("data: ", body.index('"role":"assistant"') + 1)
            assert ends_with in body.rstrip().splitlines()[-1]


def test_usage_details_are_rendered_when_the_upstream_gave_them() -> None:
    assert _usage({"input_tokens": 12, "output_tokens": 5}) == {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
    }
    assert _usage({"input_tokens": 12, "output_tokens": 5, "cached_input_tokens": 8, "reasoning_tokens": 3}) == {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    assert "prompt_tokens_details" not in _usage({"input_tokens": 1, "cached_input_tokens": 0})
    assert _usage({}) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

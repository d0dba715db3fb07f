"""The fake providers themselves: scripting over HTTP, non-streamed answers, routes, and the CLI."""

from __future__ import annotations

import asyncio
import sys

import httpx
import orjson
import pytest

from sluice.testing import FakeProvider, Script


async def test_scripted_over_http_then_default_success() -> None:
    async with FakeProvider("openai") as fake, httpx.AsyncClient(base_url=fake.url) as client:
        queued = await client.post("/_fake/script", json=[{"status": 429, "retry_after": 2}, {"status": 503}])
        assert queued.json() == {"queued": 2}
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        limited = await client.post("/v1/chat/completions", json=body)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 503
        ok = await client.post("/v1/chat/completions", json=body)
        assert ok.status_code == 200 and ok.text.endswith("data: [DONE]\n\n")
        seen = (await client.get("/_fake/requests")).json()
        assert [r["path"] for r in seen] == ["/v1/chat/completions"] * 3
        bad = await client.post("/_fake/script", json={"stauts": 500})
        assert bad.status_code == 400 and "stauts" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    ("kind", "path", "body", "text_of"),
    [
        (
            "openai",
            "/v1/chat/completions",
            {"model": "m", "messages": []},
            lambda b: b["choices"][0]["message"]["content"],
        ),
        (
            "anthropic",
            "/v1/messages",
            {"model": "m", "max_tokens": 5, "messages": []},
            lambda b: b["content"][0]["text"],
        ),
        (
            "gemini",
            "/v1beta/models/m:generateContent",
            {"contents": []},
            lambda b: b["candidates"][0]["content"]["parts"][0]["text"],
        ),
        ("ollama", "/api/chat", {"model": "m", "messages": [], "stream": False}, lambda b: b["message"]["content"]),
    ],
)
async def test_not_streamed_answers(kind: str, path: str, body: dict, text_of: object) -> None:
    async with FakeProvider(kind, text="whole answer") as fake, httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.post(path, json=body)
        assert response.status_code == 200
        assert text_of(response.json()) == "whole answer"  # type: ignore[operator]
        assert (await client.post("/nowhere", json=body)).status_code == 404


async def test_chunk_delay_paces_the_stream() -> None:
    async with FakeProvider("ollama", text="a b c d") as fake, httpx.AsyncClient(base_url=fake.url) as client:
        fake.script(Script(chunk_delay=0.05))
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with client.stream("POST", "/api/chat", json={"model": "m", "messages": []}) as response:
            lines = [orjson.loads(line) async for line in response.aiter_lines() if line]
        assert loop.time() - started >= 0.15  # three gaps between four pieces
        assert "".join(line["message"]["content"] for line in lines) == "a b c d" and lines[-1]["done"]


async def test_cli_serves_a_fake() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice",
        "fake-provider",
        "--kind",
        "gemini",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(20):
            assert process.stdout is not None
            base_url = (await process.stdout.readline()).decode().strip()
            async with httpx.AsyncClient(base_url=base_url) as client:
                response = await client.post(
                    "/v1beta/models/g:streamGenerateContent",
                    params={"alt": "sse"},
                    json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                )
        assert response.status_code == 200 and '"finishReason":"STOP"' in response.text
    finally:
        process.terminate()
        await process.wait()


def test_script_pieces_and_validation() -> None:
    assert Script(text="abcdefghij", chunks=3).pieces("") == ["abc", "def", "ghij"]
    assert "".join(Script().pieces("one two three")) == "one two three"
    assert Script.from_dict({"cut_after": 2}).cut_after == 2
    with pytest.raises(ValueError, match="cut_afte"):
        Script.from_dict({"cut_afte": 2})


async def test_a_client_that_hangs_up_mid_answer_is_noticed_and_a_complete_one_is_not() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with FakeProvider("openai", text="one two three four five six") as fake:
        fake.script(Script(chunk_delay=0.05), Script(), Script(chunk_delay=10.0), Script(first_byte_delay=10.0))
        async with httpx.AsyncClient(base_url=fake.url) as client:
            whole = await client.post("/v1/chat/completions", json=body)  # paused between chunks, never left
            again = await client.post("/v1/chat/completions", json=body)  # the same connection, after the pauses
            assert whole.text.count("data:") == again.text.count("data:") and again.text.endswith("data: [DONE]\n\n")
            assert fake.hangups == []
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                await anext(response.aiter_bytes())  # the first chunk, then the client closes
            left = await fake.wait_hangup(within=2)
            assert left.path == "/v1/chat/completions" and left.chunks == 1
            with pytest.raises(httpx.ReadTimeout):  # gave up before the first byte
                await client.post("/v1/chat/completions", json=body, timeout=0.2)
            assert (await fake.wait_hangup(2, within=2)).chunks == 0
            assert len((await client.get("/_fake/hangups")).json()) == 2

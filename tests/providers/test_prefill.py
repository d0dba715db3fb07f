"""A continuation's prefill on the wire (`ProviderRequest.prefill`, sluice.engine.continuation): each adapter that
continues a last assistant turn sends one, as its provider documents it; the others refuse to send it."""

from __future__ import annotations

import pytest

from sluice.providers.anthropic import AnthropicProvider
from sluice.providers.base import Message, ProviderRequest
from sluice.providers.errors import PrefillRefused, Unsupported
from sluice.providers.ollama import OllamaProvider
from sluice.providers.openai import OpenAIProvider
from sluice.providers.openai_compatible import OpenAICompatibleProvider
from sluice.testing import FakeProvider, Script
from tests.providers.adapters import adapter, collect

ASKED = ProviderRequest(model="m", messages=(Message("user", "Say hello."),), prefill="Hello wo")
REFUSED = {
    "type": "error",
    "error": {"type": "invalid_request_error", "message": "This model does not support assistant message prefill."},
}


async def test_anthropic_sends_the_prefill_as_the_last_assistant_turn_and_the_fake_continues_it() -> None:
    async with (
        FakeProvider("anthropic", text="Hello world.") as fake,
        adapter(fake, AnthropicProvider, type="anthropic", api_key="k") as claude,
    ):
        chunks = await collect(claude, ASKED)
    assert fake.requests[-1].body["messages"][-1] == {"role": "assistant", "content": "Hello wo"}
    assert "".join(chunk.text for chunk in chunks) == "rld."


async def test_a_clients_own_prefill_in_a_messages_body_is_extended_not_replaced() -> None:
    native = {"body": {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Dear"}]}}
    body = AnthropicProvider("c", client=None).body(
        ProviderRequest(model="m", messages=(), native=native, prefill=" X")
    )  # type: ignore[arg-type]
    assert body["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Dear"}, {"type": "text", "text": " X"}],
    }


async def test_a_model_that_refuses_a_prefill_is_remembered() -> None:
    async with (
        FakeProvider("anthropic") as fake,
        adapter(fake, AnthropicProvider, type="anthropic", api_key="k") as claude,
    ):
        fake.script(Script(status=400, body=REFUSED))
        with pytest.raises(PrefillRefused, match="does not support assistant message prefill"):
            await collect(claude, ASKED)
        with pytest.raises(PrefillRefused):  # known now: refused without asking again
            await collect(claude, ASKED)
        assert len(fake.requests) == 1 and claude.without_prefill == {"m"}
        plain = await collect(claude, ProviderRequest(model="m", messages=ASKED.messages))  # no prefill: as usual
    assert plain


async def test_ollama_sends_the_prefill_as_the_last_assistant_message() -> None:
    async with (
        FakeProvider("ollama", text="Hello world.") as fake,
        adapter(fake, OllamaProvider, type="ollama") as ollama,
    ):
        chunks = await collect(ollama, ASKED)
    assert fake.requests[-1].body["messages"][-1] == {"role": "assistant", "content": "Hello wo"}
    assert "".join(chunk.text for chunk in chunks) == "rld."


async def test_a_compatible_server_gets_the_prefill_and_vllm_its_own_fields() -> None:
    async with FakeProvider("openai", text="Hello world.") as fake:
        record = {"type": "openai-compatible", "continuation": "prefill", "vllm_prefill": True}
        async with adapter(fake, OpenAICompatibleProvider, **record) as local:
            chunks = await collect(local, ASKED)
    body = fake.requests[-1].body
    assert body["messages"][-1] == {"role": "assistant", "content": "Hello wo"}
    assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)
    assert "".join(chunk.text for chunk in chunks) == "rld."


async def test_openai_never_sends_a_prefill() -> None:
    async with FakeProvider("openai") as fake, adapter(fake, OpenAIProvider, type="openai", api_key="k") as gpt:
        with pytest.raises(Unsupported, match="does not continue a prefilled answer"):
            await collect(gpt, ASKED)
        assert fake.requests == []

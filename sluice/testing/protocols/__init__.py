"""The wire formats the fakes speak: one module per provider protocol, the shared parts in `base`."""

from sluice.testing.protocols.anthropic import Anthropic
from sluice.testing.protocols.base import Answer, FakeCall, Frames, Protocol, fake_vector, sse
from sluice.testing.protocols.gemini import Gemini
from sluice.testing.protocols.ollama import Ollama
from sluice.testing.protocols.openai import OpenAI

PROTOCOLS: dict[str, type[Protocol]] = {p.kind: p for p in (OpenAI, Anthropic, Gemini, Ollama)}

__all__ = ["PROTOCOLS", "Answer", "FakeCall", "Frames", "Protocol", "fake_vector", "sse"]

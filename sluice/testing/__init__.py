"""Fake providers for rehearsing failures: real HTTP servers on loopback that speak OpenAI, Anthropic, Gemini or
Ollama and fail on request (status, Retry-After, late first byte, slow or stalled or cut stream, malformed chunk).

    async with FakeProvider("anthropic") as fake:
        fake.script(Script(status=529), Script(cut_after=3))
        ...  # point a provider's base_url at fake.base_url

From the command line: `sluice fake-provider --kind openai --port 9100`.
"""

from sluice.testing.script import Script
from sluice.testing.server import FakeProvider, Hangup, Received

__all__ = ["FakeProvider", "Hangup", "Received", "Script"]

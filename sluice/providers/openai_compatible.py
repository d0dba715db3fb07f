"""Any server that speaks OpenAI Chat Completions: rows of data, not modules.

`preset` fills in the base URL; `base_url` always wins. Local servers need no key.
"""

from __future__ import annotations

from typing import Any

from sluice.providers._http import Client
from sluice.providers.errors import NotConfigured
from sluice.providers.openai import OpenAIProvider

PRESETS: dict[str, str] = {
    "vllm": "http://127.0.0.1:8000/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "ollama": "http://127.0.0.1:11434/v1",
}


class OpenAICompatibleProvider(OpenAIProvider):
    kind = "openai-compatible"
    param_names: dict[str, str] = {}  # most compatible servers know `max_tokens`, not `max_completion_tokens`

    def __init__(
        self,
        name: str,
        *,
        client: Client,
        base_url: str | None = None,
        preset: str | None = None,
        **options: Any,
    ) -> None:
        if base_url is None:
            if preset not in PRESETS:
                raise NotConfigured(f"provider {name!r} needs base_url (or preset: one of {', '.join(PRESETS)})")
            base_url = PRESETS[preset]
        super().__init__(name, client=client, base_url=base_url, **options)

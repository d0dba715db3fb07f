"""Any server that speaks OpenAI Chat Completions: rows of data, not modules.

`preset` fills in the base URL (`options.PRESETS`); `base_url` always wins. Local servers need no key.
"""

from __future__ import annotations

from typing import Any

from sluice.providers._http import Client
from sluice.providers.errors import NotConfigured
from sluice.providers.openai import OpenAIProvider
from sluice.providers.options import PRESETS


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
        images: bool = True,
        tools: bool = True,
        vllm_prefill: bool = False,
        **options: Any,
    ) -> None:
        if base_url is None:
            if preset not in PRESETS:
                raise NotConfigured(f"provider {name!r} needs base_url (or preset: one of {', '.join(PRESETS)})")
            base_url = PRESETS[preset]
        super().__init__(name, client=client, base_url=base_url, **options)
        self.takes_images = images  # a text-only model (llama.cpp without a projector…): fail over, do not send
        self.takes_tools = tools
        self.takes_prefill = True  # sent when the engine asks (`continuation: prefill` in the provider's config)
        self.vllm_prefill = vllm_prefill

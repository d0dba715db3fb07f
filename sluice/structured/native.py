"""How each provider type is asked for schema-shaped JSON: its native mode where it has one, else a prompt.

`request_options(provider_type, schema)` returns `(mode, extra)`:

mode "native" — `extra` holds request-body fields that the adapter merges into its body as they are
(`providers._http.merge`, nested mappings merged key by key):

    openai              {"response_format": {"type": "json_schema",
                          "json_schema": {"name": "response", "schema": <openai_strict(schema)>, "strict": true}}}
    openai-compatible   the same `response_format` (LM Studio, llama.cpp server, Groq, Together, OpenRouter, …)
    vllm                {"structured_outputs": {"json": <schema>}}          (vLLM ≥ 0.10.2)
    vllm-legacy         {"guided_json": <schema>}                          (vLLM < 0.12, where guided_* still exist)
    anthropic           {"tools": [{"name": "respond", "description": …, "input_schema": <schema>}],
                         "tool_choice": {"type": "tool", "name": "respond"}}
                        The forced tool works on every Claude model. The answer then arrives as a `tool_use` block:
                        when streaming, as `content_block_delta` events whose `delta.type` is `input_json_delta`;
                        the adapter must yield each `delta.partial_json` string as `Chunk(text=…)` (for the block
                        of the forced tool only) so the run loop sees the JSON text as it would from any provider.
    anthropic-output    {"output_config": {"format": {"type": "json_schema", "schema": <openai_strict(schema)>}}}
                        Anthropic's structured-output option (Claude 4.5 and later only): plain text deltas.
    gemini              {"generationConfig": {"responseMimeType": "application/json",
                                              "responseSchema": <gemini(schema)>}}
    ollama              {"format": <schema>}
    simulated           {}  (the built-in provider honours `request.schema` itself)

mode "prompt" — for any other type: `extra` is `{"system": <instruction>}`, which is NOT a body field: the instruction
is appended to the request's system prompt (`prepare` does it). The answer is then found and repaired by `finalize`.

`prepare(request, provider_type)` applies either to a `ProviderRequest` and returns `(mode, request)`; the run loop
records the mode in the response's `meta.structured_output`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from sluice.providers.base import ProviderRequest
from sluice.structured.dialects import gemini, openai_strict

TOOL_NAME = "respond"
SCHEMA_NAME = "response"
# Servers that speak OpenAI's Chat Completions and accept `response_format: json_schema`.
OPENAI_LIKE = frozenset(
    {
        "openai-compatible",
        "lmstudio",
        "llama.cpp",
        "llamacpp",
        "groq",
        "together",
        "openrouter",
        "fireworks",
        "deepseek",
        "mistral",
        "xai",
    }
)


def request_options(provider_type: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(mode, extra request fields) for a provider type: mode is `native` or `prompt` (shapes in the module doc)."""
    if provider_type == "simulated":
        return "native", {}
    if provider_type == "openai" or provider_type in OPENAI_LIKE:
        return "native", {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "schema": openai_strict(schema), "strict": True},
            }
        }
    if provider_type == "vllm":
        return "native", {"structured_outputs": {"json": schema}}
    if provider_type == "vllm-legacy":
        return "native", {"guided_json": schema}
    if provider_type == "anthropic":
        return "native", {
            "tools": [
                {"name": TOOL_NAME, "description": "Give the answer in this exact structure.", "input_schema": schema}
            ],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }
    if provider_type == "anthropic-output":
        return "native", {"output_config": {"format": {"type": "json_schema", "schema": openai_strict(schema)}}}
    if provider_type == "gemini":
        config = {"responseMimeType": "application/json", "responseSchema": gemini(schema)}
        return "native", {"generationConfig": config}
    if provider_type == "ollama":
        return "native", {"format": schema}
    return "prompt", {"system": prompt_instruction(schema)}


def prompt_instruction(schema: dict[str, Any]) -> str:
    """The system-prompt text that asks a model without a native mode for the JSON object."""
    return (
        "Answer with a single JSON object and nothing else: no Markdown code fence, no text before or after it. "
        "It must match this JSON Schema exactly (all listed fields present, no other fields, enum values spelled "
        "exactly as given):\n" + orjson.dumps(schema).decode()
    )


def prepare(request: ProviderRequest, provider_type: str) -> tuple[str | None, ProviderRequest]:
    """`request` made to ask for its schema the way `provider_type` understands; (None, request) without a schema."""
    if request.schema is None:
        return None, request
    mode, extra = request_options(provider_type, request.schema)
    if mode == "prompt":
        system = "\n\n".join(part for part in (request.system, extra["system"]) if part)
        return mode, replace(request, system=system)
    return mode, replace(request, extra={**request.extra, **extra})

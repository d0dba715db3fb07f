"""How a provider is asked for schema-shaped JSON, by dialect: its native mode where it has one, else a prompt.

The registry (`sluice.providers.registry`) says which dialects each provider type speaks; where it speaks several,
its `structured_output` option chooses. `request_options(dialect, schema)` returns `(mode, extra)`:

mode "native" — `extra` holds request-body fields that the adapter merges into its body as they are
(`providers._http.merge`, nested mappings merged key by key):

    response_format     {"response_format": {"type": "json_schema",
                          "json_schema": {"name": "response", "schema": <openai_strict(schema)>, "strict": true}}}
                        OpenAI, and most OpenAI-compatible servers (vLLM ≥ 0.6, llama.cpp server, LM Studio, Groq,
                        Together, OpenRouter)
    structured_outputs  {"structured_outputs": {"json": <schema>}}          vLLM's own field (≥ 0.10.2)
    guided_json         {"guided_json": <schema>}                          vLLM before 0.12, which removed it
    tool                {"tools": [{"name": "respond", "description": …, "input_schema": <schema>}],
                         "tool_choice": {"type": "tool", "name": "respond"}}
                        Anthropic's forced tool, on every Claude model. The answer arrives as a `tool_use` block,
                        streamed as `content_block_delta` events with `delta.type == "input_json_delta"`; the adapter
                        yields each `delta.partial_json` (of the forced tool's block only) as `Chunk(text=…)`.
    output_format       {"output_config": {"format": {"type": "json_schema", "schema": <anthropic_json(schema)>}}}
                        Anthropic's JSON outputs (newer models only): the answer is ordinary text deltas.
    response_schema     {"generationConfig": {"responseMimeType": "application/json",
                                              "responseSchema": <gemini(schema)>}}
    format              {"format": <schema>}                                Ollama
    simulated           {}  (the built-in provider honours `request.schema` itself)

mode "prompt" — dialect `prompt`: `extra` is `{"system": <instruction>}`, which is NOT a body field: the instruction
is appended to the request's system prompt (`prepare` does it). The answer is then found and repaired by `finalize`.

`prepare(request, dialect)` applies either to a `ProviderRequest` and returns `(mode, request)`; the run loop
records the mode in the response's `meta.structured_mode`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from sluice.providers.base import ProviderRequest
from sluice.structured.dialects import anthropic_json, gemini, openai_strict

TOOL_NAME = "respond"
SCHEMA_NAME = "response"
PROMPT = "prompt"


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "schema": openai_strict(schema), "strict": True},
        }
    }


def _tool(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "tools": [
            {"name": TOOL_NAME, "description": "Give the answer in this exact structure.", "input_schema": schema}
        ],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
    }


def _response_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"generationConfig": {"responseMimeType": "application/json", "responseSchema": gemini(schema)}}


# Native dialect → the request fields that ask for `schema` (shapes in the module doc).
NATIVE: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "response_format": _response_format,
    "structured_outputs": lambda schema: {"structured_outputs": {"json": schema}},
    "guided_json": lambda schema: {"guided_json": schema},
    "tool": _tool,
    "output_format": lambda schema: {
        "output_config": {"format": {"type": "json_schema", "schema": anthropic_json(schema)}}
    },
    "response_schema": _response_schema,
    "format": lambda schema: {"format": schema},
    "simulated": lambda schema: {},
}
DIALECTS = frozenset({*NATIVE, PROMPT})


def request_options(dialect: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(mode, extra request fields) for a dialect: mode is `native` or `prompt` (shapes in the module doc)."""
    if dialect == PROMPT:
        return "prompt", {"system": prompt_instruction(schema)}
    build = NATIVE.get(dialect)
    if build is None:  # the registry names only dialects that exist here (tests/providers/test_registry.py)
        raise LookupError(f"no structured-output dialect {dialect!r}; known: {', '.join(sorted(DIALECTS))}")
    return "native", build(schema)


def prompt_instruction(schema: dict[str, Any]) -> str:
    """The system-prompt text that asks a model without a native mode for the JSON object."""
    return (
        "Answer with a single JSON object and nothing else: no Markdown code fence, no text before or after it. "
        "It must match this JSON Schema exactly (all listed fields present, no other fields, enum values spelled "
        "exactly as given):\n" + orjson.dumps(schema).decode()
    )


def prepare(request: ProviderRequest, dialect: str) -> tuple[str | None, ProviderRequest]:
    """`request` made to ask for its schema in `dialect`; (None, request) without a schema."""
    if request.schema is None:
        return None, request
    mode, extra = request_options(dialect, request.schema)
    if mode == "prompt":
        system = "\n\n".join(part for part in (request.system, extra["system"]) if part)
        return mode, replace(request, system=system)
    return mode, replace(request, extra={**request.extra, **extra})

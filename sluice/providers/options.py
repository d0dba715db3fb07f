"""What each provider type accepts in its config record: one pydantic model per type, unknown keys refused.

The registry (`sluice.providers.registry`) names each type's model. An adapter is constructed with the validated
options that were set, as keyword arguments, minus the engine's own (`ENGINE_OPTIONS`), so its own defaults apply
to the rest; the models repeat those defaults for the console to show (tests/providers/test_registry.py checks that
they agree). Options marked secret (`secret()`) must be stored as credentials, encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from sluice.durations import parse_duration

# `openai-compatible` presets: a server's usual base URL, so a config can say `preset: groq`.
PRESETS: dict[str, str] = {
    "vllm": "http://127.0.0.1:8000/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "ollama": "http://127.0.0.1:11434/v1",
}
# Options the engine reads itself; the adapter never sees them.
ENGINE_OPTIONS = frozenset({"breaker", "structured_output", "continuation", "prices"})
_CONTINUATION = (
    'How an answer cut mid-stream elsewhere is continued here (docs/providers.md, "Continuation"): prefill (the '
    "text so far as the start of this provider's answer), instruction (the text so far, then a request to go on from "
    "its last character), or off (the answer starts over)."
)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # YAML `true` is no count of anything; pydantic would take it as 1
        raise ValueError(f"expected a number, not {value!r}")
    return value


def _url(value: str) -> str:
    scheme, _, rest = value.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise ValueError(f"expected an http:// or https:// URL, not {value!r}")
    return value


def _keep_alive(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(
            f"expected a duration such as 5m, or seconds (0: unload at once, -1: keep loaded), not {value!r}"
        )
    return value


def _preset(value: str) -> str:
    if value not in PRESETS:
        raise ValueError(f"must be one of {', '.join(PRESETS)}, not {value!r}")
    return value


def _off(value: Any) -> Any:
    return "off" if value is False else value  # YAML reads a bare `off` as false


Count = Annotated[int, Field(ge=1), BeforeValidator(_not_bool)]
# How an answer cut elsewhere is continued on a provider type (`sluice.engine.continuation`): what it can do.
Prefilled = Annotated[Literal["prefill", "instruction", "off"], BeforeValidator(_off)]
Instructed = Annotated[Literal["instruction", "off"], BeforeValidator(_off)]
Milliseconds = Annotated[float, Field(ge=0), BeforeValidator(_not_bool)]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": ["number", "string"], "description": "seconds, or a duration such as 30s, 500ms, 5m"}),
]
URL = Annotated[str, AfterValidator(_url)]
Preset = Annotated[str, AfterValidator(_preset)]
# Ollama takes a duration string or a number of seconds; one validator, so an error names `keep_alive` alone.
KeepAlive = Annotated[str | int, PlainValidator(_keep_alive), WithJsonSchema({"type": ["string", "integer"]})]


def secret(description: str) -> Any:
    """A field that holds a credential: refused in plain `options` by the admin API, never shown back."""
    return Field(default=None, description=description, json_schema_extra={"secret": True})


@dataclass(frozen=True)
class BreakerPolicy:
    """`breaker: {failures: 3, cooldown: 30s, probe_timeout: 60s}` (see `sluice.engine.breaker`)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    failures: Count = 5  # health failures in a row that open the breaker
    cooldown: Duration = 30.0  # how long it stays open
    probe_timeout: Duration = 60.0  # a probe that never reported back no longer blocks the next one


USD = Annotated[float, Field(ge=0), BeforeValidator(_not_bool)]


@dataclass(frozen=True)
class TokenPrices:
    """`prices: {my-model: {input: 0.15, output: 0.6}}`: USD per million tokens (`sluice.spend.prices`); cache reads
    and writes cost the input price unless set."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    input: USD = 0.0
    output: USD = 0.0
    cache_read: USD | None = None
    cache_write: USD | None = None


class Options(BaseModel):
    """Options every provider type takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    breaker: BreakerPolicy = Field(
        default=BreakerPolicy(),
        description="Circuit breaker: after that many failures in a row the provider is skipped for the "
        "cooldown, then probed.",
    )
    prices: dict[str, TokenPrices] | None = Field(
        default=None,
        description="Prices by model, USD per million tokens ('*': any model), over genai-prices' table; a server "
        "of your own costs nothing without them.",
    )


class SimulatedOptions(Options):
    pace_ms: Milliseconds = Field(default=20, description="Pause between streamed tokens, in ms (0: no pause).")
    continuation: Annotated[Literal["prefill", "off"], BeforeValidator(_off)] = Field(
        default="prefill", description=_CONTINUATION
    )


class HTTPOptions(Options):
    api_key: str | None = secret("The API key, sent where the provider's API expects it.")
    headers: dict[str, str] | None = secret("Extra request headers, sent as they are (they may carry credentials).")


class OpenAIOptions(HTTPOptions):
    base_url: URL | None = Field(default=None, description="Default: https://api.openai.com/v1.")
    stream_usage: bool = Field(default=True, description="Ask for the token counts at the end of the stream.")
    merge_reads: bool = Field(default=True, description="The events of one network read become one delta.")
    continuation: Instructed = Field(default="instruction", description=_CONTINUATION)


class OpenAICompatibleOptions(OpenAIOptions):
    base_url: URL | None = Field(default=None, description="The server's URL up to /v1; wins over preset.")
    preset: Preset | None = Field(
        default=None,
        description="A known server's usual base URL.",
        json_schema_extra={"enum": list(PRESETS)},
    )
    structured_output: Literal["response_format", "structured_outputs", "guided_json", "prompt"] = Field(
        default="response_format",
        description="How a schema is asked for: OpenAI's response_format (most servers), vLLM's structured_outputs "
        "or its older guided_json, or a prompt instruction.",
    )
    images: bool = Field(
        default=True,
        description="The served model takes image parts; false: a request with images fails over instead.",
    )
    tools: bool = Field(
        default=True,
        description="The server does tool calling; false: a request with tools fails over instead.",
    )
    continuation: Annotated[Literal["instruction", "prefill", "off"], BeforeValidator(_off)] = Field(  # type: ignore[assignment]
        default="instruction",
        description=_CONTINUATION + " prefill: for a server that continues a last assistant message (llama.cpp, "
        "OpenRouter; vLLM with vllm_prefill).",
    )
    vllm_prefill: bool = Field(
        default=False,
        description="With continuation: prefill, also send vLLM's continue_final_message: true and "
        "add_generation_prompt: false (vLLM continues a last assistant message only when asked to).",
    )

    @model_validator(mode="after")
    def _has_a_url(self, info: ValidationInfo) -> OpenAICompatibleOptions:
        unset = (info.context or {}).get("unset", ())  # a URL from a `${VAR}` not yet set cannot be judged
        if self.base_url is None and self.preset is None and not {"base_url", "preset"} & set(unset):
            raise ValueError(f"needs base_url, or a preset: one of {', '.join(PRESETS)}")
        return self


class AnthropicOptions(HTTPOptions):
    base_url: URL = Field(default="https://api.anthropic.com", description="The API's URL, without /v1.")
    max_tokens: Count = Field(default=4096, description="The answer's length limit, which the API requires.")
    structured_output: Literal["tool", "output_format"] = Field(
        default="tool",
        description="How a schema is asked for: a forced tool (every Claude model) or the JSON output format "
        "(output_config.format; newer models only).",
    )
    continuation: Prefilled = Field(
        default="prefill",
        description=_CONTINUATION + " A model that refuses a prefill (Claude 4.6 and later) is asked by instruction.",
    )


class GeminiOptions(HTTPOptions):
    base_url: URL = Field(default="https://generativelanguage.googleapis.com", description="The API's URL.")
    continuation: Instructed = Field(default="instruction", description=_CONTINUATION)


class OllamaOptions(HTTPOptions):
    base_url: URL = Field(default="http://127.0.0.1:11434", description="The Ollama server's URL.")
    keep_alive: KeepAlive | None = Field(
        default=None, description="How long the model stays loaded after a request (5m, 0, -1); default: Ollama's."
    )
    continuation: Prefilled = Field(default="prefill", description=_CONTINUATION)

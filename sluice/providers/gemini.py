"""Google Gemini (`POST /v1beta/models/{model}:streamGenerateContent?alt=sse`, embeddings by
`POST /v1beta/models/{model}:batchEmbedContents`).

Each SSE `data:` is a `GenerateContentResponse`: `candidates[0].content.parts[]` holds text parts and `functionCall`
parts (a call arrives whole, its `args` an object), `finishReason` is on the last candidate, `usageMetadata` has the
token counts. There is no `[DONE]`: a `finishReason` ends the answer. Errors are `{"error": {"code", "message",
"status"}}` (sometimes wrapped in a list). docs/translation.md has the field-by-field table.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any
from urllib.parse import quote

import orjson

from sluice.providers._calls import WholeCalls
from sluice.providers._http import Client, drain, merge, open_stream, parse_chunk, sse_events
from sluice.providers.base import (
    Chunk,
    EmbeddingRequest,
    Embeddings,
    Message,
    ProviderRequest,
    Usage,
    system_and_turns,
)
from sluice.providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    StreamBroken,
    Unsupported,
)
from sluice.providers.messages import ImagePart, Tool, ToolChoice

# Portable parameters → `generationConfig` fields; others a chain entry sets go as written (Gemini's own names).
_PARAM_NAMES = {
    "max_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
    "stop": "stopSequences",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
_STREAM_ERRORS: dict[str, type[ProviderError]] = {
    "RESOURCE_EXHAUSTED": RateLimited,
    "INVALID_ARGUMENT": InvalidRequest,
    "FAILED_PRECONDITION": InvalidRequest,
    "PERMISSION_DENIED": AuthenticationFailed,
    "UNAUTHENTICATED": AuthenticationFailed,
}
# The answer was withheld: the same request would be withheld anywhere, so it fails fast (InvalidRequest).
_BLOCKED = frozenset({"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"})
# The model wrote a call the API could not use: another attempt (or provider) may do better.
_BAD_CALL = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
# Gemini 3 (and now 2.5) rejects a replayed `functionCall` without its `thoughtSignature`. Sluice's conversation
# model (OpenAI's `tool_calls`) has no place for the signature, so replayed calls carry the documented sentinel
# that skips the check (ai.google.dev/gemini-api/docs/thought-signatures#faqs), on the first call of each turn.
SKIP_SIGNATURE = "skip_thought_signature_validator"


class GeminiProvider:
    kind = "gemini"

    def __init__(
        self,
        name: str,
        *,
        client: Client,
        api_key: str | None = None,
        base_url: str = "https://generativelanguage.googleapis.com",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.headers = {**({"x-goog-api-key": api_key} if api_key else {}), **(headers or {})}

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        """The `GenerateContentRequest`; raises `Unsupported` for what Gemini cannot be sent (before any I/O)."""
        system, turns = system_and_turns(request)
        body: dict[str, Any] = {"contents": contents(turns)}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if request.tools:
            body["tools"] = [{"functionDeclarations": [declaration(tool) for tool in request.tools]}]
            if request.tool_choice is not None:
                body["toolConfig"] = {"functionCallingConfig": calling_config(request.tool_choice)}
        config = generation_config(request)
        if config:
            body["generationConfig"] = config
        return merge(body, request.extra)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        body = self.body(request)
        url = f"{self.base_url}/v1beta/models/{quote(request.model, safe='')}:streamGenerateContent"
        reader = AnswerReader(self.name)
        async with open_stream(
            self.client,
            self.name,
            url,
            body,
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
            params={"alt": "sse"},
        ) as response:
            events = sse_events(response)
            async for _, data in events:
                for chunk in reader.read(parse_chunk(self.name, data)):
                    yield chunk
                if reader.finished:
                    await drain(events)
                    return
        raise StreamBroken(f"{self.name}: the stream ended without a finishReason")

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        model = "models/" + request.model.removeprefix("models/")
        one: dict[str, Any] = {"model": model}
        if request.dimensions is not None:
            one["outputDimensionality"] = request.dimensions
        body = {"requests": [{**one, "content": {"parts": [{"text": text}]}} for text in request.inputs]}
        url = f"{self.base_url}/v1beta/{quote(model, safe='/')}:batchEmbedContents"
        async with open_stream(
            self.client,
            self.name,
            url,
            body,
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
        ) as response:
            raw = await response.read()
        answer = parse_chunk(self.name, raw)
        found = answer.get("embeddings") if isinstance(answer, dict) else None
        if not isinstance(found, list) or len(found) != len(request.inputs):
            raise StreamBroken(f"{self.name}: unexpected embeddings answer ({raw[:80]!r})")
        # The documented answer has no token counts: usage stays zero.
        return Embeddings(vectors=tuple(tuple((item or {}).get("values") or ()) for item in found))

    async def aclose(self) -> None:
        return None


class AnswerReader:
    """Turns the stream's `GenerateContentResponse`s into chunks, numbering the calls across them."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls = WholeCalls()
        self.finished = False

    def read(self, payload: Any) -> Iterator[Chunk]:
        if not isinstance(payload, dict):
            raise StreamBroken(f"{self.provider}: unexpected chunk in the stream ({str(payload)[:80]!r})")
        if payload.get("error"):
            status = (payload["error"] or {}).get("status", "")
            cls = _STREAM_ERRORS.get(status, ProviderUnavailable)
            raise cls(f"{self.provider} failed mid-stream: {describe_error(payload)}")
        blocked = (payload.get("promptFeedback") or {}).get("blockReason")
        if blocked and not payload.get("candidates"):
            raise InvalidRequest(f"{self.provider} refused the prompt: blockReason {blocked}")
        candidate = (payload.get("candidates") or [{}])[0]
        texts, calls = [], []
        for part in (candidate.get("content") or {}).get("parts") or ():
            if part.get("thought"):
                continue  # thinking summaries are not the answer
            if isinstance(part.get("functionCall"), dict):
                call = part["functionCall"]
                arguments = orjson.dumps(call.get("args") or {}).decode()
                calls.append(self.calls.delta(call.get("id"), call.get("name"), arguments))
            elif part.get("text"):
                texts.append(part["text"])
        if texts:
            yield Chunk(text="".join(texts))
        if calls:
            yield Chunk(tool_calls=tuple(calls))
        finish = candidate.get("finishReason")
        if not finish:
            return
        if finish in _BLOCKED:
            raise InvalidRequest(f"{self.provider} stopped the answer: finishReason {finish}")
        if finish in _BAD_CALL:
            raise ProviderError(f"{self.provider} could not use the model's function call: finishReason {finish}")
        metadata = payload.get("usageMetadata") or {}
        thoughts = metadata.get("thoughtsTokenCount") or 0  # billed as output, as OpenAI counts reasoning
        usage = Usage(
            metadata.get("promptTokenCount") or 0,
            (metadata.get("candidatesTokenCount") or 0) + thoughts,
            cached_input_tokens=metadata.get("cachedContentTokenCount") or 0,
            reasoning_tokens=thoughts,
        )
        reason = "tool_calls" if self.calls.count else "length" if finish == "MAX_TOKENS" else "stop"
        self.finished = True
        yield Chunk(usage=usage if metadata else None, finish_reason=reason)


def contents(turns: list[Message]) -> list[dict[str, Any]]:
    """The conversation as `contents`: assistant turns are `model` turns with `functionCall` parts; tool results are
    `functionResponse` parts of a `user` turn, consecutive ones in the same turn."""
    out: list[dict[str, Any]] = []
    called: dict[str, str] = {}  # call id → function name, from the assistant turns so far
    results: list[dict[str, Any]] | None = None  # the parts of the open tool-result turn
    for index, message in enumerate(turns):
        if message.role == "tool":
            name = message.name or called.get(message.tool_call_id or "")
            if not name:
                raise InvalidRequest(f"messages[{index}]: a tool result that names no function and answers no call")
            response: dict[str, Any] = {"name": name, "response": tool_output(message.text)}
            if message.tool_call_id:
                response = {"id": message.tool_call_id, **response}
            if results is None:
                results = []
                out.append({"role": "user", "parts": results})
            results.append({"functionResponse": response})
            continue
        results = None
        if message.role == "assistant":
            parts: list[dict[str, Any]] = [{"text": message.text}] if message.text else []
            for number, call in enumerate(message.tool_calls):
                called[call.id] = call.name
                args = call_arguments(call.arguments, call.name)
                part: dict[str, Any] = {"functionCall": {"id": call.id, "name": call.name, "args": args}}
                if number == 0:
                    part["thoughtSignature"] = SKIP_SIGNATURE
                parts.append(part)
            out.append({"role": "model", "parts": parts or [{"text": ""}]})
        else:
            out.append({"role": "user", "parts": [user_part(part, index) for part in message.parts] or [{"text": ""}]})
    return out


def user_part(part: Any, index: int) -> dict[str, Any]:
    if not isinstance(part, ImagePart):
        return {"text": part.text}
    inline = part.inline
    if inline is None:
        # fileData takes a Files API or Cloud Storage URI, not a link to fetch: another provider may take it.
        raise Unsupported(f"messages[{index}]: Gemini takes images inline (a data: URL), not by link")
    return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}


def call_arguments(arguments: str, name: str) -> dict[str, Any]:
    """`args` of a replayed call: Gemini takes an object, not the text the model wrote."""
    try:
        parsed = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise Unsupported(f"the arguments of the call to {name!r} are not a JSON object, which Gemini requires")
    return parsed


def tool_output(text: str) -> dict[str, Any]:
    """`response` of a tool result: a JSON object as it is, anything else as `{"output": text}` (the documented
    key for a function's output)."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"output": text}


def declaration(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    # A function without arguments has no `parameters` (Gemini refuses an OBJECT with no properties).
    if tool.parameters.get("properties") or tool.parameters.get("type") not in ("object", None):
        out["parameters"] = gemini_schema(tool.parameters)
    return out


def calling_config(choice: ToolChoice) -> dict[str, Any]:
    config: dict[str, Any] = {"mode": _MODES[choice.mode]}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return config


def generation_config(request: ProviderRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, value in request.params.items():
        if key == "stop" and isinstance(value, str):
            value = [value]
        config[_PARAM_NAMES.get(key, key)] = value
    wanted = request.response_format
    if wanted is not None:
        config["responseMimeType"] = "application/json"
        if wanted.type == "json_schema" and wanted.schema:
            config["responseSchema"] = gemini_schema(wanted.schema)
    return config


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` in Gemini's OpenAPI subset. Imported on use: `structured` builds on `providers`, not the reverse
    (tests/test_layering.py)."""
    from sluice.structured.dialects import gemini

    return gemini(schema)


def describe_error(body: Any) -> str | None:
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('message', '')} ({error.get('status', error.get('code', 'error'))})"
    return None

"""The built-in `simulated` provider: deterministic, schema-valid output streamed token by token.

It is not a model. It answers from the words of the last user message so that the demo, the tests and the benchmarks
run with no API key, and it says so in its reply.

Scripted misbehaviour, chosen by the model name, exercises the structured-output repair paths end to end:

    sim-extra-text       prose and a Markdown fence around the JSON            → repaired, no re-ask
    sim-trailing-comma   a trailing comma and the final `}` missing             → repaired, no re-ask
    sim-invalid-json     an unquoted key (not repairable)                       → re-asked, valid on the re-ask
    sim-missing-field    the last required field left out                       → re-asked, valid on the re-ask
    sim-wrong-enum       the first enum field set to a value not in the enum    → re-asked, valid on the re-ask
    sim-<fault>-always   the same fault on the re-ask too                       → the run fails over

A re-ask is recognised by `ProviderRequest.reasks` (set by `structured.reask`); any other model name behaves normally.
A continuation's prefill (`ProviderRequest.prefill`) is continued: the same answer from where the prefill ends.

Tools, whatever the model name, decided in this order:

    the last message is a tool result    a text answer that quotes the result (each result, for parallel calls)
    tool_choice "none"                   the usual text answer
    tool_choice names a tool             a call of that tool
    the last user message names tools    a call of each tool it names (`get_weather`, or `get weather`), in the
                                         order of `tools`; only the first with `parallel_tool_calls: false`
    tool_choice "required"               a call of the first tool
    otherwise                            the usual text answer

A call's arguments are a value of the tool's `parameters` schema made by the same generator as structured output,
streamed as `ToolCallDelta`s: a first piece with the call's id (`call_` + a hash of the tool and the prompt) and name,
then the arguments' JSON text in three pieces; the finish reason is `tool_calls`.

Embeddings (`embed`): one unit vector per input, `dimensions` long (256 by default): each word of the input adds ±1
to a coordinate chosen by the word's hash, so texts that share words are close (cosine similarity) and the same text
always embeds the same (a text without words gets a vector from its hash). Usage counts the inputs' words.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from sluice.providers.base import Chunk, EmbeddingRequest, Embeddings, ProviderRequest, Usage
from sluice.providers.messages import Message, Tool, ToolCallDelta

_POSITIVE = {"love", "great", "thanks", "thank", "good", "happy", "excellent", "nice", "awesome", "glad", "like"}
_NEGATIVE = {"hate", "bad", "angry", "broken", "problem", "issue", "terrible", "awful", "slow", "bug", "wrong", "sad"}
_STOPWORDS = {"the", "and", "that", "this", "with", "have", "what", "your", "from", "about", "would", "could", "there"}
_TOKEN = re.compile(r"\s*\S{1,6}|\s+")
FAULTS = ("extra-text", "trailing-comma", "invalid-json", "missing-field", "wrong-enum")
DIMENSIONS = 256  # of an embedding, unless the request asks for another size
ARGUMENT_PIECES = 3  # a tool call's arguments are streamed in this many pieces


class SimulatedProvider:
    """Streams a deterministic answer; `pace_ms` is the pause between tokens (0 for benchmarks)."""

    def __init__(self, name: str = "simulated", pace_ms: float = 20, **_: Any) -> None:
        self.name = name
        self.pace = float(pace_ms) / 1000

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        prompt = _last_user_text(request)
        pace = float(request.params.get("pace_ms", self.pace * 1000)) / 1000
        results = _tool_results(request.messages)
        calls = [] if results else _tools_to_call(request, prompt)
        if calls:
            pieces = 0
            for index, tool in enumerate(calls):
                call_id = "call_" + hashlib.sha256(f"{index}:{tool.name}:{prompt}".encode()).hexdigest()[:24]
                yield Chunk(tool_calls=(ToolCallDelta(index=index, id=call_id, name=tool.name),))
                for piece in _split(_arguments(tool, prompt), ARGUMENT_PIECES):
                    if pace:
                        await asyncio.sleep(pace)
                    pieces += 1
                    yield Chunk(tool_calls=(ToolCallDelta(index=index, arguments=piece),))
            usage = Usage(input_tokens=len(prompt.split()), output_tokens=pieces)
            yield Chunk(usage=usage, finish_reason="tool_calls")
            return
        if results:
            text = _quote_results(results, request.messages)
        elif request.schema is not None:
            value = _Generator(prompt).value(request.schema, "")
            text = _misbehave(request, value) or orjson.dumps(value).decode()
        else:
            text = _reply(prompt)
        if request.prefill and text.startswith(request.prefill):  # a continuation: the rest of the same answer
            text = text[len(request.prefill) :]
        tokens = _TOKEN.findall(text)
        cap = request.params.get("max_tokens")
        finish = "stop"
        # As a model does, a plain answer stops at its limit (a schema-shaped one stays whole: cut, it would fail
        # validation, and the demo's answers are meant to be valid).
        if request.schema is None and isinstance(cap, int) and 0 < cap < len(tokens):
            tokens, finish = tokens[:cap], "length"
        for token in tokens:
            if pace:
                await asyncio.sleep(pace)
            yield Chunk(text=token)
        yield Chunk(usage=Usage(input_tokens=len(prompt.split()), output_tokens=len(tokens)), finish_reason=finish)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        size = request.dimensions or DIMENSIONS
        vectors = tuple(embedding(text, size) for text in request.inputs)
        return Embeddings(vectors=vectors, usage=Usage(input_tokens=sum(len(t.split()) for t in request.inputs)))

    async def aclose(self) -> None:
        return None


def embedding(text: str, size: int) -> tuple[float, ...]:
    """A deterministic unit vector for `text` (see the module doc): hashed words, so shared words mean closeness."""
    vector = [0.0] * size
    for word in _words(text):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % size] += 1.0 if digest[4] & 1 else -1.0
    if not any(vector):  # no words, or words that cancelled out: a vector from the whole text's hash
        digest = hashlib.sha256(text.encode()).digest()
        vector = [((digest[i % len(digest)] + 7 * i) % 251) / 125.0 - 1.0 for i in range(size)]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return tuple(round(v / norm, 6) for v in vector)


def _tools_to_call(request: ProviderRequest, prompt: str) -> list[Tool]:
    """The tools this answer calls (see the module doc); none: a text answer."""
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode == "none"):
        return []
    if choice is not None and choice.mode == "tool":
        return [tool for tool in request.tools if tool.name == choice.name][:1]
    named = [tool for tool in request.tools if _mentions(prompt, tool.name)]
    if named:
        return named[:1] if request.parallel_tool_calls is False else named
    if choice is not None and choice.mode == "required":
        return [request.tools[0]]
    return []


def _mentions(text: str, name: str) -> bool:
    spoken = re.sub(r"[_-]+", " ", name)
    return any(re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", text, re.IGNORECASE) for form in {name, spoken})


def _arguments(tool: Tool, prompt: str) -> str:
    value = _Generator(prompt).value(tool.parameters, "")
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def _split(text: str, count: int) -> list[str]:
    """`text` in `count` pieces (fewer when it is shorter), joined back exactly."""
    size = max(-(-len(text) // count), 1)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _tool_results(messages: tuple[Message, ...]) -> list[Message]:
    """The tool results that end the conversation (several after parallel calls), in order."""
    found: list[Message] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        found.append(message)
    return found[::-1]


def _quote_results(results: list[Message], messages: tuple[Message, ...]) -> str:
    names = {call.id: call.name for message in messages for call in message.tool_calls}
    quotes = []
    for result in results:
        name = result.name or names.get(result.tool_call_id or "") or "the tool"
        quoted = result.text.strip().replace("\n", " ")
        if len(quoted) > 200:
            quoted = quoted[:197] + "..."
        quotes.append(f"{name} returned \u201c{quoted}\u201d.")
    return (
        " ".join(quotes) + " I am Sluice's simulated provider, not a language model, so this answer only quotes the "
        "tool's result."
    )


def _fault(request: ProviderRequest) -> str | None:
    """The scripted fault this request should show, or None (see the module doc)."""
    name = request.model.removeprefix("sim-")
    always = name.endswith("-always")
    fault = name.removesuffix("-always")
    if fault not in FAULTS:
        return None
    return fault if always or not request.reasks else None


def _misbehave(request: ProviderRequest, value: Any) -> str | None:
    fault = _fault(request)
    if fault is None or not isinstance(value, dict) or not value:
        return None
    text = orjson.dumps(value).decode()
    if fault == "extra-text":
        return f"Sure! Here is the JSON you asked for:\n```json\n{text}\n```\nLet me know if you need anything else."
    if fault == "trailing-comma":
        return text[:-1] + ",\n"
    if fault == "invalid-json":
        return re.sub(r'^\{"([^"]+)":', r"{\1:", text)
    if fault == "wrong-enum" and (path := _first_enum_path(request.schema or {}, value)) is not None:
        target = value
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = f"not-{target[path[-1]]}"
        return orjson.dumps(value).decode()
    value.pop(list(value)[-1])  # missing-field, and wrong-enum for a schema without an enum
    return orjson.dumps(value).decode()


def _first_enum_path(schema: dict[str, Any], value: Any) -> list[Any] | None:
    if isinstance(value, dict):
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key, {})
            if "enum" in sub and isinstance(item, str):
                return [key]
            found = _first_enum_path(sub, item)
            if found is not None:
                return [key, *found]
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_enum_path(schema.get("items", {}), item)
            if found is not None:
                return [index, *found]
    return None


def _last_user_text(request: ProviderRequest) -> str:
    """The user's question: the last user message before the gateway's own turns (re-asks, continuations)."""
    asked = request.messages[: max(len(request.messages) - request.gateway_turns, 0)]
    for message in reversed(asked):
        if message.role == "user":
            return message.text
    return request.messages[-1].text if request.messages else ""


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z'-]+", text.lower())


def _topics(text: str) -> list[str]:
    seen: list[str] = []
    for word in sorted(_words(text), key=len, reverse=True):
        if len(word) > 3 and word not in _STOPWORDS and word not in seen:
            seen.append(word)
    return seen[:3] or ["general"]


def _reply(prompt: str) -> str:
    quoted = prompt.strip().replace("\n", " ")
    if len(quoted) > 120:
        quoted = quoted[:117] + "..."
    topics = ", ".join(_topics(prompt))
    return (
        f"You said: \u201c{quoted}\u201d. I am Sluice's simulated provider, not a language model, so this answer is "
        f"built from your own words (topics: {topics}). Add an API key for OpenAI, Anthropic, Gemini or a local "
        "server to the config and this workflow will answer with a real model, streamed the same way."
    )


class _Generator:
    """Builds a value valid for a JSON Schema, choosing contents from the prompt."""

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        self.seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")

    def value(self, schema: dict[str, Any], name: str) -> Any:
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.choose_enum([v for v in schema["enum"] if v is not None] or schema["enum"], name)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
                return self.value(options[0], name)
        if "allOf" in schema:
            return self.value(schema["allOf"][0], name)
        kind = schema.get("type", "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        return getattr(self, f"make_{kind}", self.make_string)(schema, name)

    def make_object(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        properties = schema.get("properties", {})
        return {key: self.value(sub, key) for key, sub in properties.items()}

    def make_array(self, schema: dict[str, Any], name: str) -> list[Any]:
        items = schema.get("items", {"type": "string"})
        count = max(int(schema.get("minItems", 0)), min(int(schema.get("maxItems", 2)), 2))
        if items.get("type", "string") == "string" and "enum" not in items:
            return (
                [t for t in _topics(self.prompt)][: max(count, 1)]
                if name == "topics"
                else [f"{name or 'item'} {i + 1}" for i in range(count)]
            )
        return [self.value(items, f"{name}[{i}]") for i in range(count)]

    def make_string(self, schema: dict[str, Any], name: str) -> str:
        if name == "reply":
            return _reply(self.prompt)
        if name == "summary":
            return f"The user wrote {len(_words(self.prompt))} words about {', '.join(_topics(self.prompt))}."
        if name.endswith("task") or name == "task":
            return f"Follow up on {_topics(self.prompt)[0]}"
        return f"simulated {name or 'value'}"

    def make_number(self, schema: dict[str, Any], name: str) -> float:
        low, high = float(schema.get("minimum", 0)), float(schema.get("maximum", 1))
        return round(low + (high - low) * (0.6 + (self.seed % 39) / 100), 2)

    def make_integer(self, schema: dict[str, Any], name: str) -> int:
        return int(schema.get("minimum", 0)) + self.seed % 10

    def make_boolean(self, schema: dict[str, Any], name: str) -> bool:
        return self.seed % 2 == 0

    def make_null(self, schema: dict[str, Any], name: str) -> None:
        return None

    def choose_enum(self, options: list[Any], name: str) -> Any:
        words = set(_words(self.prompt))
        wanted = None
        if words & _POSITIVE and words & _NEGATIVE:
            wanted = "mixed"
        elif words & _POSITIVE:
            wanted = "positive"
        elif words & _NEGATIVE:
            wanted = "negative"
        elif "neutral" in options:
            wanted = "neutral"
        if wanted in options:
            return wanted
        return options[self.seed % len(options)]

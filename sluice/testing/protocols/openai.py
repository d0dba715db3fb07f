"""The OpenAI Chat Completions wire format (`POST /v1/chat/completions`) and embeddings (`POST /v1/embeddings`).

A tool call streams as OpenAI streams it: a first piece `{"index", "id", "type": "function", "function": {"name",
"arguments": ""}}` (sent in the same frame as the call's first arguments piece, so the frame count is the answer's
units), then `{"index", "function": {"arguments": piece}}`; `finish_reason` is then `tool_calls`. Usage has OpenAI's
`prompt_tokens_details` / `completion_tokens_details` (zeros: the fake has no cache and does not reason). A script's
`thinking` streams first as `delta.reasoning_content` pieces (`message.reasoning_content` when not streamed), as
compatible servers (DeepSeek, vLLM, llama.cpp) send reasoning; OpenAI itself sends none.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

from sluice.testing.protocols.base import Answer, FakeCall, Frames, Protocol, fake_vector, sse

DIMENSIONS = 1536  # of a vector when the request asks for no `dimensions` (text-embedding-3-small's)


class OpenAI(Protocol):
    kind = "openai"

    def matches(self, path: str) -> bool:
        return path.endswith("/chat/completions")

    def frames(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> Frames:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

        middle = [chunk({"content": piece}) for piece in answer.pieces]
        for index, call in enumerate(answer.calls):
            pieces = [chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in call.pieces]
            opening = chunk({"tool_calls": [_opening(index, call)]})
            middle += [opening + pieces[0], *pieces[1:]] if pieces else [opening]
        finish = "tool_calls" if answer.calls else "stop"
        usage = sse({**base, "choices": [], "usage": answer.usage or _usage(tokens_in, answer.units)})
        opening = chunk({"role": "assistant", "content": "", "refusal": None})
        reasoning = [chunk({"reasoning_content": piece}) for piece in answer.thinking]
        return [opening, *reasoning], middle, [chunk({}, finish), usage, b"data: [DONE]\n\n"]

    def complete(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
        if answer.thinking:
            message["reasoning_content"] = "".join(answer.thinking)
        if answer.calls:
            message["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in answer.calls
            ]
        elif not answer.text:
            message["content"] = ""
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if answer.calls else "stop",
                }
            ],
            "usage": answer.usage or _usage(tokens_in, answer.units),
        }

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
        code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def stream_error(self) -> bytes:
        return sse(
            {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        )

    def embeds(self, path: str) -> bool:
        return path.endswith("/embeddings")

    def embeddings(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One `embedding` per input, in order: floats, or base64 of little-endian float32s as OpenAI encodes them."""
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else list(raw or ())
        dimensions = body.get("dimensions") or DIMENSIONS
        data = []
        for index, text in enumerate(inputs):
            vector: Any = fake_vector(str(text), dimensions)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(str(text).split()) for text in inputs)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", "fake-model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _opening(index: int, call: FakeCall) -> dict[str, Any]:
    return {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}


def _usage(tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }

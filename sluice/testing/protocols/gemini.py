"""The Gemini `generateContent` / `streamGenerateContent` / `batchEmbedContents` wire format.

A tool call is a `functionCall` part with its `args` as an object; Gemini sends calls whole, so the stream carries
all of an answer's calls in one chunk (one middle frame, where a script's faults may strike), after the text and
before the chunk with `finishReason: STOP`. The first call part carries a `thoughtSignature`, as Gemini 3 models
send; a call's `id` is sent only when the script gave one (older models give none).
"""

from __future__ import annotations

from typing import Any

from sluice.testing.protocols.base import Answer, FakeCall, Frames, Protocol, fake_vector, sse

DIMENSIONS = 768  # of a vector when the request asks for no `outputDimensionality`
SIGNATURE = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="


class Gemini(Protocol):
    kind = "gemini"
    malformed = b'data: {"candidates": [{"content": {"parts": [{"text": \n\n'

    def matches(self, path: str) -> bool:
        return path.startswith("/v1beta/models/") and path.endswith((":streamGenerateContent", ":generateContent"))

    def model(self, path: str, body: dict[str, Any]) -> str:
        return path.removeprefix("/v1beta/models/").rsplit(":", 1)[0]

    def streams(self, path: str, body: dict[str, Any]) -> bool:
        return path.endswith(":streamGenerateContent")

    def turns(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            (
                "assistant" if content.get("role") == "model" else "user",
                "".join(part.get("text", "") for part in content.get("parts") or () if isinstance(part, dict)),
            )
            for content in body.get("contents") or ()
            if isinstance(content, dict)
        ]

    def frames(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> Frames:
        usage = answer.usage or _usage(tokens_in, answer.units)

        def chunk(parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            return sse({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model})

        middle = [chunk([{"text": piece}]) for piece in answer.pieces]
        if answer.calls:
            middle.append(chunk(_call_parts(answer.calls)))
        return [], middle, [chunk([{"text": ""}], "STOP")]

    def complete(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> dict[str, Any]:
        parts = ([{"text": answer.text}] if answer.text or not answer.calls else []) + _call_parts(answer.calls)
        return {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": answer.usage or _usage(tokens_in, answer.units),
            "modelVersion": model,
        }

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
            504: "DEADLINE_EXCEEDED",
        }
        return {"error": {"code": status, "message": message, "status": kind.get(status, "UNKNOWN")}}

    def stream_error(self) -> bytes:
        return sse(
            {
                "error": {
                    "code": 503,
                    "message": "The model is overloaded. Please try again later.",
                    "status": "UNAVAILABLE",
                }
            }
        )

    def embeds(self, path: str) -> bool:
        return path.startswith("/v1beta/models/") and path.endswith(":batchEmbedContents")

    def embeddings(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """`{"embeddings": [{"values": […]}, …]}`, one per request, in order (the documented answer has no token
        counts)."""
        out = []
        for request in body.get("requests") or ():
            text = "".join(part.get("text", "") for part in (request.get("content") or {}).get("parts") or ())
            out.append({"values": fake_vector(text, request.get("outputDimensionality") or DIMENSIONS)})
        return {"embeddings": out}


def _call_parts(calls: tuple[FakeCall, ...]) -> list[dict[str, Any]]:
    parts = []
    for index, call in enumerate(calls):
        function: dict[str, Any] = {"name": call.name, "args": call.arguments_object}
        if call.id != f"call_fake_{index}":  # the script named it: send it, as newer models do
            function = {"id": call.id, **function}
        part: dict[str, Any] = {"functionCall": function}
        if index == 0:
            part["thoughtSignature"] = SIGNATURE
        parts.append(part)
    return parts


def _usage(tokens_in: int, tokens_out: int) -> dict[str, int]:
    total = tokens_in + tokens_out
    return {"promptTokenCount": tokens_in, "candidatesTokenCount": tokens_out, "totalTokenCount": total}

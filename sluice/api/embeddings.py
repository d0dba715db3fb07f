"""`POST /v1/embeddings`: OpenAI's embeddings API over a workflow's provider chain.

`model` names a workflow (its chain gives retries, failover and the circuit breaker) or `provider/model`. The request
runs as a pass-through like a chat completion (`sluice.passthrough`): at once in this process, in the request log
with its attempts once it has finished. Its kind is `embeddings` (`sluice.engine.embed` runs it); the log keeps the
inputs (the request body) and a summary of the answer, never the vectors, which reach this handler only through the
outcome's `result`.

`input` is a string or a list of strings. Token-id arrays (lists of integers), which OpenAI also accepts, are refused
with a 4xx: no provider but OpenAI's own takes them, and Sluice does not tokenize. `encoding_format: base64` answers
each vector as the base64 of its little-endian float32 bytes, as OpenAI does (the `openai` package asks for it by
default and decodes it). `user` is accepted and kept with the request; it is not sent to the provider. Errors are in
OpenAI's shape, a body that fails validation a 400 naming the field in `param` (`sluice.api.errors`).
"""

from __future__ import annotations

import asyncio
import base64
import struct
from functools import lru_cache
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from sluice import surfaces
from sluice.api.auth import ApiKey, gateway_of
from sluice.api.errors import OPENAI_ERROR_RESPONSES
from sluice.api.faces import json_response, workflow_named
from sluice.api.openai_compat import failure_response
from sluice.lifecycle.plan import EMBEDDINGS
from sluice.lifecycle.states import COMPLETED
from sluice.providers.base import Embeddings

router = APIRouter(tags=["openai"])
MAX_INPUTS = 2048  # OpenAI's limit per request
MAX_INPUT_CHARS = 1_000_000


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request body. Unknown fields are refused (they would otherwise be silently dropped)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=300, description="A workflow name, or `provider/model`.")
    input: list[str] = Field(description="A string or a list of strings (token-id arrays are not supported).")
    dimensions: int | None = Field(default=None, gt=0, le=65_536)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = Field(default=None, max_length=256)

    @field_validator("input", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list):
            raise ValueError("expected a string or a list of strings")
        if not texts:
            raise ValueError("must not be empty")
        if len(texts) > MAX_INPUTS:
            raise ValueError(f"at most {MAX_INPUTS} inputs per request, got {len(texts)}")
        for index, text in enumerate(texts):
            if isinstance(text, int | list) and not isinstance(text, bool):
                raise ValueError("token-id arrays are not supported: send the text, as a string or a list of strings")
            if not isinstance(text, str):
                raise ValueError(f"item {index} is not a string")
            if not text:
                raise ValueError(f"item {index} is an empty string")
            if len(text) > MAX_INPUT_CHARS:
                raise ValueError(f"item {index} is longer than {MAX_INPUT_CHARS} characters")
        return texts


@router.post("/v1/embeddings", responses=OPENAI_ERROR_RESPONSES)
async def embeddings(request: Request, body: EmbeddingsRequest, principal: ApiKey) -> Response:
    """OpenAI-compatible embeddings; the official SDKs work unchanged (`client.embeddings.create`)."""
    gateway = gateway_of(request)
    workflow_named(gateway, body.model, principal.project_id)
    payload: dict[str, Any] = {"workflow": body.model, "api": surfaces.EMBEDDINGS, "input": body.input}
    if body.dimensions is not None:
        payload["dimensions"] = body.dimensions
    if body.user is not None:
        payload["user"] = body.user
    submission = await gateway.submit(principal, payload, mode="sync", durable=False, kind=EMBEDDINGS)
    headers = {"x-request-id": submission.record.id}
    assert submission.run is not None, "an embeddings request always runs as a pass-through"
    outcome = (await asyncio.shield(submission.run)).outcome  # a caller that goes away does not cancel the run
    if outcome.status != COMPLETED or not isinstance(outcome.result, Embeddings):
        error = outcome.error or {"code": "internal_error", "message": "the request ended without embeddings"}
        return failure_response(error["code"], error["message"], headers)  # as chat completions answers a failed run
    packed = body.encoding_format == "base64"
    tokens = outcome.result.usage.input_tokens
    return json_response(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": _base64(vector) if packed else vector}
                for index, vector in enumerate(outcome.result.vectors)
            ],
            "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        200,
        headers,
    )


def _base64(vector: tuple[float, ...]) -> str:
    """OpenAI's `encoding_format: base64`: the vector's little-endian float32 bytes, base64-encoded."""
    return base64.b64encode(_float32s(len(vector)).pack(*vector)).decode()


@lru_cache(maxsize=16)
def _float32s(size: int) -> struct.Struct:
    """A compiled `<{size}f` (twice as fast as packing through `array`: the vectors of a model are all one size)."""
    return struct.Struct(f"<{size}f")

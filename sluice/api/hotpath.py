"""`POST /v1/chat/completions` (and the `/v1/ws` WebSocket) served as bare ASGI, in front of FastAPI.

It is the route a gateway's speed is judged on (docs/performance.md), and on it FastAPI's per-request machinery —
its middleware, router, dependency solving and request object — cost as much CPU as the gateway's own work (the
profile is in docs/performance.md). So `SluiceAPI` hands it to `HotPath` before all that, which keeps the route's
contract: the same API-key check and rate limit (`principal_for`), body model, validation messages, body size limit
and error bodies (OpenAI's shape: `sluice.api.errors`), and the same handler (`openai_compat.complete`). FastAPI
still declares the route, which documents it in `/openapi.json`. The channel subscriptions — the `/v1/ws` WebSocket
and the SSE `GET /v1/channels/{id}/events` — are handed over the same way, for the memory an idle subscriber holds
and the cost of each frame (see `serve_subscriber`). Every other request goes through FastAPI as before.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from sluice.api.auth import bearer_key, principal_for
from sluice.api.channels import channel_socket, is_channel_events, serve_channel_events
from sluice.api.errors import openai_error_response, validation_error_response
from sluice.api.limits import over_limit_message
from sluice.api.openai_compat import ChatCompletionRequest, complete
from sluice.errors import PayloadTooLarge, SluiceError
from sluice.observability.logging import incoming_request_id, request_id

log = logging.getLogger("sluice.api")
PATH = "/v1/chat/completions"
CHANNEL_SOCKET = "/v1/ws"


class ClientGone(Exception):
    """The client disconnected before its request body had arrived: there is nobody to answer."""


def is_hot(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"


class SluiceAPI(FastAPI):
    """FastAPI, but the hot path is answered before FastAPI's own layers (whose telemetry hooks, body limit and
    error middleware cost per request too); everything else, lifespan included, is plain FastAPI."""

    def __init__(self, *, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hot_path: HotPath | None = HotPath(max_body_bytes)  # None: FastAPI serves the route too (tests compare)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hot_path is not None and is_hot(scope):
            scope["app"] = self
            await self.hot_path(scope, receive, send)
        elif self.hot_path is not None and scope["type"] == "websocket" and scope["path"] == CHANNEL_SOCKET:
            scope["app"] = self
            await serve_subscriber(serve_channel_socket, scope, receive, send)
        elif self.hot_path is not None and scope["type"] == "http" and is_channel_events(scope):
            scope["app"] = self
            await serve_subscriber(serve_channel_events, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


async def serve_subscriber(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """A channel subscription without FastAPI's layers: a subscriber holds its connection for minutes, and every
    layer's frame and wrapper lives as long (~10 KB per idle connection, and a wrapper call per frame sent)."""
    token = request_id.set(incoming_request_id(scope))
    try:
        await app(scope, receive, send)
    finally:
        request_id.reset(token)


async def serve_channel_socket(scope: Scope, receive: Receive, send: Send) -> None:
    await channel_socket(WebSocket(scope, receive, send))


class HotPath:
    """The ASGI app of `POST /v1/chat/completions`; `scope["app"]` is the Sluice app (its state holds the gateway)."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call_id = incoming_request_id(scope)
        token = request_id.set(call_id)
        try:
            try:
                response = await self._answer(scope, receive)
            except ClientGone:
                return
            response.headers.setdefault("x-request-id", call_id)
            await response(scope, receive, send)
        finally:
            request_id.reset(token)

    async def _answer(self, scope: Scope, receive: Receive) -> Response:
        headers = dict(scope["headers"])
        try:
            body = await read_body(receive, headers.get(b"content-length"), self.max_body_bytes)
            gateway = scope["app"].state.gateway
            principal = await principal_for(gateway, bearer_key(headers.get(b"authorization", b"").decode("latin-1")))
            request = ChatCompletionRequest.model_validate_json(body)
            return await complete(gateway, request, principal, receive)  # a client hanging up stops its run
        except ValidationError as exc:
            return validation_error_response(PATH, exc.errors())  # 400 with `param`, as FastAPI's handler answers
        except SluiceError as exc:
            return openai_error_response(exc.status_code, exc.code, exc.message, getattr(exc, "headers", None))
        except ClientGone:
            raise
        except Exception:
            log.exception("unhandled error")
            return openai_error_response(500, "internal_error", "the gateway failed to handle this request")


async def read_body(receive: Receive, declared_length: bytes | None, max_bytes: int) -> bytes:
    """The whole request body; 413 past `max_bytes`, whether its Content-Length says so or a chunked body grows so."""
    too_large = PayloadTooLarge(over_limit_message(max_bytes), code="payload_too_large")
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)

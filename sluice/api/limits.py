"""Pure ASGI middleware (safe on streaming paths) that refuses request bodies over the size limit with 413."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.api.errors import error_response_at


def over_limit_message(max_bytes: int) -> str:
    return f"the request body is over the limit of {max_bytes} bytes"


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    @property
    def message(self) -> str:
        return over_limit_message(self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response_at(scope["path"], 413, "payload_too_large", self.message)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            # A chunked body without Content-Length is counted as it arrives; the handler turns this into a 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, detail=self.message)
            return message

        await self.app(scope, limited_receive, send)

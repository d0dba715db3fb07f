"""`GET /v1/forward` (WebSocket): the gateway end of `sluice forward`.

The CLI authenticates with an API key (`Authorization: Bearer …`). The server sends `{"type": "ready", "session_id"}`,
then one `{"type": "webhook", "id", "delivery_id", "event_type", "headers", "body"}` per forwarded webhook; the CLI
answers each with `{"type": "webhook_response", "id", "status", "body"}` (or `"error"` when the local URL failed).
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from sluice.api.auth import gateway_of
from sluice.delivery.tunnel import ForwardSession

router = APIRouter(tags=["forward"])


@router.websocket("/v1/forward")
async def forward_socket(websocket: WebSocket) -> None:
    gateway = gateway_of(websocket)  # type: ignore[arg-type]
    authorization = websocket.headers.get("authorization") or ""
    api_key = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    await websocket.accept()
    principal = await gateway.authenticate(api_key) if api_key else None
    if principal is None:
        reason = "send an API key as 'Authorization: Bearer <key>'" if not api_key else "the API key is not valid"
        await websocket.close(code=4401, reason=reason)
        return

    async def send(message: dict[str, Any]) -> None:
        await websocket.send_text(orjson.dumps(message).decode())

    session = ForwardSession(project_id=principal.project_id, send=send)
    await gateway.delivery.hub.register(session)
    try:
        await send({"type": "ready", "session_id": session.id, "project_id": principal.project_id})
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if not text:
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                payload = orjson.loads(text)
                if isinstance(payload, dict) and payload.get("type") == "webhook_response":
                    session.answer(payload)
    except WebSocketDisconnect:
        return
    finally:
        await gateway.delivery.hub.unregister(session)

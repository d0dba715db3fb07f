"""The chatbot's backend: the seed article's Node backend, in Python with FastAPI and the Sluice SDK.

    POST /chat      {message, conversation_id?} → POST /v1/ai/async (webhook_url, events ['webhook_received'],
                    metadata {conversationId, messageId}) → {channel_id, websocket_url, ws_token, …} for the page
    POST /webhook   Sluice's signed webhook: verify it, enrich the AI result with our ids, POST it to callback_url
    GET  /          the chat page (static/), which follows the channel with the browser SDK served by the gateway

Run it: `sluice demo` (starts the gateway and this backend), or on its own with
`SLUICE_URL=… SLUICE_API_KEY=… SLUICE_WEBHOOK_SECRET=whsec_… uvicorn backend:app --port 8081`.
`CHATBOT_WEBHOOKS=0` skips the webhook step: the page still streams, the result is not enriched.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from sluice.client import AsyncSluiceClient, SluiceClientError

STATIC = Path(__file__).resolve().parent / "static"
HISTORY_TURNS = 20  # messages of context sent with each request


@dataclass(frozen=True)
class ChatbotSettings:
    sluice_url: str  # the gateway, as this backend reaches it
    api_key: str
    public_url: str  # this backend, as the gateway reaches it (for webhook_url)
    webhook_secret: str | None = None
    webhooks: bool = True
    workflow: str = "demo"
    browser_sluice_url: str | None = None  # the gateway as the browser reaches it (default: sluice_url)
    page_dir: Path | None = None  # serve another build of the page, e.g. examples/react-chatbot/dist

    @classmethod
    def from_env(cls) -> ChatbotSettings:
        return cls(
            sluice_url=os.environ.get("SLUICE_URL", "http://127.0.0.1:8080"),
            api_key=os.environ["SLUICE_API_KEY"],
            public_url=os.environ.get("CHATBOT_PUBLIC_URL", "http://127.0.0.1:8081"),
            webhook_secret=os.environ.get("SLUICE_WEBHOOK_SECRET"),
            webhooks=os.environ.get("CHATBOT_WEBHOOKS", "1") not in ("0", "false", "no"),
            workflow=os.environ.get("CHATBOT_WORKFLOW", "demo"),
            browser_sluice_url=os.environ.get("SLUICE_BROWSER_URL"),
            page_dir=Path(os.environ["CHATBOT_PAGE_DIR"]) if os.environ.get("CHATBOT_PAGE_DIR") else None,
        )


@dataclass
class Conversation:
    id: str
    messages: list[dict[str, str]] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # channels whose reply is not in `messages` yet


@dataclass(frozen=True)
class Pending:
    conversation_id: str
    message_id: str


class ChatIn(BaseModel):
    message: str = Field(min_length=1, max_length=4000)
    conversation_id: str | None = None


def verify_webhook(headers: dict[str, str], body: bytes, secret: str) -> None:
    """Standard Webhooks verification: Sluice's own verifier when installed, else the `standardwebhooks` package."""
    try:
        from sluice.webhooks import verify
    except ImportError:  # a backend that has only the standardwebhooks package
        from standardwebhooks import Webhook

        Webhook(secret).verify(body, headers)
        return
    verify(headers, body, secret)


def create_app(settings: ChatbotSettings | None = None) -> FastAPI:
    settings = settings or ChatbotSettings.from_env()
    # Kept in memory like the article's Map: a real app would use its database.
    conversations: dict[str, Conversation] = {}
    pending: dict[str, Pending] = {}
    sluice = AsyncSluiceClient(settings.sluice_url, api_key=settings.api_key)
    http = httpx.AsyncClient(timeout=10)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await sluice.aclose()
        await http.aclose()

    app = FastAPI(title="Sluice chatbot example", lifespan=lifespan)

    async def catch_up(conversation: Conversation) -> None:
        """Add replies the webhook did not bring (webhooks off, or not delivered yet) from the request log."""
        for channel_id in list(conversation.unanswered):
            try:
                info = await sluice.get_request(channel_id)
            except SluiceClientError:
                continue
            if info.finished:
                conversation.unanswered.remove(channel_id)
                if info.status == "completed" and isinstance(info.data, dict) and info.data.get("reply"):
                    conversation.messages.append({"role": "assistant", "content": str(info.data["reply"])})

    @app.post("/chat")
    async def chat(body: ChatIn) -> dict[str, Any]:
        conversation = conversations.get(body.conversation_id or "") or Conversation(id=str(uuid.uuid4()))
        conversations[conversation.id] = conversation
        await catch_up(conversation)
        conversation.messages.append({"role": "user", "content": body.message})
        message_id = str(uuid.uuid4())
        webhook = {"webhook_url": f"{settings.public_url}/webhook", "events": ["webhook_received"]}
        try:
            accepted = await sluice.submit(
                settings.workflow,
                conversation.messages[-HISTORY_TURNS:],
                delivery_method="websocket",
                metadata={"conversationId": conversation.id, "messageId": message_id},
                **(webhook if settings.webhooks else {}),
            )
        except SluiceClientError as exc:
            conversation.messages.pop()
            raise HTTPException(502, f"the gateway refused the request: {exc}") from exc
        pending[accepted.channel_id] = Pending(conversation.id, message_id)
        conversation.unanswered.append(accepted.channel_id)
        return {**accepted.browser_params(), "conversation_id": conversation.id, "message_id": message_id}

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        raw = await request.body()
        if settings.webhook_secret:
            try:
                verify_webhook(dict(request.headers), raw, settings.webhook_secret)
            except Exception as exc:  # any verification failure: refuse, never act on an unsigned body
                return JSONResponse({"error": f"invalid signature: {exc}"}, status_code=401)
        payload = json.loads(raw)
        channel_id, callback_url = payload.get("channel_id"), payload.get("callback_url")
        entry = pending.get(channel_id)
        if entry is None:
            return JSONResponse({"error": "Not found"}, status_code=404)
        if not callback_url:
            return JSONResponse({"success": True, "ignored": payload.get("type")})  # a lifecycle notification
        data = (payload.get("ai_response") or {}).get("data") or {}
        # Enrich with our own ids (validation, moderation or approval gates would go here too).
        enriched = {"id": entry.message_id, "conversation_id": entry.conversation_id, **data}
        response = await http.post(callback_url, json=enriched)
        if response.status_code >= 400:
            return JSONResponse({"error": f"callback refused: {response.status_code}"}, status_code=502)
        pending.pop(channel_id, None)
        conversation = conversations.get(entry.conversation_id)
        if conversation is not None and channel_id in conversation.unanswered:
            conversation.unanswered.remove(channel_id)
            conversation.messages.append({"role": "assistant", "content": str(data.get("reply", ""))})
        return JSONResponse({"success": True})

    @app.get("/conversations/{conversation_id}")
    async def conversation(conversation_id: str) -> dict[str, Any]:
        """The conversation as the model sees it (for debugging and the tests)."""
        found = conversations.get(conversation_id)
        if found is None:
            raise HTTPException(404, "no such conversation")
        await catch_up(found)
        return {"id": found.id, "messages": found.messages}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        if settings.page_dir is not None:  # a bundled page (the React example) carries its own SDK copy
            return HTMLResponse((settings.page_dir / "index.html").read_text(), headers={"Cache-Control": "no-cache"})
        # The page imports the browser SDK from the gateway, via an import map filled in here.
        gateway = (settings.browser_sluice_url or settings.sluice_url).rstrip("/")
        html = (STATIC / "index.html").read_text().replace("{{SLUICE_URL}}", gateway)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        return _file(STATIC, name)

    @app.get("/assets/{name}")
    async def assets(name: str) -> FileResponse:
        return _file(settings.page_dir / "assets" if settings.page_dir else None, name)

    return app


def _file(directory: Path | None, name: str) -> FileResponse:
    path = directory / name if directory is not None else None
    if path is None or "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


def __getattr__(name: str) -> Any:
    # `uvicorn backend:app` builds the app from the environment on first use, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)

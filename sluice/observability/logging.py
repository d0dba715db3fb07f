"""Structured logs: one JSON object per line, carrying the request id of the HTTP call or job being handled.

The id lives in a context variable: `RequestIdMiddleware` sets it for each HTTP request (from `X-Request-ID` when
the caller sent a sane one, else a new one, echoed back in the response), the worker sets it to the request's id
for each job. `configure_logging` installs the JSON handler only where the host left logging unconfigured (as
`sluice serve` does), so an embedding application or a test runner keeps its own handlers.
"""

from __future__ import annotations

import logging
import os
import random
import re
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.observability.redact import redact

request_id: ContextVar[str | None] = ContextVar("sluice_request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Attributes every LogRecord has; anything else was passed in `extra=` and goes into the JSON object.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def bind_request_id(value: str | None) -> None:
    """Tag the logs of the current task (a worker's job) with a request id."""
    request_id.set(value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        current = request_id.get()
        if current:
            entry["request_id"] = current
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return orjson.dumps(entry, default=str).decode()


def configure_logging(fmt: str | None = None, level: str = "INFO") -> bool:
    """Send every log (Sluice's and uvicorn's) to stderr as JSON lines; False (nothing changed) if the root logger
    already has handlers or the format (`fmt`, else SLUICE_LOG_FORMAT, default "json") is not "json"."""
    fmt = fmt or os.environ.get("SLUICE_LOG_FORMAT", "json")
    root = logging.getLogger()
    if fmt != "json" or any(not isinstance(h, logging.NullHandler) for h in root.handlers):
        return False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not logger.handlers and not logger.propagate:
            continue  # uvicorn switched this logger off (`access_log=False`): formatting a line per request costs
        logger.handlers.clear()  # uvicorn's own text handlers; its records reach ours through the root
        logger.propagate = True
    return True


def incoming_request_id(scope: Scope) -> str:
    """The call's id: the caller's `X-Request-ID` when it is sane, else a new one."""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            sent = value.decode("latin-1")
            return sent if _SANE_ID.match(sent) else new_call_id()
    return new_call_id()


def new_call_id() -> str:
    # Correlates log lines, nothing more: it need not be unguessable, and uuid4 costs an OS call per request.
    return f"{random.getrandbits(128):032x}"


class RequestIdMiddleware:
    """Pure ASGI (it must not break streaming responses or context variables): sets `request_id` for the call and
    returns it as `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        current = incoming_request_id(scope)
        token = request_id.set(current)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if not any(name.lower() == b"x-request-id" for name, _ in headers):  # a route may name its own
                    message["headers"] = [*headers, (b"x-request-id", current.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)

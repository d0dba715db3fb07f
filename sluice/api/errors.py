"""Every error leaves the API as {"error": {"code", "message"}} with a 4xx/5xx status, never as a traceback.

The OpenAI face (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models…`, `/v1/responses…`) answers in OpenAI's
error shape instead, a superset: {"error": {"message", "type", "param", "code"}} (Sluice's code stays in `code`), and
a body that fails validation is a 400 there, not a 422, so the official SDKs raise the error they would against
OpenAI (`BadRequestError`), with `param` naming the first field at fault.

The Anthropic face (`/v1/messages…`) answers in Anthropic's: {"type": "error", "error": {"type", "message"}} with
the type Anthropic gives the status (a body that fails validation is a 400 `invalid_request_error` there too), so the
`anthropic` package raises its own typed errors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from sluice.errors import SluiceError

log = logging.getLogger("sluice.api")
OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/models", "/v1/responses"})
_OPENAI_PREFIXES = ("/v1/models/", "/v1/responses/")
ANTHROPIC_PATHS = frozenset({"/v1/messages"})
_ANTHROPIC_PREFIX = "/v1/messages/"
# OpenAI's documented error types by status; 400, 404, 409, 413 and 422 are all `invalid_request_error`.
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
# Anthropic's documented error types by status (docs.anthropic.com, "Errors"); other 5xx are `api_error`.
_ANTHROPIC_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail


# What `/openapi.json` says the OpenAI face's routes answer when they fail (502/504: a failed run).
OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody} for status in (400, 401, 403, 404, 413, 422, 429, 502, 504)
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def speaks_openai(path: str) -> bool:
    """Whether `path` is a route of the OpenAI face, whose errors take OpenAI's shape."""
    return path in OPENAI_PATHS or path.startswith(_OPENAI_PREFIXES)


def speaks_anthropic(path: str) -> bool:
    """Whether `path` is a route of the Anthropic face, whose errors take Anthropic's shape."""
    return path in ANTHROPIC_PATHS or path.startswith(_ANTHROPIC_PREFIX)


def anthropic_error_type(status: int) -> str:
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body (also the data of an in-stream `error` event)."""
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}


def anthropic_error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(anthropic_error(status, message), status_code=status, headers=headers)


def openai_error_type(status: int) -> str:
    return "server_error" if status >= 500 else _OPENAI_TYPES.get(status, "invalid_request_error")


def openai_error(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object (what goes under "error")."""
    return {"message": message, "type": openai_error_type(status), "param": param, "code": code}


def openai_error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, param: str | None = None
) -> JSONResponse:
    return JSONResponse({"error": openai_error(status, code, message, param)}, status_code=status, headers=headers)


def error_response_at(
    path: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error in the shape of the route at `path`: OpenAI's on the OpenAI face, Anthropic's on the Anthropic face,
    Sluice's elsewhere."""
    if speaks_openai(path):
        return openai_error_response(status, code, message, headers)
    if speaks_anthropic(path):
        return anthropic_error_response(status, message, headers)
    return error_response(status, code, message, headers)


def validation_error_response(path: str, errors: Sequence[Any]) -> JSONResponse:
    """A request body that failed validation: 400 with `param` on the OpenAI face, 400 on the Anthropic face, 422
    elsewhere."""
    message, param = explain_validation_error(errors)
    if speaks_openai(path):
        return openai_error_response(400, "invalid_request", message, param=param)
    if speaks_anthropic(path):
        return anthropic_error_response(400, message)
    return error_response(422, "invalid_request", message)


def describe_validation_error(errors: Sequence[Any]) -> str:
    """Pydantic's errors (of a request body) as one line that says what to fix."""
    return explain_validation_error(errors)[0]


def explain_validation_error(errors: Sequence[Any]) -> tuple[str, str | None]:
    """Pydantic's errors as one line that says what to fix (`messages[2].content[1].image_url: …`), and the path of
    the first field at fault (None when the body as a whole is: not JSON, not an object)."""
    problems: list[str] = []
    params: list[str | None] = []
    located = [(_location(error), error) for error in errors]
    places = {location for location, _ in located}
    seen: set[str] = set()
    for location, error in located:
        # A union reports each member's complaint: keep the most specific (deepest) place, once.
        if location in seen or any(_inside(other, location) for other in places):
            continue
        seen.add(location)
        if len(problems) == 5:
            break
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        named = _NAMES_ITS_FIELD.match(message) if location == "body" else None
        if error.get("type") == "json_invalid":
            problems.append("the body is not valid JSON")
            params.append(None)
        elif named:
            # A check across fields, whose message starts with the field it is about (maybe with dotted indices).
            field = _DOTTED_INDEX.sub(r"[\1]", named.group(1))
            problems.append(field + message[named.end(1) :])
            params.append(field)
        else:
            problems.append(f"{location}: {message}")
            params.append(None if location == "body" else location)
    return "; ".join(problems), params[0] if params else None


def _location(error: Any) -> str:
    """The field's path: names joined with dots, indices bracketed on the name before them (`tools[0].function`)."""
    loc = tuple(error.get("loc", ()))
    path = ""
    for part in loc[1:] if loc[:1] == ("body",) else loc:  # FastAPI's errors start with "body"; the hot path's not
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _UNION_MEMBER.search(part):
            path += f".{part}" if path else part
    return path or "body"


def _inside(place: str, location: str) -> bool:
    return len(place) > len(location) and place.startswith(location) and place[len(location)] in ".["


_UNION_MEMBER = re.compile(r"[\[\-]")  # pydantic names the member of a union it tried: `constrained-str`, `list[…]`
_NAMES_ITS_FIELD = re.compile(r"^([a-z_]+(?:\.[A-Za-z0-9_]+|\[\d+\])*): ")
_DOTTED_INDEX = re.compile(r"\.(\d+)(?=\.|$)")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SluiceError)
    async def sluice_error(request: Request, exc: SluiceError) -> Response:
        headers = getattr(exc, "headers", None)
        return error_response_at(request.scope["path"], exc.status_code, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return validation_error_response(request.scope["path"], exc.errors())

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        return error_response_at(request.scope["path"], exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response_at(
            request.scope["path"], 500, "internal_error", "the gateway failed to handle this request"
        )

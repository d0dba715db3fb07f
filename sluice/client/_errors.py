"""Exceptions raised by the Python SDK.

SluiceClientError                 anything the SDK raises
├── TransportError                the gateway could not be reached, or the connection broke
├── APIError                      the gateway answered {"error": {"code", "message"}} with a 4xx/5xx status
│   ├── BadRequestError (400, 422)
│   ├── AuthenticationError (401)
│   ├── PermissionDeniedError (403)
│   ├── NotFoundError (404)
│   ├── ConflictError (409)
│   ├── RateLimitError (429)
│   └── ServerError (5xx)
└── RequestFailed                 the request ran and failed (every provider failed, timeout…): `code`, `message`
"""

from __future__ import annotations

from typing import Any


class SluiceClientError(Exception):
    """Base class of every exception the SDK raises."""


class TransportError(SluiceClientError):
    """The gateway could not be reached, or the connection broke mid-response."""


class APIError(SluiceClientError):
    """The gateway refused the call. `code` is the machine-readable reason, e.g. `workflow_not_found`."""

    def __init__(self, status_code: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.body = body


class BadRequestError(APIError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class ConflictError(APIError):
    pass


class RateLimitError(APIError):
    pass


class ServerError(APIError):
    pass


class RequestFailed(SluiceClientError):
    """The request was accepted and run, and ended with an error event (`code`, `message`)."""

    def __init__(self, code: str, message: str, *, channel_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.channel_id = channel_id


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    422: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def api_error(status_code: int, body: Any, text: str = "") -> APIError:
    """The exception for an error response, read from Sluice's `{"error": {"code", "message"}}` body."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message = str(error.get("code", "error")), str(error.get("message", ""))
    else:
        code, message = "http_error", (text[:200] or f"HTTP {status_code}")
    kind = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else APIError)
    return kind(status_code, code, message, body)

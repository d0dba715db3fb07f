"""Sluice's error tree.

    SluiceError                     code + HTTP status + message; rendered as {"error": {"code", "message"}}
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── PaymentRequired (402)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── Conflict (409)
    ├── PayloadTooLarge (413)
    ├── Unprocessable (422)
    ├── TooManyRequests (429)
    └── ServiceUnavailable (503)

Provider failures have their own tree in `sluice.providers.errors`; they never reach an HTTP client directly.
"""

from __future__ import annotations


class SluiceError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(SluiceError):
    status_code = 400
    code = "bad_request"


class Unauthorized(SluiceError):
    status_code = 401
    code = "unauthorized"


class PaymentRequired(SluiceError):
    """A budget is spent: not 429, which SDKs retry."""

    status_code = 402
    code = "budget_exceeded"


class Forbidden(SluiceError):
    status_code = 403
    code = "forbidden"


class NotFound(SluiceError):
    status_code = 404
    code = "not_found"


class Conflict(SluiceError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(SluiceError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(SluiceError):
    status_code = 422
    code = "invalid_request"


class TooManyRequests(SluiceError):
    status_code = 429
    code = "rate_limited"


class ServiceUnavailable(SluiceError):
    status_code = 503
    code = "unavailable"

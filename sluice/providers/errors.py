"""Provider failures, translated once at the adapter boundary.

    ProviderError                 message, retryable, retry_after
    ├── ProviderUnavailable       retryable: connection refused/reset, 5xx, overloaded
    ├── RateLimited               retryable: 429, honours Retry-After
    ├── ProviderTimeout           retryable: connect, time-to-first-token, idle gap or total deadline passed
    ├── StreamBroken              retryable: the stream was cut or a chunk was malformed
    ├── InvalidRequest            not retryable: 400; no provider can fix the request
    ├── AuthenticationFailed      not retryable on this provider (401/403); the next one may work
    └── NotConfigured             not retryable on this provider: credentials missing
"""

from __future__ import annotations


class ProviderError(Exception):
    retryable: bool = True
    fail_fast: bool = False
    code: str = "provider_error"

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"


class RateLimited(ProviderError):
    code = "rate_limited"


class ProviderTimeout(ProviderError):
    code = "provider_timeout"


class StreamBroken(ProviderError):
    code = "stream_broken"


class InvalidRequest(ProviderError):
    retryable = False
    fail_fast = True
    code = "invalid_request"


class AuthenticationFailed(ProviderError):
    retryable = False
    code = "provider_auth_failed"


class NotConfigured(ProviderError):
    retryable = False
    code = "provider_not_configured"

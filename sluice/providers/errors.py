"""Provider failures, translated once at the adapter boundary. Nothing above the adapters reads provider JSON.

Each class says what the run loop does with it (`engine/run.py`):

    ProviderError                 retry_same  fail over  health   what happened
    ├── ProviderUnavailable       yes         yes        counts   connection refused/reset, 5xx, overloaded (529)
    ├── RateLimited               yes*        yes        counts   429; *waits Retry-After when it is short enough
    ├── ProviderTimeout           no          yes        counts   connect, first token, idle gap or total deadline
    ├── StreamBroken              no          yes        counts   the stream was cut, ended early or sent a bad chunk
    ├── AuthenticationFailed      no          yes        -        401/403: this provider's key is wrong
    ├── ModelNotFound             no          yes        -        404: this provider does not serve the model
    ├── NotConfigured             no          yes        -        credentials missing, unknown provider type
    ├── CircuitOpen               no          yes        -        skipped: the breaker holds this provider open
    ├── Unsupported               no          yes        -        the provider cannot do what the request asks (an
    │   │                                                         image by URL, a tool, a JSON mode): another may
    │   └── PrefillRefused        -           -          -        the model refuses a continuation's prefill (Claude
    │                                                             4.6 and later): asked again by instruction at once
    └── InvalidRequest            no          no         -        400/413/422: no provider can fix the request

`retry_same`: another try on the same provider may work (after backoff). `fail_over`: the next provider may work.
`health`: the failure counts towards the provider's circuit breaker. Structured output adds `SchemaViolation`
(re-asked once on the same provider, then failed over).
"""

from __future__ import annotations


class ProviderError(Exception):
    code: str = "provider_error"
    retryable: bool = True  # another attempt (here or on another provider) may succeed
    fail_fast: bool = False  # end the run: no provider can succeed
    retry_same: bool = False
    health: bool = False

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retry_same = True
    health = True


class RateLimited(ProviderError):
    code = "rate_limited"
    retry_same = True
    health = True


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    health = True


class StreamBroken(ProviderError):
    code = "stream_broken"
    health = True


class AuthenticationFailed(ProviderError):
    code = "provider_auth_failed"
    retryable = False


class ModelNotFound(ProviderError):
    code = "model_not_found"
    retryable = False


class NotConfigured(ProviderError):
    code = "provider_not_configured"
    retryable = False


class CircuitOpen(ProviderError):
    code = "circuit_open"
    retryable = False


class Unsupported(ProviderError):
    """The request asks for something this provider (type or model) cannot do; it is never silently dropped."""

    code = "unsupported_by_provider"
    retryable = False


class InvalidRequest(ProviderError):
    code = "invalid_request"
    retryable = False
    fail_fast = True


class PrefillRefused(Unsupported):
    """The model does not continue a trailing assistant turn (`ProviderRequest.prefill`); the run loop asks the same
    provider again with the continuation as an instruction (`sluice.engine.continuation`)."""

    code = "prefill_refused"

"""The Sluice Python SDK, for application backends.

    from sluice.client import SluiceClient

    sluice = SluiceClient("http://127.0.0.1:8080", api_key="sk_sluice_…")
    result = sluice.run("demo", "Hello!")                   # POST /v1/ai, waits for the answer
    accepted = sluice.submit("demo", "Hello!")              # POST /v1/ai/async
    browser = accepted.browser_params()                     # {channel_id, websocket_url, ws_token} for the page
    for event in sluice.stream(accepted.channel_id):        # the channel's events over SSE, resumed if cut
        ...

`AsyncSluiceClient` has the same methods as coroutines (`async for event in client.stream(…)`). A Pydantic model
passed as `schema=` is sent as the request's JSON Schema; `result.parse(Model)` validates the answer into it.
`verify_webhook(headers, raw_body, "whsec_…")` checks a webhook's signature (it is `sluice.webhooks.verify`).
"""

from sluice.client._async import AsyncSluiceClient
from sluice.client._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestFailed,
    ServerError,
    SluiceClientError,
    TransportError,
)
from sluice.client._models import Accepted, ChannelEvent, RequestInfo, Result
from sluice.client._sync import SluiceClient
from sluice.webhooks import WebhookVerificationError
from sluice.webhooks import verify as verify_webhook

__all__ = [
    "APIError",
    "Accepted",
    "AsyncSluiceClient",
    "AuthenticationError",
    "BadRequestError",
    "ChannelEvent",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestFailed",
    "RequestInfo",
    "Result",
    "ServerError",
    "SluiceClient",
    "SluiceClientError",
    "TransportError",
    "WebhookVerificationError",
    "verify_webhook",
]

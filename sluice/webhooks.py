"""Verify Sluice's webhooks in your Python backend.

    from sluice.webhooks import verify, WebhookVerificationError

    try:
        verify(request.headers, raw_body, "whsec_…")   # the exact bytes received, not re-serialised JSON
    except WebhookVerificationError as exc:
        return 401, str(exc)

Signatures follow the Standard Webhooks specification, so any Standard Webhooks library verifies them too. Each
webhook also carries ModelRiver's `X-ModelRiver-Signature`, for backends written for ModelRiver (docs/webhooks.md).
"""

from sluice.delivery.signing import (
    InvalidSignature,
    MissingHeaders,
    StaleTimestamp,
    WebhookVerificationError,
    verify,
)

__all__ = ["InvalidSignature", "MissingHeaders", "StaleTimestamp", "WebhookVerificationError", "verify"]

"""Standard Webhooks signatures (https://www.standardwebhooks.com, v1 symmetric scheme).

The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`; the HMAC-SHA256 is computed by the reference
`standardwebhooks` package. During a secret rotation the sender signs with every active secret and the
`webhook-signature` header carries one `v1,<base64>` token per secret, separated by spaces; a receiver accepts the
message if any token matches one of its secrets.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds, both ways: the reference libraries' window


class WebhookVerificationError(Exception):
    """The webhook is not authentic or not fresh. Subclasses say which."""


class MissingHeaders(WebhookVerificationError):
    pass


class InvalidSignature(WebhookVerificationError):
    pass


class StaleTimestamp(WebhookVerificationError):
    pass


def generate_secret() -> str:
    """A new `whsec_` secret: 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def _signer(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Iterable[str]) -> str:
    """The `webhook-signature` value: one `v1,<base64>` token per secret."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    text = body.decode()
    return " ".join(_signer(secret).sign(msg_id, moment, text) for secret in secrets)


def signature_headers(
    msg_id: str, body: bytes, secrets: Iterable[str], *, timestamp: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = sign(msg_id, stamp, body, secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str | Iterable[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a webhook's Standard Webhooks signature against the exact body bytes received.

    `secret` may be one `whsec_…` secret or several (during a rotation). Raises `MissingHeaders`,
    `StaleTimestamp` (older or newer than `tolerance` seconds) or `InvalidSignature` (tampered body, wrong secret).
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signature = lowered.get("webhook-signature")
    if not (msg_id and stamp and signature):
        raise MissingHeaders("the webhook-id, webhook-timestamp and webhook-signature headers are all required")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise StaleTimestamp(f"webhook-timestamp must be Unix seconds, not {stamp!r}") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        age = "old" if timestamp < current else "far in the future"
        raise StaleTimestamp(
            f"the webhook timestamp is too {age} ({int(current - timestamp)}s off; "
            f"tolerance {int(tolerance)}s): a replay, or a clock out of sync"
        )
    raw = body.encode() if isinstance(body, str) else body
    candidates = [secret] if isinstance(secret, str) else list(secret)
    received = [token.split(",", 1)[1] for token in signature.split() if token.startswith("v1,")]
    for candidate in candidates:
        expected = sign(msg_id, timestamp, raw, [candidate]).split(",", 1)[1]
        if any(hmac.compare_digest(expected, token) for token in received):
            return
    raise InvalidSignature("no webhook signature matches: the body was changed, or the secret is wrong")

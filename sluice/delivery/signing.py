"""Webhook signatures, in two header families on every delivery.

Standard Webhooks (https://www.standardwebhooks.com, v1 symmetric scheme): the signed content is
`{webhook-id}.{webhook-timestamp}.{raw body}`; the HMAC-SHA256 is computed by the reference `standardwebhooks`
package. During a secret rotation the sender signs with every active secret and the `webhook-signature` header
carries one `v1,<base64>` token per secret, separated by spaces; a receiver accepts the message if any token matches
one of its secrets.

ModelRiver (what its official backends verify, research/modelriver.md §3.3): `X-ModelRiver-Signature` is the
lowercase hex HMAC-SHA256 of `{X-ModelRiver-Timestamp}.{JSON.stringify(body.data)}` — or of
`{timestamp}.{raw body}` when `data` is missing or falsy — keyed with the secret string as configured. The header
holds one value, so it is signed with the newest secret only.

Key bytes: a `whsec_…` secret is base64 after its prefix, and Standard Webhooks uses the decoded bytes; any other
secret (one brought from ModelRiver) is used as its UTF-8 bytes by both families.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import orjson
from standardwebhooks.webhooks import Webhook

from sluice.delivery import jsjson

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
    if not secret.startswith(SECRET_PREFIX):
        return Webhook(secret.encode())  # a secret brought from ModelRiver: its own bytes are the key
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc


def standard_webhooks_secret(secret: str) -> str:
    """The `whsec_…` form of a project secret, for a Standard Webhooks library (the same key bytes)."""
    return secret if secret.startswith(SECRET_PREFIX) else SECRET_PREFIX + base64.b64encode(secret.encode()).decode()


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


def modelriver_message(timestamp: str, body: bytes) -> bytes:
    """What ModelRiver's verifiers HMAC: `{timestamp}.{JSON.stringify(data)}`, or `{timestamp}.{raw body}` when the
    parsed body has no truthy `data` (their `if (!dataField)` fallback)."""
    parsed = orjson.loads(body)
    data = parsed.get("data") if isinstance(parsed, dict) else None
    signed = jsjson.stringify(data).encode() if jsjson.truthy(data) else body
    return timestamp.encode() + b"." + signed


def modelriver_signature(timestamp: str, body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), modelriver_message(timestamp, body), hashlib.sha256).hexdigest()


def modelriver_headers(msg_id: str, body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """The `X-ModelRiver-*` headers, signed with one secret (the newest)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-ModelRiver-Signature": modelriver_signature(stamp, body, secret),
        "X-ModelRiver-Timestamp": stamp,
        "X-ModelRiver-Webhook-Id": msg_id,
    }


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str | Iterable[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a webhook's Standard Webhooks signature against the exact body bytes received.

    `secret` may be one project secret (`whsec_…`, or one brought from ModelRiver) or several (during a rotation).
    Raises `MissingHeaders`, `StaleTimestamp` (older or newer than `tolerance` seconds) or `InvalidSignature`
    (tampered body, wrong secret).
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

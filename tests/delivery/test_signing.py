"""Standard Webhooks signing and the SDK's `sluice.webhooks.verify`."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook

from sluice.delivery.signing import generate_secret, signature_headers
from sluice.webhooks import InvalidSignature, MissingHeaders, StaleTimestamp, WebhookVerificationError, verify

BODY = b'{"type":"task.ai_generated","channel_id":"ch_1","ai_response":{"data":{"reply":"hi"}}}'


def test_signature_matches_the_reference_library() -> None:
    secret = generate_secret()
    headers = signature_headers("msg_1", BODY, [secret])
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers)["channel_id"] == "ch_1"
    verify(headers, BODY, secret)
    verify({k.title(): v for k, v in headers.items()}, BODY.decode(), secret)  # header case and str bodies


def test_tampered_body_fails() -> None:
    secret = generate_secret()
    headers = signature_headers("msg_1", BODY, [secret])
    with pytest.raises(InvalidSignature, match="body was changed"):
        verify(headers, BODY.replace(b"hi", b"ho"), secret)
    with pytest.raises(InvalidSignature):
        verify(headers, BODY, generate_secret())  # the wrong secret


def test_stale_or_future_timestamp_fails() -> None:
    secret = generate_secret()
    old = signature_headers("msg_1", BODY, [secret], timestamp=int(time.time()) - 301)
    with pytest.raises(StaleTimestamp, match="too old"):
        verify(old, BODY, secret)
    future = signature_headers("msg_1", BODY, [secret], timestamp=int(time.time()) + 301)
    with pytest.raises(StaleTimestamp, match="future"):
        verify(future, BODY, secret)
    verify(old, BODY, secret, tolerance=600)
    with pytest.raises(WebhookVerificationError):
        verify({**old, "webhook-timestamp": "yesterday"}, BODY, secret)


def test_missing_headers_fail() -> None:
    secret = generate_secret()
    headers = signature_headers("msg_1", BODY, [secret])
    for name in headers:
        with pytest.raises(MissingHeaders):
            verify({k: v for k, v in headers.items() if k != name}, BODY, secret)


def test_rotation_signs_with_every_active_secret() -> None:
    old, new = generate_secret(), generate_secret()
    headers = signature_headers("msg_1", BODY, [new, old])
    assert len(headers["webhook-signature"].split()) == 2
    verify(headers, BODY, old)
    verify(headers, BODY, new)
    verify(signature_headers("msg_1", BODY, [new]), BODY, [old, new])  # a receiver holding both secrets
    with pytest.raises(InvalidSignature):
        verify(signature_headers("msg_1", BODY, [new]), BODY, old)

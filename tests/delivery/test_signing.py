"""Standard Webhooks signing and the SDK's `sluice.webhooks.verify`; ModelRiver's header family."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks.webhooks import Webhook

from sluice.delivery.signing import (
    generate_secret,
    modelriver_headers,
    modelriver_message,
    signature_headers,
    standard_webhooks_secret,
)
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


# ModelRiver's family: what its official verifiers compute (research/modelriver.md §3.3).


def mr_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_modelriver_signature_covers_the_data_field_as_javascript_serialises_it() -> None:
    body = b'{"type":"task.completed","data":{"b":1.0,"2":"x","reply":"h\xc3\xa9"},"meta":{}}'
    assert modelriver_message("1700000000", body) == '1700000000.{"2":"x","b":1,"reply":"hé"}'.encode()
    headers = modelriver_headers("msg_1", body, "mr_secret_value", timestamp=1700000000)
    assert headers == {
        "X-ModelRiver-Signature": mr_hex("mr_secret_value", b'1700000000.{"2":"x","b":1,"reply":"h\xc3\xa9"}'),
        "X-ModelRiver-Timestamp": "1700000000",
        "X-ModelRiver-Webhook-Id": "msg_1",
    }
    assert headers["X-ModelRiver-Signature"] == headers["X-ModelRiver-Signature"].lower()


@pytest.mark.parametrize("data", ["null", "false", "0", "0.0", '""', None])
def test_modelriver_signature_without_truthy_data_covers_the_raw_body(data: str | None) -> None:
    body = b'{"type":"task.failed"' + (b',"data":' + data.encode() if data is not None else b"") + b"}"
    assert modelriver_message("5", body) == b"5." + body


@pytest.mark.parametrize(("data", "signed"), [("{}", "{}"), ("[]", "[]"), ('"text"', '"text"'), ("1e2", "100")])
def test_modelriver_signature_with_other_truthy_data(data: str, signed: str) -> None:
    assert modelriver_message("5", b'{"data":' + data.encode() + b"}") == b"5." + signed.encode()


def test_a_secret_brought_from_modelriver_signs_both_families() -> None:
    raw = "mr_secret_without_prefix"  # not base64: its UTF-8 bytes are the key for both families
    headers = signature_headers("msg_1", BODY, [raw])
    verify(headers, BODY, raw)
    whsec = standard_webhooks_secret(raw)
    assert whsec == "whsec_" + base64.b64encode(raw.encode()).decode()
    assert Webhook(whsec).verify(BODY, headers)["channel_id"] == "ch_1"
    assert standard_webhooks_secret(whsec) == whsec
    generated = generate_secret()
    assert standard_webhooks_secret(generated) == generated
    # ModelRiver keys with the string as configured: a whsec_ secret is used whole, prefix included (BODY has no
    # top-level data, so the raw body is signed)
    signed = modelriver_headers("m", BODY, generated, timestamp=1)["X-ModelRiver-Signature"]
    assert signed == mr_hex(generated, b"1." + BODY)

"""The delivery log's line for a backend that refuses a webhook with 401/403."""

from __future__ import annotations

from sluice.delivery.hints import reason_of, refusal


def test_modelriver_backend_refusals() -> None:
    body = '{"error":"Unauthorized","message":"Missing X-ModelRiver-Signature header"}'
    sent = refusal(401, body, modelriver_sent=True)
    assert sent is not None and sent.startswith("401 Unauthorized: Unauthorized: Missing X-ModelRiver-Signature")
    assert "which was sent" in sent and "WEBHOOK_SECRET" in sent
    off = refusal(401, body, modelriver_sent=False)
    assert off is not None and "modelriver_signature: false" in off


def test_standard_webhooks_backend_refusal() -> None:
    line = refusal(403, "invalid webhook-signature", modelriver_sent=True)
    assert line is not None and line.startswith("403 Forbidden: invalid webhook-signature. Hint: ")
    assert "Standard Webhooks" in line and "whsec_" in line


def test_unknown_refusal_names_what_was_sent() -> None:
    line = refusal(401, '{"detail": "nope"}', modelriver_sent=True)
    assert line is not None and "nope" in line
    assert "Standard Webhooks (webhook-signature) and ModelRiver (X-ModelRiver-Signature)" in line
    line = refusal(401, "", modelriver_sent=False)
    assert line is not None and "no reason given" in line and "ModelRiver" not in line


def test_other_statuses_are_not_refusals() -> None:
    assert refusal(200, "ok", modelriver_sent=True) is None
    assert refusal(500, "ModelRiver", modelriver_sent=True) is None
    assert refusal(None, None, modelriver_sent=True) is None
    assert reason_of("x" * 500) == "x" * 200

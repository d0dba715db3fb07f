"""What the delivery log says when a backend refuses a webhook with 401 or 403: its reason, and which signature
header family it probably expects, guessed from what it answered."""

from __future__ import annotations

from typing import Any

import orjson

REFUSED = {401: "401 Unauthorized", 403: "403 Forbidden"}
_REASON_CHARS = 200
_MODELRIVER_WORDS = ("modelriver", "mr-signature")
_STANDARD_WORDS = ("webhook-signature", "webhook-id", "webhook-timestamp", "standard webhooks", "standardwebhooks")


def reason_of(body: str | None) -> str:
    """The backend's own words: a JSON body's `message` / `error` / `detail`, else the start of the text."""
    text = (body or "").strip()
    try:
        parsed: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        parts = [str(parsed[key]) for key in ("error", "message", "detail") if isinstance(parsed.get(key), str | int)]
        if parts:
            text = ": ".join(dict.fromkeys(parts))
    return text[:_REASON_CHARS] or "no reason given"


def refusal(status_code: int | None, body: str | None, *, modelriver_sent: bool) -> str | None:
    """The log line for a 401/403 answer (None for any other outcome)."""
    if status_code not in REFUSED:
        return None
    lowered = (body or "").lower()
    if any(word in lowered for word in _MODELRIVER_WORDS):
        if modelriver_sent:
            hint = (
                "it expects ModelRiver's X-ModelRiver-Signature, which was sent: give the backend the project's "
                "signing secret exactly as shown when it was created (its WEBHOOK_SECRET)"
            )
        else:
            hint = (
                "it expects ModelRiver's X-ModelRiver-Signature, which this workflow turns off "
                "(modelriver_signature: false): turn it back on"
            )
    elif any(word in lowered for word in _STANDARD_WORDS):
        hint = (
            "it expects Standard Webhooks (webhook-signature): give it the project's whsec_ secret (for a secret "
            "brought from ModelRiver, 'whsec_' + base64 of it)"
        )
    else:
        sent = "Standard Webhooks (webhook-signature)" + (
            " and ModelRiver (X-ModelRiver-Signature)" if modelriver_sent else ""
        )
        hint = f"the webhook was signed with {sent}; check that the backend holds the project's current signing secret"
    return f"{REFUSED[status_code]}: {reason_of(body)}. Hint: {hint}"

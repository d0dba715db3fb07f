"""ModelRiver's response shapes built from Sluice's result: the `meta` block, the wrapped envelope
`{data, customer_data, meta, error?}` and the raw (provider-style `chat.completion`) body with its metadata headers.

Field names follow research/modelriver.md §1.5. Sluice's own meta keys stay beside ModelRiver's, so nothing a
Sluice client reads disappears from a ModelRiver-shaped answer.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson

from sluice.spend.usage import answer_usage

# Sluice's attempt statuses in ModelRiver's words; the rest ("failed", "skipped") read the same in both.
_ATTEMPT_STATUS = {"succeeded": "success"}


def usage_of(meta: dict[str, Any]) -> dict[str, int]:
    usage = answer_usage(meta)
    prompt = int(usage.get("input_tokens") or usage.get("prompt_tokens") or 0)
    completion = int(usage.get("output_tokens") or usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def attempts_of(meta: dict[str, Any]) -> list[dict[str, Any]]:
    attempts = []
    for attempt in meta.get("attempts") or ():
        item = {
            "provider": attempt.get("provider"),
            "model": attempt.get("model"),
            "status": _ATTEMPT_STATUS.get(attempt.get("status", ""), attempt.get("status")),
        }
        if attempt.get("reason") or attempt.get("error_message"):
            item["reason"] = attempt.get("reason") or attempt.get("error_message")
        if attempt.get("error_code"):
            item["error_code"] = attempt["error_code"]
        attempts.append(item)
    return attempts


def modelriver_meta(
    meta: dict[str, Any] | None, *, status: str, http_status: int = 200, workflow: str | None = None
) -> dict[str, Any]:
    """Sluice's run meta with ModelRiver's names added: `used_provider`/`used_model`, `requested_*` (the chain's
    first entry, i.e. the first attempt), OpenAI-style `usage`, `attempts[{provider, model, status, reason?}]`."""
    meta = dict(meta or {})
    attempts = attempts_of(meta)
    first = attempts[0] if attempts else {}
    used_provider, used_model = meta.get("provider"), meta.get("model")
    return {
        **meta,
        "status": status,
        "http_status": http_status,
        "workflow": meta.get("workflow") or workflow,
        "requested_provider": first.get("provider", used_provider),
        "requested_model": first.get("model", used_model),
        "used_provider": used_provider,
        "used_model": used_model,
        "usage": usage_of(meta),
        "structured_output": bool(meta.get("structured_output", False)),
        "attempts": attempts,
        "offline_fallback": False,  # Sluice never invents a result when every provider failed
    }


def wrapped(
    data: Any, customer: dict[str, Any], meta: dict[str, Any], error: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The wrapped envelope. A failed run is `data: null` plus `error{message, details}` (ModelRiver answers it with
    HTTP 200: the request itself was valid)."""
    body: dict[str, Any] = {"data": data, "customer_data": customer, "meta": meta}
    if error is not None:
        body["error"] = {"message": error.get("message", ""), "details": {"code": error.get("code")}}
    return body


_MESSAGE_KEYS = frozenset({"content", "thinking"})


def text_of(data: Any) -> str:
    """The result as the assistant's message text: plain text as is (the model's `thinking` beside it is not the
    text), a structured object as its JSON."""
    if isinstance(data, dict) and set(data) <= _MESSAGE_KEYS and isinstance(data.get("content"), str):
        return data["content"]
    return orjson.dumps(data).decode()


def raw_completion(channel_id: str, data: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """The raw format: what the provider's Chat Completions API would have answered (OpenAI's shape for every
    provider, so one parser fits; the structured object is the message content, as JSON)."""
    message: dict[str, Any] = {"role": "assistant", "content": text_of(data)}
    if isinstance(data, dict) and data.get("tool_calls") and not meta.get("structured_output"):
        message = {"role": "assistant", "content": data.get("content") or None, "tool_calls": data["tool_calls"]}
    finish = meta.get("finish_reason") or "stop"
    return {
        "id": f"chatcmpl-{channel_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": meta.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage_of(meta),
    }


def raw_headers(meta: dict[str, Any], customer: dict[str, Any], workflow: str) -> dict[str, str]:
    """The run's metadata as headers, each under Sluice's name and ModelRiver's (`X-ModelRiver-*`)."""
    values = {
        "Provider": str(meta.get("provider") or ""),
        "Model": str(meta.get("model") or ""),
        "Workflow": workflow,
        "Duration-Ms": str(meta.get("duration_ms") if meta.get("duration_ms") is not None else ""),
        "Attempts": str(len(meta.get("attempts") or ())),
        "Customer-Data": json.dumps(customer, separators=(",", ":")),  # ensure_ascii: header values are latin-1
    }
    headers = {f"X-Sluice-{name}": value for name, value in values.items()}
    headers.update({f"X-ModelRiver-{name}": value for name, value in values.items() if name != "Customer-Data"})
    headers["X-ModelRiver-Cached-Data"] = values["Customer-Data"]
    return headers

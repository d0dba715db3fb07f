"""`customer_data`: the request's own values echoed back with its result (ModelRiver's "cache fields").

Two sources, as in ModelRiver (research/modelriver.md §1.3, §6): the workflow's `echo_fields`, dot paths into the
request body (`metadata.segment`, `messages.0.content`), and any top-level field the request API does not define
(ModelRiver's homepage sends `user_id`, `task_id` at the top level and gets them back).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Every top-level field with a meaning of its own in a `/v1/ai` request (Sluice's and ModelRiver's); the rest is the
# caller's and is echoed. tests/compat guards that Sluice's request model adds none without listing it here.
REQUEST_FIELDS = frozenset(
    {
        "workflow",
        "messages",
        "delivery_method",
        "webhook_url",
        "events",
        "metadata",
        "stream",
        "system",
        "temperature",
        "max_tokens",
        "format",
        "inputs",
        "context",
        "prompt",
        "input",
        "encoding_format",
        "size",
        "quality",
        "n",
        "response_format",
        "structured_output_schema",
        "schema",
        "provider",
        "model",
        "top_p",
        "stop",
        "seed",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "passthrough",
        "api",
        "native",
        "rerun_of",
    }
)


def lookup(body: Any, path: str) -> Any:
    """The value at a dot path (`metadata.segment`, `messages.0.content`), or None."""
    value = body
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


def customer_data(
    body: dict[str, Any], echo_fields: Iterable[str] = (), known: frozenset[str] = REQUEST_FIELDS
) -> dict[str, Any]:
    """Extra top-level fields, then the echo fields keyed by their path (a path wins over an extra of that name)."""
    echoed = {key: value for key, value in body.items() if key not in known}
    for path in echo_fields:
        value = lookup(body, path)
        if value is not None:
            echoed[path] = value
    return echoed

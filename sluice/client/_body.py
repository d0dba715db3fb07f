"""Building request bodies: messages from a string, and a Pydantic model as a schema override."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

Messages = str | Iterable[Mapping[str, str]]
Schema = type[BaseModel] | Mapping[str, Any] | None


def schema_json(schema: Schema) -> dict[str, Any] | None:
    """A JSON Schema from a Pydantic model class (its `model_json_schema()`) or a mapping given as is."""
    if schema is None:
        return None
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    if isinstance(schema, Mapping):
        return dict(schema)
    raise TypeError(f"schema must be a Pydantic model class or a JSON Schema mapping, not {type(schema).__name__}")


def request_body(
    workflow: str, messages: Messages, *, schema: Schema = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    if isinstance(messages, str):
        message_list = [{"role": "user", "content": messages}]
    else:
        message_list = [dict(m) for m in messages]
    body: dict[str, Any] = {"workflow": workflow, "messages": message_list}
    compiled = schema_json(schema)
    if compiled is not None:
        body["schema"] = compiled  # overrides the workflow's schema for this request
    body.update({k: v for k, v in (extra or {}).items() if v is not None})
    return body

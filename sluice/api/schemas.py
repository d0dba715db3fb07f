"""Request and response bodies of the public API (they are also what `/openapi.json` describes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sluice.api.conversation import Conversation


class AIRequest(Conversation):
    """A request to run a workflow. `messages`, `tools`, `tool_choice` and `parallel_tool_calls` are Chat
    Completions' (text and image parts, tool calls and results). Unknown top-level fields are accepted and kept with
    the request (ModelRiver clients send such fields and get them back as `customer_data`)."""

    model_config = ConfigDict(extra="allow")

    workflow: str = Field(min_length=1, max_length=200, description="Name of the workflow to run.")
    delivery_method: Literal["websocket", "webhook", "none"] = "websocket"
    webhook_url: str | None = Field(default=None, max_length=2048)
    events: list[str] = Field(default_factory=list, max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict)
    stream: bool = Field(default=False, description="`POST /v1/ai` only: answer as Server-Sent Events.")
    system: str | None = Field(default=None, max_length=100_000, description="Overrides the workflow's system prompt.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    format: Literal["raw", "wrapped"] | None = Field(
        default=None, description="`POST /v1/ai` only: answer in ModelRiver's `raw` or `wrapped` shape."
    )
    output_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="Overrides the workflow's schema for this request: shorthand or full JSON Schema.",
    )


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class AsyncAccepted(BaseModel):
    message: str = "success"
    status: str = "pending"
    channel_id: str
    request_id: str
    project_id: str
    websocket_url: str
    ws_token: str
    websocket_channel: str
    status_url: str
    events_url: str
    cancel_url: str = Field(description="POST it to cancel the request: it carries the request's cancel_token.")


class RerunAccepted(AsyncAccepted):
    rerun_of: str


class ChannelToken(BaseModel):
    channel_id: str
    project_id: str
    ws_token: str
    websocket_url: str
    websocket_channel: str
    expires_in: int


class AttemptInfo(BaseModel):
    attempt: int
    provider: str
    model: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage_estimated: bool | None = None
    cost_usd: float | None = None
    price_source: str | None = None
    started_at: str


class RequestStatus(BaseModel):
    id: str
    channel_id: str
    workflow: str
    status: str
    data: Any = None
    error: ErrorDetail | None = None
    meta: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    attempts: list[AttemptInfo]
    cost_usd: float | None = Field(default=None, description="What every attempt cost, USD (once finished).")
    usage: dict[str, Any] | None = Field(default=None, description="Every attempt's usage, added up.")
    created_at: str
    started_at: str | None = None
    first_token_at: str | None = None
    completed_at: str | None = None


class SyncResult(BaseModel):
    channel_id: str
    request_id: str
    status: str
    data: Any = None
    meta: dict[str, Any] | None = None
    error: ErrorDetail | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429)
}

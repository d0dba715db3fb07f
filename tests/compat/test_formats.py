"""`POST /v1/ai` with ModelRiver's `format`, and the async response's ModelRiver fields."""

from __future__ import annotations

import json
from pathlib import Path

from sluice.api.schemas import AIRequest
from sluice.compat.customer import REQUEST_FIELDS
from tests.compat.workflows import ask, start
from tests.conftest import StartGateway


def test_every_request_field_is_known_to_customer_data() -> None:
    # A field Sluice's request model defines must never be echoed back as the caller's own data.
    names = {field.alias or name for name, field in AIRequest.model_fields.items()}
    assert names <= REQUEST_FIELDS, names - REQUEST_FIELDS


async def test_wrapped_format(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    body = ask("plain", format="wrapped", metadata={"segment": "pro"}, user_id="u-1")
    async with gw.client() as client:
        reply = await client.post("/v1/ai", json=body)
    assert reply.status_code == 200, reply.text
    envelope = reply.json()
    assert set(envelope) == {"data", "customer_data", "meta"}
    assert envelope["data"]["sentiment"] == "positive" and isinstance(envelope["data"]["reply"], str)
    assert envelope["customer_data"] == {
        "user_id": "u-1",
        "metadata.segment": "pro",
        "messages.0.content": "I love this product",
    }
    meta = envelope["meta"]
    assert meta["status"] == "success" and meta["http_status"] == 200 and meta["workflow"] == "plain"
    assert (meta["requested_provider"], meta["requested_model"]) == ("sim", "sim-1")
    assert (meta["used_provider"], meta["used_model"]) == ("sim", "sim-1")
    assert meta["attempts"] == [{"provider": "sim", "model": "sim-1", "status": "success"}]
    assert set(meta["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert meta["usage"]["completion_tokens"] > 0 and meta["duration_ms"] >= 0
    assert meta["structured_output"] is True and meta["offline_fallback"] is False


async def test_wrapped_format_of_a_failed_run(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start(start_gateway, tmp_path)
    async with gw.client() as client:
        reply = await client.post("/v1/ai", json=ask("broken", format="wrapped"))
    assert reply.status_code == 200  # as ModelRiver: the request was valid; the failure is in the body
    envelope = reply.json()
    assert envelope["data"] is None and envelope["error"]["message"]
    assert envelope["meta"]["status"] == "error" and envelope["meta"]["http_status"] == 502
    attempts = envelope["meta"]["attempts"]
    assert attempts and all(a["status"] == "failed" and a["reason"] for a in attempts)
    assert attempts[0]["model"] == "sim-invalid-json-always"


async def test_raw_format_is_a_chat_completion_with_metadata_headers(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start(start_gateway, tmp_path)
    async with gw.client() as client:
        structured = await client.post("/v1/ai", json=ask("plain", format="raw", metadata={"segment": "pro"}))
        text = await client.post("/v1/ai", json=ask("text_only", format="raw"))
        failed = await client.post("/v1/ai", json=ask("broken", format="raw"))
    assert structured.status_code == 200, structured.text
    completion = structured.json()
    assert completion["object"] == "chat.completion" and completion["model"] == "sim-1"
    message = completion["choices"][0]["message"]
    assert message["role"] == "assistant" and json.loads(message["content"])["sentiment"] == "positive"
    assert completion["usage"]["total_tokens"] > 0
    headers = structured.headers
    for prefix in ("X-Sluice-", "X-ModelRiver-"):
        assert headers[prefix + "Provider"] == "sim" and headers[prefix + "Model"] == "sim-1"
        assert headers[prefix + "Workflow"] == "plain" and headers[prefix + "Attempts"] == "1"
        assert float(headers[prefix + "Duration-Ms"]) >= 0
    customer = {"metadata.segment": "pro", "messages.0.content": "I love this product"}
    assert json.loads(headers["X-ModelRiver-Cached-Data"]) == customer
    assert json.loads(headers["X-Sluice-Customer-Data"]) == customer

    plain = text.json()["choices"][0]["message"]["content"]
    assert plain and not plain.startswith("{")  # plain text is the content itself, not JSON around it

    assert failed.status_code == 502 and failed.json()["error"]["type"] == "upstream_error"
    assert failed.headers["X-ModelRiver-Attempts"] == "2"  # the first try and its schema re-ask


async def test_native_format_is_unchanged_and_async_has_modelriver_fields(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start(start_gateway, tmp_path)
    async with gw.client() as client:
        native = (await client.post("/v1/ai", json=ask("plain"))).json()
        accepted = (await client.post("/v1/ai/async", json=ask("plain"))).json()
    assert native["status"] == "completed" and native["data"]["sentiment"] == "positive"
    assert accepted["message"] == "success" and accepted["status"] == "pending"
    assert accepted["websocket_channel"] == f"ai_response:{accepted['project_id']}:{accepted['channel_id']}"

"""`GET /v1/models` and `GET /v1/models/{id}`: the workflows and the `provider/model` pairs of their chains, in
OpenAI's shapes, also through the official `openai` package."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import RunningGateway, StartGateway, write_config


@pytest.fixture
async def gateway(start_gateway: StartGateway, tmp_path: Path) -> RunningGateway:
    config = write_config(
        tmp_path,
        """
providers:
  simulated: {type: simulated, pace_ms: 0}
  claude: {type: anthropic, api_key: k, base_url: "http://127.0.0.1:9"}
workflows:
  support:
    chain:
      - {provider: claude, model: claude-x}
      - {provider: simulated, model: sim-1}
  embed:
    chain:
      - {provider: simulated, model: sim-embed}
""",
    )
    return await start_gateway(config_path=config)


def entry(model_id: str, owner: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


async def test_the_list(gateway: RunningGateway) -> None:
    async with gateway.client() as http:
        answer = await http.get("/v1/models")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "object": "list",
        "data": [
            entry("demo", "sluice"),  # the built-in workflow
            entry("embed", "sluice"),
            entry("support", "sluice"),
            entry("claude/claude-x", "claude"),
            entry("simulated/sim-1", "simulated"),
            entry("simulated/sim-embed", "simulated"),
        ],
    }


@pytest.mark.parametrize(
    ("model_id", "owner"),
    [("support", "sluice"), ("claude/claude-x", "claude"), ("simulated/any-model-it-accepts", "simulated")],
)
async def test_one(gateway: RunningGateway, model_id: str, owner: str) -> None:
    async with gateway.client() as http:
        answer = await http.get(f"/v1/models/{model_id}")
    assert answer.status_code == 200, answer.text
    assert answer.json() == entry(model_id, owner)


@pytest.mark.parametrize("model_id", ["nope", "unknown-provider/model", "claude/"])
async def test_an_unknown_id_is_404_in_openai_shape(gateway: RunningGateway, model_id: str) -> None:
    async with gateway.client() as http:
        answer = await http.get(f"/v1/models/{model_id}")
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, "model_not_found")
    assert model_id in error["message"]


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/support"])
async def test_an_api_key_is_required(gateway: RunningGateway, path: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        missing = await http.get(path)
        wrong = await http.get(path, headers={"Authorization": "Bearer wrong"})
    for answer, code in ((missing, "missing_api_key"), (wrong, "invalid_api_key")):
        assert answer.status_code == 401
        assert answer.json() == {
            "error": {"message": answer.json()["error"]["message"], "type": "authentication_error", "param": None,
                      "code": code}
        }  # fmt: skip


async def test_the_openai_package(gateway: RunningGateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, max_retries=0) as client:
        listed = [model async for model in client.models.list()]
        one = await client.models.retrieve("claude/claude-x")
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("nope")
    assert [m.id for m in listed][:3] == ["demo", "embed", "support"]
    assert listed[3].owned_by == "claude" and listed[3].object == "model" and listed[3].created == 0
    assert (one.id, one.owned_by) == ("claude/claude-x", "claude")

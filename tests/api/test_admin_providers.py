"""Admin API: providers are added with credentials encrypted at rest and never returned, tested against a real
(fake, on loopback) OpenAI server, used by stored workflows, edited, and protected from deletion while in use."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from sluice.store.schema import providers
from sluice.testing import FakeProvider, Script
from tests.conftest import MASTER_KEY, RunningGateway, StartGateway, chat_body, write_config

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
SECRET = "sk-test-very-secret-0123456789"


async def test_add_test_use_edit_delete_a_provider(gw: RunningGateway) -> None:
    async with FakeProvider("openai") as fake, gw.client() as client:
        created = await client.post(
            "/v1/admin/providers",
            headers=ADMIN,
            json={
                "name": "upstream",
                "type": "openai",
                "options": {"base_url": fake.base_url},
                "credentials": {"api_key": SECRET},
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["credentials_set"] == ["api_key"] and SECRET not in created.text

        # Encrypted at rest: the store holds no plaintext.
        async with gw.gateway.store.engine.connect() as conn:
            stored = (await conn.execute(sa.select(providers))).one()
        assert SECRET not in str(stored._mapping) and stored.credentials

        listed = await client.get("/v1/admin/providers", headers=ADMIN)
        assert SECRET not in listed.text
        assert {p["name"]: p["source"] for p in listed.json()["providers"]} == {
            "simulated": "builtin",
            "upstream": "stored",
        }

        tested = await client.post("/v1/admin/providers/upstream/test", headers=ADMIN, json={"model": "gpt-test"})
        assert tested.status_code == 200 and tested.json()["ok"], tested.text
        assert fake.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
        assert fake.requests[-1].body["model"] == "gpt-test"

        fake.script(Script(status=401))
        failed = (
            await client.post("/v1/admin/providers/upstream/test", headers=ADMIN, json={"model": "gpt-test"})
        ).json()
        assert not failed["ok"] and failed["error"]["code"], failed

        # A stored workflow runs on it.
        workflow = {"name": "via_upstream", "chain": [{"provider": "upstream", "model": "gpt-test"}]}
        assert (await client.post("/v1/admin/workflows", headers=ADMIN, json=workflow)).status_code == 201
        result = await client.post("/v1/ai", json=chat_body("hi", workflow="via_upstream"))
        assert result.status_code == 200, result.text
        assert result.json()["data"]["content"].startswith("Hello from the fake openai provider")

        # Editing options keeps the credentials; the new adapter uses the new settings.
        edited = await client.put(
            "/v1/admin/providers/upstream",
            headers=ADMIN,
            json={"options": {"base_url": fake.base_url, "headers": {"x": "y"}}},
        )
        assert edited.status_code == 422 and edited.json()["error"]["field"] == "options.headers"
        edited = await client.put(
            "/v1/admin/providers/upstream", headers=ADMIN, json={"credentials": {"api_key": "sk-rotated"}}
        )
        assert edited.status_code == 200, edited.text
        await client.post("/v1/ai", json=chat_body("again", workflow="via_upstream"))
        assert fake.requests[-1].headers["authorization"] == "Bearer sk-rotated"

        in_use = await client.delete("/v1/admin/providers/upstream", headers=ADMIN)
        assert in_use.status_code == 409 and "via_upstream" in in_use.json()["error"]["message"]
        assert (await client.delete("/v1/admin/workflows/via_upstream", headers=ADMIN)).status_code == 204
        assert (await client.delete("/v1/admin/providers/upstream", headers=ADMIN)).status_code == 204


async def test_invalid_providers_are_refused_by_field(gw: RunningGateway) -> None:
    async with gw.client() as client:
        cases = [
            ({"type": "telepathy"}, "type"),
            ({"type": "openai", "options": {"api_key": "x"}}, "options.api_key"),
            ({"type": "openai", "options": {"colour": "blue"}}, "options.colour"),
            ({"type": "openai", "options": {"breaker": {"failurs": 3}}}, "options.breaker.failurs"),
            ({"type": "openai", "options": {"base_url": "localhost"}}, "options.base_url"),
            ({"type": "openai", "credentials": {"api_kye": "x"}}, "credentials.api_kye"),
            ({"type": "openai-compatible", "options": {}}, "options"),  # needs base_url or a preset
            ({"type": "anthropic", "options": {"structured_output": "json"}}, "options.structured_output"),
        ]
        for body, field in cases:
            response = await client.post("/v1/admin/providers", headers=ADMIN, json={"name": "p", **body})
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"]["field"] == field, (body, response.json())
        unknown = await client.post(
            "/v1/admin/providers", headers=ADMIN, json={"name": "p", "type": "openai", "options": {"api_kye": "x"}}
        )
        assert unknown.json()["error"] == {
            "code": "invalid_provider",
            "field": "options.api_kye",
            "message": "options.api_kye: unknown option; "
            "allowed: api_key, base_url, breaker, continuation, headers, merge_reads, prices, stream_usage",
        }
        assert (
            await client.post("/v1/admin/providers", headers=ADMIN, json={"name": "simulated", "type": "simulated"})
        ).status_code == 409
        assert await gw.gateway.admin_store.list_providers() == []
        tested = await client.post("/v1/admin/providers/simulated/test", headers=ADMIN)
        assert tested.json()["ok"] and tested.json()["model"] == "sim-1"


async def test_credentials_under_another_secret_key_are_reported_not_used(gw: RunningGateway) -> None:
    from sluice.crypto import CredentialCipher, CredentialsUnreadable

    token = CredentialCipher("one secret").encrypt({"api_key": "k"})
    assert CredentialCipher("one secret").decrypt(token) == {"api_key": "k"}
    try:
        CredentialCipher("another secret").decrypt(token)
    except CredentialsUnreadable:
        pass
    else:
        raise AssertionError("decrypted under the wrong key")
    await gw.gateway.admin_store.save_provider(gw.gateway.default_project_id, "old", "openai", {}, token, create=True)
    await gw.gateway.refresh_catalog()
    assert "old" not in gw.gateway.catalog.providers
    assert "decrypt" in gw.gateway.stored_catalog.problems["providers.old"]
    async with gw.client() as client:
        listed = {p["name"]: p for p in (await client.get("/v1/admin/providers", headers=ADMIN)).json()["providers"]}
        assert "decrypt" in listed["old"]["problem"]
        tested = await client.post("/v1/admin/providers/old/test", headers=ADMIN, json={"model": "m"})
        assert tested.status_code == 409 and tested.json()["error"]["code"] == "provider_unusable"
        # Entering the key again repairs it.
        repaired = await client.put("/v1/admin/providers/old", headers=ADMIN, json={"credentials": {"api_key": "new"}})
        assert repaired.status_code == 200, repaired.text
    assert "old" in gw.gateway.catalog.providers and "providers.old" not in gw.gateway.stored_catalog.problems


async def test_the_types_come_from_the_registry_with_their_options(gw: RunningGateway) -> None:
    from sluice.providers.registry import TYPES

    async with gw.client() as client:
        assert (await client.get("/v1/admin/providers/types")).status_code == 403  # a project key is no admin key
        response = await client.get("/v1/admin/providers/types", headers=ADMIN)
    assert response.status_code == 200
    types = {t["name"]: t for t in response.json()["types"]}
    assert list(types) == list(TYPES)
    anthropic = types["anthropic"]
    assert anthropic["description"] and anthropic["secrets"] == ["api_key", "headers"]
    assert anthropic["structured_output"] == ["tool", "output_format"]
    options = anthropic["options"]
    assert options["additionalProperties"] is False
    assert options["properties"]["max_tokens"]["default"] == 4096
    assert options["properties"]["api_key"]["secret"] is True and "secret" not in options["properties"]["base_url"]
    breaker = options["$defs"]["BreakerPolicy"]
    assert set(breaker["properties"]) == {"failures", "cooldown", "probe_timeout"}
    assert types["simulated"]["secrets"] == [] and "pace_ms" in types["simulated"]["options"]["properties"]
    assert types["openai-compatible"]["options"]["properties"]["preset"]["enum"][0] == "vllm"


async def test_a_config_file_provider_is_listed_with_its_non_secret_options(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        """
providers:
  local: {type: openai-compatible, preset: vllm, api_key: sk-file-secret, breaker: {failures: 2}}
workflows: {}
""",
    )
    gw = await start_gateway(config_path=config)
    async with gw.client() as client:
        listed = {p["name"]: p for p in (await client.get("/v1/admin/providers", headers=ADMIN)).json()["providers"]}
    assert "sk-file-secret" not in str(listed)
    assert listed["local"]["options"]["preset"] == "vllm"
    assert listed["local"]["options"]["breaker"]["failures"] == 2

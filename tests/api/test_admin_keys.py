"""Admin API: API keys are created (plaintext once), listed without secrets, revoked, and only admins may do it."""

from __future__ import annotations

from tests.conftest import MASTER_KEY, RunningGateway, chat_body

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


async def test_create_list_revoke_a_key(gw: RunningGateway) -> None:
    async with gw.client() as client:
        created = await client.post("/v1/admin/keys", json={"name": "backend"}, headers=ADMIN)
        assert created.status_code == 201, created.text
        key = created.json()
        assert key["key"].startswith("sk_sluice_") and key["key"].startswith(key["prefix"])

        # The new key works for the public API…
        new_key = {"Authorization": f"Bearer {key['key']}"}
        assert (await client.post("/v1/ai/async", json=chat_body(), headers=new_key)).status_code == 202

        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["keys"]
        mine = next(k for k in listed if k["id"] == key["id"])
        assert mine["active"] and "key" not in mine and mine["name"] == "backend"
        assert key["key"] not in (await client.get("/v1/admin/keys", headers=ADMIN)).text

        # …but not the admin API (it is not an admin key).
        assert (await client.get("/v1/admin/keys", headers=new_key)).status_code == 403

        revoked = await client.delete(f"/v1/admin/keys/{key['id']}", headers=ADMIN)
        assert revoked.status_code == 200
        refused = await client.post("/v1/ai/async", json=chat_body(), headers=new_key)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        again = await client.delete(f"/v1/admin/keys/{key['id']}", headers=ADMIN)
        assert again.status_code == 404
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["keys"]
        assert next(k for k in listed if k["id"] == key["id"])["revoked_at"] is not None


async def test_an_admin_key_can_use_the_admin_api(gw: RunningGateway) -> None:
    async with gw.client() as client:
        key = (await client.post("/v1/admin/keys", json={"name": "ops", "admin": True}, headers=ADMIN)).json()["key"]
        listed = await client.get("/v1/admin/keys", headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200
        assert (await client.get("/v1/admin/keys")).status_code == 403  # the fixture's project key is not admin
        bad = await client.post("/v1/admin/keys", json={"name": ""}, headers=ADMIN)
        assert bad.status_code == 422 and "name" in bad.json()["error"]["message"]


async def test_admin_routes_are_in_openapi(gw: RunningGateway) -> None:
    async with gw.client() as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/admin/keys",
        "/v1/admin/keys/{key_id}",
        "/v1/admin/workflows",
        "/v1/admin/workflows/{name}",
        "/v1/admin/providers",
        "/v1/admin/providers/{name}/test",
        "/v1/admin/requests",
        "/v1/admin/requests/{request_id}",
        "/v1/admin/schemas/compile",
        "/v1/admin/stats",
        "/metrics",
    ):
        assert path in paths, path

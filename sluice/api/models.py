"""`GET /v1/models` and `GET /v1/models/{id}`: what `model` may name, in OpenAI's shape.

The list holds every workflow (`owned_by: "sluice"`), then every `provider/model` pair a workflow's chain names
(`owned_by`: the provider's name), each sorted by id. Any API key may use any of them. `created` is 0 for every
entry: the catalog keeps no creation time, and a fixed number gives the same answer from every instance and after a
restart.

`/v1/models/{id}` finds an id with a slash too (`provider/model`): a listed one, or any model of a configured
provider, since `/v1/chat/completions` and `/v1/embeddings` accept those as well. An unknown id is a 404 in OpenAI's
error shape (`message`, `type`, `param`, `code: model_not_found`), as every error of these routes is
(`sluice.api.errors`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from sluice.api.auth import ApiKey, gateway_of
from sluice.api.errors import OPENAI_ERROR_RESPONSES, openai_error_response
from sluice.workflows.model import Catalog

router = APIRouter(tags=["openai"])
CREATED = 0
OWNER = "sluice"


def model_entries(catalog: Catalog) -> list[dict[str, Any]]:
    """The workflows, then the `provider/model` pairs of their chains."""
    entries = [_entry(name, OWNER) for name in sorted(catalog.workflows)]
    pairs = {(e.provider, e.model) for workflow in catalog.workflows.values() for e in workflow.chain}
    entries += [_entry(f"{provider}/{model}", provider) for provider, model in sorted(pairs)
                if f"{provider}/{model}" not in catalog.workflows]  # fmt: skip
    return entries


@router.get("/v1/models", responses=OPENAI_ERROR_RESPONSES)
async def list_models(request: Request, principal: ApiKey) -> dict[str, Any]:
    """OpenAI-compatible model list (`client.models.list()`): the workflows and `provider/model` pairs."""
    return {"object": "list", "data": model_entries(gateway_of(request).catalog.of_project(principal.project_id))}


@router.get("/v1/models/{model_id:path}", responses=OPENAI_ERROR_RESPONSES)
async def retrieve_model(request: Request, model_id: str, principal: ApiKey) -> Response:
    """One model (`client.models.retrieve(id)`); the id may be `provider/model`."""
    catalog = gateway_of(request).catalog.of_project(principal.project_id)
    found = catalog.workflow(model_id, principal.project_id)  # the same rule as the endpoints that take `model`
    if found is not None:
        return JSONResponse(_entry(model_id, OWNER if model_id in catalog.workflows else found.chain[0].provider))
    message = f"The model '{model_id}' does not exist: it is neither a workflow nor 'provider/model'"
    return openai_error_response(404, "model_not_found", message)


def _entry(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": owner}

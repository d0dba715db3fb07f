"""The APIs a request may come in on, as the request log, the console and the metrics name them.

The route that accepts a request puts its API's name in the body it records (`api`); a body without one came in on
Sluice's own API (`/v1/ai`, `/v1/ai/async`), whose clients cannot set it (`api` is one of the request fields
`sluice.compat.customer` keeps out of `customer_data`, and the worker reads nothing from it).
"""

from __future__ import annotations

from typing import Any, Final

SLUICE: Final = "sluice"
CHAT_COMPLETIONS: Final = "openai.chat_completions"
EMBEDDINGS: Final = "openai.embeddings"
RESPONSES: Final = "openai.responses"
MESSAGES: Final = "anthropic.messages"
APIS: Final = (SLUICE, CHAT_COMPLETIONS, EMBEDDINGS, RESPONSES, MESSAGES)
# Body fields only a route sets, never a `/v1/ai` client: the API, and `native`, what the API's own request holds
# that the canonical body has no place for (Messages: the client's whole body, which an Anthropic provider sends as it
# came; Responses: the fields its response object repeats, e.g. `previous_response_id`, `text`); `rerun_of`, the
# request an admin re-ran (`POST /v1/admin/requests/{id}/rerun`).
INTERNAL_FIELDS: Final = ("api", "native", "rerun_of")


def api_of(body: dict[str, Any]) -> str:
    """The API a recorded request came in on."""
    api = body.get("api")
    return api if isinstance(api, str) and api in APIS else SLUICE

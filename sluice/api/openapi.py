"""OpenAPI has no WebSocket operations; describe each WebSocket route as the GET that upgrades, so that
`/openapi.json` lists every route the gateway serves."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute


def document_websockets(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for route in _websocket_routes(app.routes):
            schema["paths"].setdefault(route.path, {})["get"] = _upgrade_operation(route)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _websocket_routes(routes: list[Any]) -> list[APIWebSocketRoute]:
    found: list[APIWebSocketRoute] = []
    for route in routes:
        if isinstance(route, APIWebSocketRoute):
            found.append(route)
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers as wrappers
        if included is not None:
            found.extend(_websocket_routes(included.routes))
    return found


def _upgrade_operation(route: APIWebSocketRoute) -> dict[str, Any]:
    parameters = [
        {"name": param.name, "in": "query", "required": False, "schema": {"type": "string"}}
        for param in route.dependant.query_params
    ]
    return {
        "summary": f"WebSocket: {route.name}",
        "description": (route.endpoint.__doc__ or "").strip(),
        "operationId": f"websocket_{route.name}",
        "tags": ["websockets"],
        "parameters": parameters,
        "responses": {"101": {"description": "Switching Protocols: the connection becomes a WebSocket"}},
    }

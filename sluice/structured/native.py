"""How each provider type is asked for schema-shaped JSON (first version: every type uses the prompt fallback)."""

from __future__ import annotations

from typing import Any


def request_options(provider_type: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(mode, extra request fields) for a provider type: mode is `native` or `prompt`."""
    return "prompt", {}

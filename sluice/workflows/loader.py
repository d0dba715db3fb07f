"""Load providers and workflows from YAML: raw records → validated `Catalog`, unknown keys rejected by name.

`${NAME}` and `${NAME:-default}` are replaced from the environment. A provider whose variable is unset stays in the
catalog, marked with what is missing, so a request naming it fails with a message that says which variable to set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from sluice import durations
from sluice.providers.config import OptionsError, ProviderConfig, validate_options
from sluice.workflows.model import CallbackPolicy, Catalog, ChainEntry, Timeouts, Workflow
from sluice.workflows.shorthand import ShorthandError, compile_schema

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_WORKFLOW_KEYS = {
    "event",
    "chain",
    "system",
    "schema",
    "callback",
    "webhook_url",
    "echo_fields",
    "modelriver_signature",
    "continuation",
    "cancel_when_unwatched_for",
    "description",
}
_CHAIN_KEYS = {"provider", "model", "params", "timeout", "timeouts", "retries"}
_TIMEOUT_KEYS = {"connect", "first_token", "idle", "total"}
_CALLBACK_KEYS = {"timeout", "on_timeout"}
MIN_UNWATCHED = 1.0  # seconds: `cancel_when_unwatched_for` below this would cancel across a page reload

DEMO_SCHEMA = {
    "reply": "string",
    "summary": "string",
    "sentiment": "positive | negative | neutral | mixed",
    "confidence": "number",
    "topics": "array<string>",
    "action_items": "array<{task: string, priority: 'high' | 'medium' | 'low'}>",
}


class ConfigError(ValueError):
    """A config file or workflow definition that cannot be used; the message names the offending key."""


def builtin_catalog() -> dict[str, Any]:
    """The raw records present on every install: the simulated provider and the `demo` workflow."""
    return {
        "providers": {"simulated": {"type": "simulated", "pace_ms": 20}},
        "workflows": {
            "demo": {
                "event": "new_chat",
                "chain": [{"provider": "simulated", "model": "sim-1"}],
                "system": "You are a helpful assistant.",
                "schema": DEMO_SCHEMA,
            }
        },
    }


def load_catalog(path: Path | None, environ: dict[str, str] | None = None) -> Catalog:
    raw = builtin_catalog()
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping with 'providers' and 'workflows'")
        unknown = set(loaded) - {"providers", "workflows"}
        if unknown:
            raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; expected 'providers', 'workflows'")
        raw["providers"].update(loaded.get("providers") or {})
        raw["workflows"].update(loaded.get("workflows") or {})
    return build_catalog(raw, os.environ if environ is None else environ)


def build_catalog(raw: dict[str, Any], environ: Any) -> Catalog:
    providers = {name: parse_provider(name, record, environ) for name, record in raw["providers"].items()}
    workflows = {name: parse_workflow(name, record, providers) for name, record in raw["workflows"].items()}
    return Catalog(providers=providers, workflows=workflows)


def parse_provider(name: str, record: Any, environ: Any) -> ProviderConfig:
    """A provider record validated by its type's options model (`sluice.providers.options`), after `${VAR}`s are
    replaced; a ConfigError names each problem by path (`providers.openai.api_kye: unknown option; allowed: …`)."""
    where = f"providers.{name}"
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: expected a mapping with at least 'type'")
    missing: list[str] = []
    unset: list[tuple[str | int, ...]] = []
    options = {
        key: _interpolate(value, environ, missing, (key,), unset) for key, value in record.items() if key != "type"
    }
    try:
        settings = validate_options(record.get("type"), options, unset)
    except OptionsError as exc:
        raise ConfigError(
            "\n".join(f"{where}.{path}: {why}" if path else f"{where}: {why}" for path, why in exc.problems)
        ) from None
    return ProviderConfig(name=name, type=record["type"], settings=settings, missing_env=tuple(dict.fromkeys(missing)))


def parse_workflow(name: str, record: Any, providers: dict[str, ProviderConfig]) -> Workflow:
    where = f"workflows.{name}"
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: expected a mapping with at least 'chain'")
    _reject_unknown(record, _WORKFLOW_KEYS, where)
    chain_raw = record.get("chain")
    if not isinstance(chain_raw, list) or not chain_raw:
        raise ConfigError(f"{where}.chain: list at least one {{provider, model}} entry")
    chain = tuple(_parse_chain_entry(entry, f"{where}.chain[{i}]", providers) for i, entry in enumerate(chain_raw))
    schema = None
    if record.get("schema") is not None:
        try:
            schema = compile_schema(record["schema"])
        except ShorthandError as exc:
            raise ConfigError(f"{where}.{exc}") from exc
    callback_raw = record.get("callback") or {}
    _reject_unknown(callback_raw, _CALLBACK_KEYS, f"{where}.callback")
    on_timeout = callback_raw.get("on_timeout", "deliver")
    if on_timeout not in ("deliver", "fail"):
        raise ConfigError(f"{where}.callback.on_timeout: must be 'deliver' or 'fail', not {on_timeout!r}")
    callback = CallbackPolicy(
        timeout=parse_duration(callback_raw.get("timeout", 300), f"{where}.callback.timeout"), on_timeout=on_timeout
    )
    modelriver_signature = record.get("modelriver_signature", True)
    if not isinstance(modelriver_signature, bool):
        raise ConfigError(f"{where}.modelriver_signature: must be true or false, not {modelriver_signature!r}")
    continuation = record.get("continuation", "auto")
    continuation = {False: "off", True: "auto"}.get(continuation, continuation)  # YAML reads a bare `off` as false
    if continuation not in ("auto", "off"):
        raise ConfigError(f"{where}.continuation: must be 'auto' or 'off', not {continuation!r}")
    unwatched = record.get("cancel_when_unwatched_for")
    cancel_when_unwatched_for = None
    if unwatched is not None:
        cancel_when_unwatched_for = parse_duration(unwatched, f"{where}.cancel_when_unwatched_for")
        if cancel_when_unwatched_for < MIN_UNWATCHED:
            raise ConfigError(
                f"{where}.cancel_when_unwatched_for: at least {MIN_UNWATCHED:g}s (a reload or a reconnect must not "
                f"cancel), not {unwatched!r}"
            )
    return Workflow(
        name=name,
        chain=chain,
        system=record.get("system"),
        schema=schema,
        event=record.get("event"),
        webhook_url=record.get("webhook_url"),
        callback=callback,
        echo_fields=tuple(record.get("echo_fields") or ()),
        modelriver_signature=modelriver_signature,
        continuation="off" if continuation == "off" else "auto",
        cancel_when_unwatched_for=cancel_when_unwatched_for,
    )


def _parse_chain_entry(entry: Any, where: str, providers: dict[str, ProviderConfig]) -> ChainEntry:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected {{provider, model}}")
    _reject_unknown(entry, _CHAIN_KEYS, where)
    provider, model = entry.get("provider"), entry.get("model")
    if provider not in providers:
        raise ConfigError(f"{where}.provider: unknown provider {provider!r}; defined: {', '.join(sorted(providers))}")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}.model: name the model, e.g. 'gpt-4o-mini'")
    params = entry.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}.params: expected a mapping")
    timeout = parse_duration(entry["timeout"], f"{where}.timeout") if "timeout" in entry else None
    timeouts_raw = entry.get("timeouts") or {}
    if not isinstance(timeouts_raw, dict):
        raise ConfigError(f"{where}.timeouts: expected a mapping of {', '.join(sorted(_TIMEOUT_KEYS))}")
    _reject_unknown(timeouts_raw, _TIMEOUT_KEYS, f"{where}.timeouts")
    timeouts = Timeouts(**{k: parse_duration(v, f"{where}.timeouts.{k}") for k, v in timeouts_raw.items()})
    retries = entry.get("retries")
    if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10):
        raise ConfigError(f"{where}.retries: expected a whole number from 0 to 10, not {retries!r}")
    return ChainEntry(
        provider=provider, model=model, params=params, timeout=timeout, timeouts=timeouts, retries=retries
    )


def parse_duration(value: Any, where: str) -> float:
    """`sluice.durations.parse_duration`, failing with a ConfigError that names `where`."""
    try:
        return durations.parse_duration(value, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _reject_unknown(record: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(record) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _interpolate(
    value: Any, environ: Any, missing: list[str], path: tuple[str | int, ...], unset: list[tuple[str | int, ...]]
) -> Any:
    """`value` with `${VAR}`s replaced; an unset VAR (without a default) is added to `missing`, and the path of the
    value that needed it to `unset`."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is None:
                missing.append(name)
                unset.append(path)
                return ""
            return default

        return _ENV_PATTERN.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, missing, (*path, k), unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, missing, (*path, i), unset) for i, v in enumerate(value)]
    return value

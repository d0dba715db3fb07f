"""The provider registry is the one list of provider types: every row's adapter, options model, dialects and fake
exist and agree with each other, and everything that used to keep its own list reads this one."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from sluice.cli.fake_provider import KINDS
from sluice.providers.config import ProviderConfig, validate_options
from sluice.providers.options import ENGINE_OPTIONS, BreakerPolicy
from sluice.providers.registry import TYPES, ProviderType, create_provider, fake_protocols
from sluice.structured.native import DIALECTS
from sluice.testing.protocols import PROTOCOLS

ENTRIES = list(TYPES.values())
# A value for each option whose default is None, so that every option can be set at once.
EXAMPLES = {
    "api_key": "k",
    "headers": {"x-extra": "1"},
    "base_url": "http://127.0.0.1:9/v1",
    "preset": "vllm",
    "keep_alive": "5m",
}
MINIMAL = {entry.name: {"base_url": "http://127.0.0.1:9/v1"} if entry.http else {} for entry in ENTRIES}


def adapter_options(entry: ProviderType) -> dict[str, Any]:
    return {name: field for name, field in entry.options.model_fields.items() if name not in ENGINE_OPTIONS}


def named_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters a constructor takes by name, following `**kwargs` handed on to the base class."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        found.update(
            {n: p for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
        )
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return found


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_adapter_takes_every_option_of_its_model_with_the_same_default(entry: ProviderType) -> None:
    cls = entry.adapter_class()
    parameters = named_parameters(cls)
    for name, field in adapter_options(entry).items():
        assert name in parameters, f"{entry.adapter} does not take {name!r}"
        default = parameters[name].default
        if default is not inspect.Parameter.empty:
            assert field.default == default, f"{entry.name}.{name}: model {field.default!r}, adapter {default!r}"
    assert getattr(cls, "kind", entry.name) == entry.name


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_an_adapter_is_created_from_every_option_set_at_once(entry: ProviderType) -> None:
    record = {
        name: EXAMPLES.get(name, field.default)
        for name, field in entry.options.model_fields.items()
        if name != "breaker"
    }
    record["breaker"] = {"failures": 2, "cooldown": "1s"}
    config = ProviderConfig("p", entry.name, validate_options(entry.name, record))
    assert set(config.adapter_options) == set(adapter_options(entry))
    assert config.breaker == BreakerPolicy(failures=2, cooldown=1.0)
    provider = create_provider(config, **({"client": None} if entry.http else {}))
    assert provider.name == "p"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_options_refuse_unknown_keys_at_every_level(entry: ProviderType) -> None:
    def forbids(model: Any) -> bool:
        config = model.model_config if isinstance(model, type) and issubclass(model, BaseModel) else None
        return (config or getattr(model, "__pydantic_config__", {})).get("extra") == "forbid"

    assert forbids(entry.options) and forbids(BreakerPolicy)
    assert "breaker" in entry.options.model_fields  # an engine option every type has


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_dialect_exists_and_the_option_that_chooses_offers_exactly_those(entry: ProviderType) -> None:
    assert entry.dialects and set(entry.dialects) <= DIALECTS
    field = entry.options.model_fields.get("structured_output")
    if len(entry.dialects) == 1:
        assert field is None
    else:
        assert field is not None
        assert typing.get_args(field.annotation) == entry.dialects and field.default == entry.dialects[0]
    assert (
        ProviderConfig("p", entry.name, validate_options(entry.name, MINIMAL[entry.name])).dialect
        == (entry.dialects[0])
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_http_type_has_a_fake_that_speaks_its_protocol(entry: ProviderType) -> None:
    if entry.http:
        assert entry.fake in PROTOCOLS and "api_key" in entry.secrets
    else:
        assert entry.fake is None and not entry.secrets


def test_the_other_lists_are_read_from_the_registry() -> None:
    assert set(fake_protocols()) == set(PROTOCOLS)  # every fake is some type's
    assert {name: kind for name, kind in KINDS.items() if name in TYPES} == {e.name: e.fake for e in ENTRIES if e.fake}
    with pytest.raises(ValueError, match=", ".join(TYPES)):
        validate_options("vllm", {})
    page = (Path(__file__).parents[2] / "sluice/console/templates/providers.html").read_text()
    assert "<option" not in page  # the console builds its type list from GET /v1/admin/providers/types


def test_importing_the_loader_and_registry_imports_no_adapter_and_no_aiohttp() -> None:
    adapters = sorted(entry.adapter.split(":")[0] for entry in ENTRIES)
    code = (
        "import sys, sluice, sluice.workflows.loader, sluice.providers.pool\n"
        f"loaded = [m for m in sys.modules if m == 'aiohttp' or m in {adapters!r}]\n"
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

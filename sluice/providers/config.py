"""A provider's validated config: its options checked by its type's model (`options.py`), problems named by path."""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from sluice.providers.options import ENGINE_OPTIONS, BreakerPolicy, Options
from sluice.providers.registry import TYPES, ProviderType

Path = tuple[str | int, ...]
_UNKNOWN = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
_MAPPING = frozenset({"dataclass_type", "model_type", "dict_type"})  # pydantic names our classes in these


class OptionsError(ValueError):
    """Options a provider type refuses. `problems`: (path, message) pairs, the path like `breaker.failurs` ("" for
    the record as a whole); the message never repeats the value of a secret option."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{path}: {message}" if path else message for path, message in problems))


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    type: str
    settings: Options  # validated by the type's options model
    missing_env: tuple[str, ...] = ()  # `${VAR}`s it needs that are not set: it cannot run until they are

    @property
    def entry(self) -> ProviderType:
        return TYPES[self.type]

    @property
    def options(self) -> dict[str, Any]:
        """The options the config sets, validated."""
        return self.settings.model_dump(exclude_unset=True)

    @property
    def adapter_options(self) -> dict[str, Any]:
        """What the adapter is constructed with: the options set, without the engine's own."""
        return self.settings.model_dump(exclude_unset=True, exclude=set(ENGINE_OPTIONS))

    @property
    def breaker(self) -> BreakerPolicy:
        return self.settings.breaker

    @property
    def continuation(self) -> str:
        """How an answer cut elsewhere is continued on this provider: prefill | instruction | off."""
        return str(getattr(self.settings, "continuation", "off"))

    @property
    def dialect(self) -> str:
        """How this provider is asked for schema-shaped output (`sluice.structured.native`)."""
        chosen = getattr(self.settings, "structured_output", None)
        return chosen if isinstance(chosen, str) else self.entry.dialects[0]


def validate_options(kind: Any, record: Mapping[str, Any], unset: Collection[Path] = ()) -> Options:
    """`record` (the provider's options, without `type`) validated by the model of `kind`, or `OptionsError`.

    `unset`: paths of values that came from a `${VAR}` that is not set. Such a provider cannot run until the variable
    is set, so its values are not judged now: where one fails, it is left out and its default stands in (unknown
    option names are still refused)."""
    entry = TYPES.get(kind) if isinstance(kind, str) else None
    if entry is None:
        raise OptionsError([("type", f"must be one of {', '.join(TYPES)}, not {kind!r}")])
    context = {"unset": {path[0] for path in unset}}  # for checks across options (`OpenAICompatibleOptions`)
    try:
        return entry.options.model_validate(record, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    problems = [error for error in errors if error["type"] in _UNKNOWN or not _within(error["loc"], unset)]
    problems.sort(key=lambda error: len(error["loc"]))  # the record's own keys first, then nested ones
    if problems:
        raise OptionsError([_describe(entry, error) for error in problems])
    pruned = copy.deepcopy(dict(record))
    for error in errors:
        _drop(pruned, error["loc"])
    return entry.options.model_validate(pruned, context=context)


def _within(loc: Path, paths: Collection[Path]) -> bool:
    return bool(loc) and any(loc[: len(path)] == path or path[: len(loc)] == loc for path in paths)


def _drop(record: dict[str, Any], loc: Path) -> None:
    target: Any = record
    for step in loc[:-1]:
        target = target.get(step) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target.pop(loc[-1], None)


def _describe(entry: ProviderType, error: Any) -> tuple[str, str]:
    loc: Path = tuple(error["loc"])
    path = ".".join(str(step) for step in loc)
    if error["type"] in _UNKNOWN:
        allowed = sorted(_fields(_type_at(entry.options, loc[:-1])))
        return path, "unknown option" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if error["type"] == "value_error":  # our own validators' messages
        return path, str(error["ctx"]["error"])
    if error["type"] in _MAPPING:
        message = "expected a mapping"
    else:
        message = error["msg"][:1].lower() + error["msg"][1:]
    if loc and loc[0] not in entry.secrets:
        shown = repr(error["input"])
        message += f", not {shown if len(shown) <= 60 else shown[:57] + '...'}"
    return path, message


def _type_at(model: Any, loc: Path) -> Any:
    """The model or dataclass that holds the options at `loc` (None past the last one)."""
    target = model
    for step in loc:
        target = _unwrapped(target)
        if typing.get_origin(target) is dict:  # `prices.my-model`: the mapping's values
            target = typing.get_args(target)[1]
        elif _is_model(target):
            field = target.model_fields.get(str(step))
            target = field.annotation if field is not None else None
        elif isinstance(target, type) and dataclasses.is_dataclass(target):
            target = typing.get_type_hints(target).get(str(step))
        else:
            return None
    return target


def _unwrapped(target: Any) -> Any:
    """`X | None` as `X`."""
    if isinstance(target, types.UnionType) or typing.get_origin(target) is typing.Union:
        present = [arg for arg in typing.get_args(target) if arg is not type(None)]
        return present[0] if len(present) == 1 else target
    return target


def _fields(target: Any) -> list[str]:
    target = _unwrapped(target)
    if _is_model(target):
        return list(target.model_fields)
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        return [field.name for field in dataclasses.fields(target)]
    return []


def _is_model(target: Any) -> bool:
    return isinstance(target, type) and issubclass(target, BaseModel)

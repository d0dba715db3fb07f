"""What an attempt cost: its usage priced from Pydantic's `genai-prices` table (cache reads and writes, reasoning,
historical prices), or from the operator's own price for a provider's model (the `prices` option of a provider).

A provider is priced by its type: `openai` → genai-prices' `openai`, `anthropic` → `anthropic`, `gemini` → `google`,
an `openai-compatible` provider with the `groq`, `together` or `openrouter` preset → that one. Other servers (vLLM,
llama.cpp, Ollama, the simulated provider…) cost nothing unless their `prices` say otherwise: a model you run costs
what you say it does. A model genai-prices does not know costs 0 and is marked `unknown` (a key or project with a
budget cannot spend on it: `sluice.spend.limits`).

Speed: `genai_prices.calc_price` takes ~60 µs, a tenth of a request's CPU. A price that is linear in the counts (no
tiers by prompt size) is therefore reduced once to a cost per token of each kind, computed by genai-prices itself on
one-kind usages, and applied with exact decimal arithmetic: the same figure to the last digit
(tests/spend/test_prices.py checks every model of the mapped providers); a tiered price goes through genai-prices
each time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import version
from typing import TYPE_CHECKING, Protocol

from sluice.providers.base import Usage
from sluice.providers.options import TokenPrices

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, ModelPrice

    from sluice.providers.config import ProviderConfig

GENAI_PRICES = "genai-prices"
OVERRIDE = "override"
FREE = "free"  # a server of your own with no price set
UNKNOWN = "unknown"  # a priced provider's model that genai-prices does not know
_BY_TYPE = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
_BY_PRESET = {"groq": "groq", "together": "together", "openrouter": "openrouter"}
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


@functools.cache
def genai_prices_version() -> str:
    return version("genai-prices")


class Catalog(Protocol):
    @property
    def providers(self) -> Mapping[str, ProviderConfig]: ...


@dataclass(frozen=True, slots=True)
class Priced:
    cost: Decimal
    source: str  # genai-prices | override | free | unknown
    cost_usd: float = field(init=False)  # `cost` as a float, worked out once: it is read on every attempt

    def __post_init__(self) -> None:
        object.__setattr__(self, "cost_usd", float(self.cost))


_NOTHING = {source: Priced(Decimal(0), source) for source in (FREE, UNKNOWN)}  # most attempts: shared


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token of each kind, over the price of a plain input or output token: a cache-read token costs
    `input + cache_read` (negative: cheaper), a reasoning token `output + reasoning`."""

    input: Decimal
    output: Decimal
    cache_read: Decimal = _ZERO
    cache_write: Decimal = _ZERO
    reasoning: Decimal = _ZERO

    def cost(self, usage: Usage) -> Decimal:
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cached_input_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + usage.reasoning_tokens * self.reasoning
        )

    def worst_case(self, input_tokens: int, output_tokens: int) -> Decimal:
        """The most `input_tokens` in and `output_tokens` out can cost (every input token written to the cache,
        every output token reasoning, where those cost more)."""
        return input_tokens * (self.input + max(self.cache_write, _ZERO)) + output_tokens * (
            self.output + max(self.reasoning, _ZERO)
        )


def override_rates(price: TokenPrices) -> Rates:
    """A `prices` entry (USD per million tokens) as rates; cache tokens cost the input price unless set."""
    per_input = Decimal(str(price.input)) / _MILLION
    per_output = Decimal(str(price.output)) / _MILLION
    read, write = price.cache_read, price.cache_write
    return Rates(
        input=per_input,
        output=per_output,
        cache_read=_ZERO if read is None else Decimal(str(read)) / _MILLION - per_input,
        cache_write=_ZERO if write is None else Decimal(str(write)) / _MILLION - per_input,
    )


class Prices:
    """Prices each attempt of the catalog's providers (`price`), and the worst case of a reservation
    (`worst_case`)."""

    def __init__(self, catalog: Callable[[], Catalog], clock: Callable[[], datetime] | None = None) -> None:
        self.catalog = catalog
        self.clock = clock or (lambda: datetime.now(UTC))
        self._models: dict[tuple[str, str], ModelInfo | None] = {}
        self._linear: dict[int, tuple[ModelPrice, Rates | None]] = {}
        # Where each provider/model's price comes from, for the catalog it was worked out from.
        self._seen: Catalog | None = None
        self._resolved: dict[tuple[str, str], tuple[Rates | ModelInfo | None, str]] = {}

    def price(self, provider: str, model: str, usage: Usage, at: datetime | None = None) -> Priced:
        found, source = self._resolve(provider, model)
        if isinstance(found, Rates):
            return Priced(found.cost(usage), source)
        if found is None:
            return _NOTHING[source]
        rates = self._rates_at(found, at)
        return Priced(rates.cost(usage) if isinstance(rates, Rates) else _genai(rates, usage), source)

    def worst_case(self, provider: str, model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
        """What an attempt of `input_tokens` in and up to `output_tokens` out can cost at most; None when the price
        is unknown."""
        found, source = self._resolve(provider, model)
        if found is None:
            return None if source == UNKNOWN else _ZERO
        rates = found if isinstance(found, Rates) else self._rates_at(found, None)
        if isinstance(rates, Rates):
            return rates.worst_case(input_tokens, output_tokens)
        usage = Usage(input_tokens, output_tokens, cache_write_tokens=input_tokens, reasoning_tokens=output_tokens)
        plain = Usage(input_tokens, output_tokens)
        return max(_genai(rates, usage), _genai(rates, plain))

    def source_of(self, provider: str, model: str) -> str:
        return self._resolve(provider, model)[1]

    def _resolve(self, provider: str, model: str) -> tuple[Rates | ModelInfo | None, str]:
        """The override's rates, genai-prices' model, or None (free or unknown), and that source."""
        catalog = self.catalog()
        if catalog is not self._seen:
            self._seen, self._resolved = catalog, {}
        key = (provider, model)
        found = self._resolved.get(key)
        if found is None:
            override = self._override(provider, model)
            genai_provider = self._genai_provider(provider)
            info = self._model(genai_provider, model) if genai_provider and override is None else None
            if override is not None:
                found = (override, OVERRIDE)
            elif genai_provider is None:
                found = (None, FREE)
            else:
                found = (info, GENAI_PRICES if info is not None else UNKNOWN)
            self._resolved[key] = found
        return found

    def _rates_at(self, info: ModelInfo, at: datetime | None) -> Rates | ModelPrice:
        """The model's price at `at` (genai-prices keeps their history): linear rates, or a tiered price to compute
        in full."""
        model_price = info.get_prices(at or self.clock())
        cached = self._linear.get(id(model_price))
        if cached is None or cached[0] is not model_price:
            cached = self._linear[id(model_price)] = (model_price, _linear_rates(model_price))
        return cached[1] or model_price

    def _config(self, provider: str) -> ProviderConfig | None:
        return self.catalog().providers.get(provider)

    def _override(self, provider: str, model: str) -> Rates | None:
        config = self._config(provider)
        prices = getattr(config.settings, "prices", None) if config is not None else None
        if not prices:
            return None
        price = prices.get(model) or prices.get("*")
        return override_rates(price) if price is not None else None

    def _genai_provider(self, provider: str) -> str | None:
        config = self._config(provider)
        if config is None:
            return None
        preset = getattr(config.settings, "preset", None)
        if config.type == "openai-compatible":
            return _BY_PRESET.get(preset) if isinstance(preset, str) else None
        return _BY_TYPE.get(config.type)

    def _model(self, genai_provider: str, model: str) -> ModelInfo | None:
        key = (genai_provider, model)
        if key not in self._models:
            from genai_prices.data_snapshot import get_snapshot

            try:
                self._models[key] = get_snapshot().find_provider_model(model, None, genai_provider, None)[1]
            except LookupError:
                self._models[key] = None
        return self._models[key]


def _genai(model_price: ModelPrice, usage: Usage) -> Decimal:
    from genai_prices import Usage as GenaiUsage

    counts = GenaiUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )
    return model_price.calc_price(counts)["total_price"]


def _linear_rates(model_price: ModelPrice) -> Rates | None:
    """The price as a cost per token of each kind, computed by genai-prices itself; None for a tiered price (its
    rate depends on the prompt's size)."""
    from genai_prices.types import TieredPrices

    if any(isinstance(value, TieredPrices) for value in vars(model_price).values()):
        return None
    n = 1_000_000

    def per_token(usage: Usage) -> Decimal:
        return _genai(model_price, usage) / n

    plain_input, plain_output = per_token(Usage(input_tokens=n)), per_token(Usage(output_tokens=n))
    return Rates(
        input=plain_input,
        output=plain_output,
        cache_read=per_token(Usage(input_tokens=n, cached_input_tokens=n)) - plain_input,
        cache_write=per_token(Usage(input_tokens=n, cache_write_tokens=n)) - plain_input,
        reasoning=per_token(Usage(output_tokens=n, reasoning_tokens=n)) - plain_output,
    )


class NoPrices:
    """Everything free: a runner without a price table (engine unit tests)."""

    def price(self, provider: str, model: str, usage: Usage, at: datetime | None = None) -> Priced:
        return _NOTHING[FREE]

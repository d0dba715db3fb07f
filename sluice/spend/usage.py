"""Usage as the request log, the events and the spend pages keep it: added up over attempts, written as JSON, and
estimated from the text where a provider reported nothing (a stream cut before its usage chunk)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson

from sluice.providers.base import ProviderRequest, Usage
from sluice.spend.prices import Priced, genai_prices_version

# Roughly four characters a token for English text with the usual BPE vocabularies: an estimate, marked as such.
CHARS_PER_TOKEN = 4
_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def counted_input_tokens(body: dict[str, Any]) -> int:
    """An upper estimate of an accepted request's input tokens, for the worst case a budget holds: a token per three
    bytes of the JSON of its conversation (messages, system prompt, tools) or its embeddings inputs. Tokenizers give
    about four characters a token, and JSON's punctuation is counted too, so real counts come out below it."""
    parts = [body.get(name) for name in ("messages", "system", "tools", "input") if body.get(name) is not None]
    return math.ceil(len(orjson.dumps(parts)) / 3)


def input_text(request: ProviderRequest) -> str:
    """The text a provider reads as the request's input (system prompt, turns, tool definitions), for estimates."""
    parts = [request.system or ""]
    for message in request.messages:
        parts.append(message.text)
        parts.extend(call.arguments for call in message.tool_calls)
    parts.extend(f"{tool.name} {tool.description or ''} {tool.parameters}" for tool in request.tools)
    return "\n".join(parts)


def estimated(request: ProviderRequest, output: str) -> Usage:
    """The usage of an attempt whose provider reported none: its input from the request, its output from the text
    that streamed."""
    return Usage(estimate_tokens(input_text(request)), estimate_tokens(output), estimated=True)


def total(usages: Iterable[Usage]) -> Usage:
    """The sum of several attempts' usage (estimated if any part was)."""
    sums = dict.fromkeys(_FIELDS, 0)
    any_estimated = False
    for usage in usages:
        for name in _FIELDS:
            sums[name] += getattr(usage, name)
        any_estimated = any_estimated or usage.estimated
    return Usage(**sums, estimated=any_estimated)


def usage_meta(usage: Usage) -> dict[str, Any]:
    """Usage as JSON (events, request log): the counts, and the cache and reasoning shares and the estimate mark where
    there are any (only then, so an ordinary answer's event stays small)."""
    meta: dict[str, Any] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cached_input_tokens:
        meta["cached_input_tokens"] = usage.cached_input_tokens
    if usage.cache_write_tokens:
        meta["cache_write_tokens"] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        meta["reasoning_tokens"] = usage.reasoning_tokens
    if usage.estimated:
        meta["estimated"] = True
    return meta


def usage_from_meta(meta: dict[str, Any] | None) -> Usage:
    meta = meta or {}
    return Usage(**{name: int(meta.get(name) or 0) for name in _FIELDS}, estimated=bool(meta.get("estimated")))


def answer_usage(meta: dict[str, Any]) -> dict[str, Any]:
    """The usage of the attempt that gave the answer, as the API faces report it (a client sizing its context wants
    that one); `meta.usage` counts every attempt of the request, failed ones too."""
    for attempt in reversed(meta.get("attempts") or ()):
        if attempt.get("status") == "succeeded" and isinstance(attempt.get("usage"), dict):
            return attempt["usage"]
    return meta.get("usage") or {}


def spend_meta(attempts: list[dict[str, Any]], prices_version: str) -> dict[str, Any]:
    """A request's `usage` (every attempt's, added up), `cost_usd` and where its prices came from, from the attempts
    of its meta (each with its own `usage`, `cost_usd` and `price_source`)."""
    if len(attempts) == 1 and attempts[0].get("usage"):  # most requests: nothing to add up
        only = attempts[0]
        return {
            "usage": only["usage"],
            "cost_usd": only.get("cost_usd") or 0.0,
            "price_source": only.get("price_source") or "none",
            "prices_version": prices_version,
        }
    usage = total(usage_from_meta(a.get("usage")) for a in attempts)
    sources = {a["price_source"] for a in attempts if a.get("price_source") and a.get("usage")}
    return {
        "usage": usage_meta(usage),
        "cost_usd": sum_usd(a.get("cost_usd") or 0.0 for a in attempts),
        "price_source": sources.pop() if len(sources) == 1 else ("mixed" if sources else "none"),
        "prices_version": prices_version,
    }


def stopped_meta(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """The meta of a run stopped midway (cancelled): the attempts it made, each as its meta entry with its usage and
    cost (`Runner.run`'s `attempts`), and what they came to; nothing when it made none."""
    if not attempts:
        return {}
    return {"attempts": attempts, **spend_meta(attempts, genai_prices_version())}


def sum_usd(amounts: Iterable[float]) -> float:
    """Dollar amounts added up without binary rounding creeping in (each is exact to its 12th decimal or so)."""
    return float(sum((Decimal(repr(amount)) for amount in amounts), Decimal(0)))


def spent(usage: Usage, priced: Priced) -> dict[str, Any]:
    """An attempt's usage and cost, as its entry in the request's `meta.attempts` has them."""
    return {"usage": usage_meta(usage), "cost_usd": priced.cost_usd, "price_source": priced.source}

from __future__ import annotations

import email.utils

import pytest

from sluice.providers._http import merge, parse_retry_after, status_error
from sluice.providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (413, InvalidRequest),
        (422, InvalidRequest),
        (401, AuthenticationFailed),
        (403, AuthenticationFailed),
        (404, ModelNotFound),
        (408, ProviderTimeout),
        (429, RateLimited),
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (529, ProviderUnavailable),
        (418, ProviderError),
    ],
)
def test_status_classes(status: int, cls: type[ProviderError]) -> None:
    error = status_error("p", status, {"retry-after": "2"}, "detail")
    assert type(error) is cls
    assert error.message == f"p answered HTTP {status}: detail"


def test_classification_table() -> None:
    assert RateLimited("x").retry_same and ProviderUnavailable("x").retry_same
    assert not ProviderTimeout("x").retry_same and ProviderTimeout("x").health
    assert InvalidRequest("x").fail_fast and not AuthenticationFailed("x").fail_fast
    assert status_error("p", 429, {"retry-after": "2"}, None).retry_after == 2.0


def test_merge_is_nested() -> None:
    body = {"generationConfig": {"temperature": 0.1}, "model": "m"}
    merge(body, {"generationConfig": {"responseMimeType": "application/json"}, "format": {"type": "object"}})
    assert body == {
        "generationConfig": {"temperature": 0.1, "responseMimeType": "application/json"},
        "model": "m",
        "format": {"type": "object"},
    }

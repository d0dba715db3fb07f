from __future__ import annotations

from sluice.engine.retry import RetryPolicy
from sluice.providers.errors import InvalidRequest, ProviderTimeout, ProviderUnavailable, RateLimited

POLICY = RetryPolicy(retries=2, base_delay=0.5, max_delay=1.5, max_retry_after=5)


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    error = ProviderUnavailable("503")
    assert [POLICY.delay(error, n, rand=lambda: 1.0) for n in (1, 2)] == [0.5, 1.0]
    assert POLICY.delay(error, 1, rand=lambda: 0.0) == 0.0
    assert RetryPolicy(retries=5, base_delay=0.5, max_delay=1.5).delay(error, 4, rand=lambda: 1.0) == 1.5
    assert POLICY.delay(error, 3) is None  # retries used up: move on


def test_retry_after_is_honoured_unless_too_long() -> None:
    assert POLICY.delay(RateLimited("429", retry_after=2.0), 1) == 2.0
    assert POLICY.delay(RateLimited("429", retry_after=60.0), 1) is None  # the next provider instead


def test_errors_that_a_retry_cannot_fix_move_on_at_once() -> None:
    assert POLICY.delay(InvalidRequest("400"), 1) is None
    assert POLICY.delay(ProviderTimeout("slow"), 1) is None

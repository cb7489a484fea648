from __future__ import annotations

import random

import pytest
from dramatiq.errors import ActorNotFound
from hypothesis import given
from hypothesis import strategies as st

from app.errors import InvalidJob, PermanentError, RateLimited, RetryableError
from app.middleware.retry_policy import RetrySettings, decide

POLICY = RetrySettings()


def test_default_backoff_is_5s_times_5_capped_at_an_hour() -> None:
    no_jitter = RetrySettings(jitter=0.0)
    assert [no_jitter.backoff_ms(n) for n in range(6)] == [
        5_000,
        25_000,
        125_000,
        625_000,
        3_125_000,
        3_600_000,
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermanentError("x"), "permanent_error"),
        (InvalidJob("bad"), "permanent_error"),
        (ActorNotFound("nope"), "unknown_actor"),
    ],
)
def test_permanent_errors_are_not_retried(error: BaseException, reason: str) -> None:
    decision = decide(error, retries=0, age_ms=0, policy=POLICY)
    assert not decision.retry
    assert decision.reason == reason


@pytest.mark.parametrize("error", [RetryableError("x"), ValueError("unknown bug"), TimeoutError()])
def test_retryable_and_unknown_errors_are_retried_until_exhausted(error: BaseException) -> None:
    assert decide(error, retries=0, age_ms=0, policy=POLICY).retry
    exhausted = decide(error, retries=POLICY.max_retries, age_ms=0, policy=POLICY)
    assert not exhausted.retry and exhausted.reason == "retries_exhausted"


def test_rate_limited_waits_the_given_time_without_spending_an_attempt() -> None:
    decision = decide(RateLimited(retry_after=90), retries=POLICY.max_retries, age_ms=0, policy=POLICY)
    assert decision.retry and not decision.spends_attempt
    assert decision.delay_ms == 90_000


def test_nothing_is_retried_past_the_max_age() -> None:
    almost_a_day = POLICY.max_age_ms - 1_000
    assert decide(RetryableError(), retries=0, age_ms=almost_a_day, policy=POLICY).reason == "too_old"
    assert (
        decide(RateLimited(retry_after=60), retries=0, age_ms=almost_a_day, policy=POLICY).reason == "too_old"
    )


@given(retries=st.integers(0, 20), seed=st.integers(0, 2**32))
def test_jittered_delay_stays_within_its_band(retries: int, seed: int) -> None:
    policy = RetrySettings(max_retries=100)
    base = min(policy.min_backoff_ms * policy.backoff_factor**retries, policy.max_backoff_ms)
    delay = decide(
        RetryableError(), retries=retries, age_ms=0, policy=policy, rng=random.Random(seed)
    ).delay_ms
    assert int(base) <= delay <= int(base * (1 + policy.jitter))

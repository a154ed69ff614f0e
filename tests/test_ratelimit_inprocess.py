"""The in-process limiter on a fake clock: exact limits, honest Retry-After, sliding recovery."""

from __future__ import annotations

import pytest

from server.errors import RateLimited
from server.ratelimit.limiter import InProcessLimiter, KeyLimits
from server.ratelimit.redis_limiter import RedisLimiter, limiter_from_url
from server.ratelimit.window import seconds_until_fits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> InProcessLimiter:
    return InProcessLimiter(clock=clock)


async def refused(limiter: InProcessLimiter, limits: KeyLimits, tokens: int = 0) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("key", limits, tokens)
    return caught.value


async def test_rpm_refuses_at_the_limit_with_honest_retry_after(
    limiter: InProcessLimiter, clock: Clock
) -> None:
    limits = KeyLimits(rpm=3)
    remaining = [(await limiter.acquire("key", limits)).remaining_requests for _ in range(3)]
    assert remaining == [2, 1, 0]
    error = await refused(limiter, limits)
    assert error.message == "Rate limit reached: 3 requests per minute for this key."
    # Next window starts at 60 s; the 3 requests then weigh 3 * (1 - e/60), which drops to 2
    # (room for one more) at e = 20 s.
    assert error.retry_after_s == 80
    assert error.headers() == {"Retry-After": "80"}
    clock.now = 79.9
    assert (await refused(limiter, limits)).retry_after_s == 1
    clock.now = 80.0
    await limiter.acquire("key", limits)
    await refused(limiter, limits)


async def test_previous_window_is_weighted_by_its_overlap(
    limiter: InProcessLimiter, clock: Clock
) -> None:
    limits = KeyLimits(rpm=10)
    for _ in range(10):
        await limiter.acquire("key", limits)
    clock.now = 90.0  # halfway through the next window: the 10 weigh 5
    admitted = 0
    while True:
        try:
            await limiter.acquire("key", limits)
        except RateLimited:
            break
        admitted += 1
    assert admitted == 5
    clock.now = 180.0  # the window before is empty: nothing of the earlier ones counts
    for _ in range(10):
        await limiter.acquire("key", limits)


async def test_tpm_reserves_the_estimate_and_settle_frees_the_difference(
    limiter: InProcessLimiter,
) -> None:
    limits = KeyLimits(tpm=100)
    first = await limiter.acquire("key", limits, estimated_tokens=60)
    assert first.remaining_tokens == 40
    error = await refused(limiter, limits, tokens=50)
    assert error.message == "Rate limit reached: 100 tokens per minute for this key."
    assert error.retry_after_s == 70  # 60 s to the next window, then 60 * (1 - e/60) <= 50
    await limiter.settle(first, actual_tokens=20)
    second = await limiter.acquire("key", limits, estimated_tokens=50)
    assert second.remaining_tokens == 30
    await limiter.acquire("key", limits, estimated_tokens=30)
    await refused(limiter, limits, tokens=1)


async def test_settle_without_actual_keeps_the_estimate(limiter: InProcessLimiter) -> None:
    limits = KeyLimits(tpm=100)
    await limiter.settle(await limiter.acquire("key", limits, estimated_tokens=100))
    await refused(limiter, limits, tokens=1)


async def test_settle_corrects_the_window_the_tokens_were_counted_in(
    limiter: InProcessLimiter, clock: Clock
) -> None:
    limits = KeyLimits(tpm=100)
    lease = await limiter.acquire("key", limits, estimated_tokens=100)
    clock.now = 60.0  # next window: the 100 now sit in the previous window, at full weight
    await refused(limiter, limits, tokens=1)
    await limiter.settle(lease, actual_tokens=10)
    await limiter.acquire("key", limits, estimated_tokens=90)
    await refused(limiter, limits, tokens=1)


async def test_a_request_over_the_whole_tpm_is_refused_for_good(limiter: InProcessLimiter) -> None:
    limits = KeyLimits(rpm=1, tpm=100)
    error = await refused(limiter, limits, tokens=101)
    assert "alone needs an estimated 101 tokens" in error.message
    assert "limit of 100 tokens per minute" in error.message
    assert error.retry_after_s == 60
    await limiter.acquire("key", limits, estimated_tokens=100)  # it counted nothing


async def test_a_refused_request_counts_against_no_limit(limiter: InProcessLimiter) -> None:
    limits = KeyLimits(rpm=5, tpm=100, max_concurrent=2)
    held = await limiter.acquire("key", limits, estimated_tokens=90)
    await refused(limiter, limits, tokens=20)  # tpm refuses: no request, no slot counted
    lease = await limiter.acquire("key", limits, estimated_tokens=10)
    assert lease.remaining_requests == 3
    assert lease.remaining_tokens == 0
    error = await refused(limiter, limits)  # concurrency refuses: no request counted
    assert error.message == "Rate limit reached: 2 concurrent requests for this key."
    await limiter.settle(held, actual_tokens=0)
    assert (await limiter.acquire("key", limits)).remaining_requests == 2


async def test_the_longest_wait_names_the_limit(limiter: InProcessLimiter) -> None:
    limits = KeyLimits(rpm=1, max_concurrent=1)
    await limiter.acquire("key", limits)
    error = await refused(limiter, limits)  # both exceeded; concurrency could free in 1 s
    assert "requests per minute" in error.message
    assert error.retry_after_s == 120


async def test_concurrency_is_released_by_settle_once(limiter: InProcessLimiter) -> None:
    limits = KeyLimits(max_concurrent=2)
    first = await limiter.acquire("key", limits)
    await limiter.acquire("key", limits)
    error = await refused(limiter, limits)
    assert error.retry_after_s == 1
    await limiter.settle(first)
    await limiter.settle(first)  # a second settle must not free another request's slot
    await limiter.acquire("key", limits)
    await refused(limiter, limits)


async def test_settle_is_idempotent_for_tokens(limiter: InProcessLimiter) -> None:
    limits = KeyLimits(tpm=100)
    lease = await limiter.acquire("key", limits, estimated_tokens=50)
    await limiter.acquire("key", limits, estimated_tokens=50)
    await limiter.settle(lease, actual_tokens=0)
    await limiter.settle(lease, actual_tokens=0)
    await limiter.acquire("key", limits, estimated_tokens=50)
    await refused(limiter, limits, tokens=1)


async def test_an_unsettled_lease_expires(clock: Clock) -> None:
    limiter = InProcessLimiter(lease_ttl_s=10, clock=clock)
    limits = KeyLimits(max_concurrent=1)
    await limiter.acquire("key", limits)
    clock.now = 9.0
    await refused(limiter, limits)
    clock.now = 10.0
    await limiter.acquire("key", limits)


async def test_subjects_have_separate_budgets(limiter: InProcessLimiter) -> None:
    limits = KeyLimits(rpm=1)
    await limiter.acquire("key", limits)
    await limiter.acquire("other", limits)
    await refused(limiter, limits)


async def test_no_limits_admit_everything(limiter: InProcessLimiter) -> None:
    for _ in range(1000):
        lease = await limiter.acquire("key", KeyLimits(), estimated_tokens=10**6)
    assert (lease.remaining_requests, lease.remaining_tokens) == (None, None)
    await limiter.settle(lease, actual_tokens=5)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rpm"):
        KeyLimits(rpm=0)
    with pytest.raises(ValueError, match="max_concurrent"):
        KeyLimits(max_concurrent=-1)


async def test_negative_token_estimate_is_a_caller_bug(limiter: InProcessLimiter) -> None:
    with pytest.raises(ValueError, match="estimated_tokens"):
        await limiter.acquire("key", KeyLimits(tpm=10), estimated_tokens=-1)


@pytest.mark.parametrize(
    ("current", "previous", "elapsed", "expected"),
    [
        (0, 10, 30.0, 0.0),  # fits now: 10 * 0.5 + 0 + 1 <= 10
        (5, 10, 6.0, 30.0),  # the previous 10 must weigh 4: at 36 s into the window
        (10, 0, 15.0, 51.0),  # 45 s to the next window, then 10 * (1 - e/60) <= 9 at 6 s
    ],
)
def test_seconds_until_fits(current: int, previous: int, elapsed: float, expected: float) -> None:
    assert seconds_until_fits(current, previous, elapsed, 60.0, 10, 1) == pytest.approx(expected)


async def test_limiter_from_url_picks_the_backend() -> None:
    local = limiter_from_url(None, window_s=1.0)
    assert isinstance(local, InProcessLimiter)
    assert local.window_s == 1.0
    shared = limiter_from_url("redis://127.0.0.1:1/0")  # constructing needs no server
    assert isinstance(shared, RedisLimiter)
    await shared.close()
    await local.close()

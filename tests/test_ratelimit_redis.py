"""The Redis limiter against a real server: one budget across replicas, atomic, self-cleaning.

Each test works under its own key prefix, deleted afterwards. Where no Redis answers within a
second (a laptop) the tests are skipped with the reason; CLINSERVE_REQUIRE_REDIS=1 (CI) makes
that a failure. Separate RedisLimiter instances stand in for gateway replicas: each has its own
client and connection pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from server.errors import RateLimited
from server.ratelimit.limiter import KeyLimits, Lease
from server.ratelimit.redis_limiter import RedisLimiter

REDIS_URL = os.environ.get("CLINSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
LOGGER = "server.ratelimit.redis_limiter"


def sync_client() -> redis.Redis:
    return redis.Redis.from_url(
        REDIS_URL, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )


@functools.cache
def redis_unavailable() -> str | None:
    """Why Redis cannot be used, or None when it answers a PING within 1 s."""
    client = sync_client()
    try:
        client.ping()
        return None
    except RedisError as exc:
        return f"Redis not reachable at {REDIS_URL}: {exc}"
    finally:
        client.close()


def require_redis() -> None:
    """Skip the test where no Redis answers (a laptop); fail instead under
    CLINSERVE_REQUIRE_REDIS=1 (CI), where a skip would hide a broken setup."""
    reason = redis_unavailable()
    if reason is not None:
        if os.environ.get("CLINSERVE_REQUIRE_REDIS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix private to the test; its keys are deleted afterwards."""
    require_redis()
    unique = f"clinserve-test:{secrets.token_hex(8)}:"
    yield unique
    client = sync_client()
    try:
        keys = list(client.scan_iter(match=f"{unique}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def replica(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Callable[..., RedisLimiter]]:
    """Makes RedisLimiters on the test's prefix, closes them, and checks none fell back to
    in-process limits (which would make a shared-budget test pass for the wrong reason)."""
    created: list[RedisLimiter] = []

    def make(**kwargs: Any) -> RedisLimiter:
        limiter = RedisLimiter(REDIS_URL, prefix=prefix, **kwargs)
        created.append(limiter)
        return limiter

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        yield make
        for limiter in created:
            await limiter.close()
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == []


async def admitted(limiter: RedisLimiter, limits: KeyLimits, tokens: int = 0) -> bool:
    try:
        await limiter.acquire("key", limits, tokens)
    except RateLimited:
        return False
    return True


async def test_replicas_share_one_request_budget(replica: Callable[..., RedisLimiter]) -> None:
    a, b = replica(), replica()
    limits = KeyLimits(rpm=10)
    results = []
    for _ in range(6):
        results.append(await admitted(a, limits))
        results.append(await admitted(b, limits))
    assert results.count(True) == 10
    assert results[-2:] == [False, False]
    with pytest.raises(RateLimited) as caught:
        await a.acquire("key", limits)
    assert caught.value.message == "Rate limit reached: 10 requests per minute for this key."
    assert 1 <= caught.value.retry_after_s <= 120
    other = await a.acquire("other", limits)  # another key's budget is untouched
    assert other.remaining_requests == 9


async def test_concurrent_acquires_admit_exactly_the_limit(
    replica: Callable[..., RedisLimiter],
) -> None:
    a, b = replica(), replica()
    limits = KeyLimits(rpm=10)
    results = await asyncio.gather(*(admitted(a if i % 2 else b, limits) for i in range(50)))
    assert results.count(True) == 10


async def test_concurrency_is_shared_and_released_by_settle(
    replica: Callable[..., RedisLimiter],
) -> None:
    a, b = replica(), replica()
    limits = KeyLimits(max_concurrent=2)
    first = await a.acquire("key", limits)
    await b.acquire("key", limits)
    with pytest.raises(RateLimited) as caught:
        await a.acquire("key", limits)
    assert caught.value.message == "Rate limit reached: 2 concurrent requests for this key."
    assert caught.value.retry_after_s == 1
    await b.settle(first)  # any replica can settle a lease
    await b.settle(first)  # idempotent: frees one slot, not two
    await a.acquire("key", limits)
    assert await admitted(b, limits) is False


async def test_tokens_are_shared_and_settle_replaces_the_estimate(
    replica: Callable[..., RedisLimiter],
) -> None:
    a, b = replica(), replica()
    limits = KeyLimits(tpm=100)
    lease = await a.acquire("key", limits, estimated_tokens=60)
    assert lease.remaining_tokens == 40
    with pytest.raises(RateLimited) as caught:
        await b.acquire("key", limits, estimated_tokens=50)
    assert caught.value.message == "Rate limit reached: 100 tokens per minute for this key."
    await a.settle(lease, actual_tokens=20)
    await a.settle(lease, actual_tokens=0)  # second settle is a no-op
    second = await b.acquire("key", limits, estimated_tokens=50)
    assert second.remaining_tokens == 30
    assert await admitted(a, limits, 31) is False


async def test_a_refused_request_counts_nothing(replica: Callable[..., RedisLimiter]) -> None:
    limiter = replica()
    limits = KeyLimits(rpm=3, tpm=100, max_concurrent=5)
    await limiter.acquire("key", limits, estimated_tokens=100)
    for _ in range(5):
        assert await admitted(limiter, limits, 1) is False
    lease = await limiter.acquire("key", limits, estimated_tokens=0)
    assert lease.remaining_requests == 1


async def test_budget_recovers_after_the_window_slides(
    replica: Callable[..., RedisLimiter],
) -> None:
    a, b = replica(window_s=1.0), replica(window_s=1.0)
    limits = KeyLimits(rpm=3)
    for limiter in (a, b, a):
        await limiter.acquire("key", limits)
    with pytest.raises(RateLimited) as caught:
        await b.acquire("key", limits)
    assert 1 <= caught.value.retry_after_s <= 2
    # Two whole windows on, neither the current nor the previous window holds those requests.
    await asyncio.sleep(2.05)
    assert [await admitted(limiter, limits) for limiter in (a, b, a, b)] == [
        True,
        True,
        True,
        False,
    ]


async def test_expired_leases_are_purged(replica: Callable[..., RedisLimiter], prefix: str) -> None:
    limiter = replica(lease_ttl_s=0.5)
    limits = KeyLimits(max_concurrent=1)
    await limiter.acquire("key", limits)  # never settled: its replica "crashed"
    assert await admitted(limiter, limits) is False
    await asyncio.sleep(1.0)
    await limiter.acquire("key", limits)
    client = sync_client()
    try:
        assert client.zcard(f"{prefix}{{key}}:c") == 1
    finally:
        client.close()


async def test_keys_expire_when_the_subject_goes_idle(
    replica: Callable[..., RedisLimiter], prefix: str
) -> None:
    limiter = replica(window_s=60.0, lease_ttl_s=900.0)
    await limiter.acquire("key", KeyLimits(rpm=5, tpm=100, max_concurrent=2), 10)
    client = sync_client()
    try:
        assert 0 < client.pttl(f"{prefix}{{key}}:w") <= 120_000
        assert 0 < client.pttl(f"{prefix}{{key}}:c") <= 900_000
    finally:
        client.close()


async def test_unreachable_redis_falls_back_to_in_process_limits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RedisLimiter(CLOSED_PORT_URL, retry_interval_s=0.0)  # retry Redis on every call
    limits = KeyLimits(rpm=2, max_concurrent=5)
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            leases = [await limiter.acquire("key", limits) for _ in range(2)]
            assert [lease.backend for lease in leases] == ["memory", "memory"]
            with pytest.raises(RateLimited):  # the per-replica limit still holds
                await limiter.acquire("key", limits)
            for lease in leases:
                await limiter.settle(lease, actual_tokens=3)
            # A lease Redis granted before it went away: settling it must not raise.
            stranded = Lease("key", 10, "lost", 0, tokens_counted=True, holds_slot=True)
            stranded.backend = "redis"
            await limiter.settle(stranded, actual_tokens=1)
    finally:
        await limiter.close()
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1  # at most one warning per 30 s, however many calls failed
    assert warnings[0].levelno == logging.WARNING
    assert "in-process limits" in warnings[0].getMessage()

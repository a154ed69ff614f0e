"""Per-key limits through the gateway: 429 with Retry-After, recovery, caps, and one budget
shared by two gateways through the real local Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from server.ratelimit.limiter import InProcessLimiter
from tests.auth_fixtures import AuthedGateway, start_authed_gateway
from tests.conftest import FakeWorker
from tests.fakes import ServerThread
from tests.test_ratelimit_redis import REDIS_URL, require_redis

__all__ = ["start_authed_gateway"]

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hello"}]}


def chat(url: str, key: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json={**CHAT, **extra},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def assert_limited(response: httpx.Response, words: str) -> int:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "RateLimitError"
    assert words in error["message"]
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def test_requests_per_minute_per_key(start_authed_gateway: Callable[..., AuthedGateway]) -> None:
    gateway = start_authed_gateway()
    limited, other = gateway.key("chat", rpm=2), gateway.key("chat")
    first = chat(gateway.url, limited)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert "x-ratelimit-limit-tokens" not in first.headers, "the key has no token limit"
    assert chat(gateway.url, limited).status_code == 200
    assert_limited(chat(gateway.url, limited), "requests per minute")
    assert chat(gateway.url, other).status_code == 200, "another key has its own budget"


def test_a_limited_key_recovers_when_its_retry_after_has_passed(
    start_authed_gateway: Callable[..., AuthedGateway],
) -> None:
    gateway = start_authed_gateway()
    limiter = gateway.gateway.quota.limiter
    assert isinstance(limiter, InProcessLimiter)
    start = time.monotonic()
    offset = [0.0]
    limiter._clock = lambda: start + offset[0]  # the gateway's own limiter, on a test clock
    key = gateway.key("chat", rpm=1)
    assert chat(gateway.url, key).status_code == 200
    retry_after = assert_limited(chat(gateway.url, key), "requests per minute")
    offset[0] = retry_after - 1.0
    assert_limited(chat(gateway.url, key), "requests per minute")  # too early: still refused
    offset[0] = float(retry_after)
    recovered = chat(gateway.url, key)
    assert recovered.status_code == 200, "admitted once the advertised wait has passed"
    assert recovered.headers["x-ratelimit-remaining-requests"] == "0"


def test_deployment_default_applies_to_keys_without_their_own_limit(
    start_authed_gateway: Callable[..., AuthedGateway],
) -> None:
    gateway = start_authed_gateway(limits={"default_rpm": 1})
    key = gateway.key("intake")
    body = {"text": "headache"}
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.post(f"{gateway.url}/v1/clinical/intake", json=body, headers=headers).is_success
    refused = httpx.post(f"{gateway.url}/v1/clinical/intake", json=body, headers=headers)
    assert_limited(refused, "requests per minute")


def test_concurrent_requests_per_key(
    start_authed_gateway: Callable[..., AuthedGateway], worker: FakeWorker
) -> None:
    gateway = start_authed_gateway()
    key = gateway.key("chat", max_concurrent=1)
    worker.behaviour.first_byte_delay_s = 1.0
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(chat(gateway.url, key).status_code))
    first.start()
    try:
        while not worker.behaviour.requests:
            threading.Event().wait(0.02)
        assert_limited(chat(gateway.url, key), "concurrent requests")
    finally:
        first.join()
    assert results == [200]
    worker.behaviour.first_byte_delay_s = 0.0
    assert chat(gateway.url, key).status_code == 200, "the slot is free again"


def test_tokens_per_minute_reserve_then_settle_to_real_usage(
    start_authed_gateway: Callable[..., AuthedGateway],
) -> None:
    gateway = start_authed_gateway()
    key = gateway.key("chat", tpm=1000)
    retry_after = assert_limited(chat(gateway.url, key, max_tokens=2000), "tokens per minute")
    assert retry_after == 60, "a request larger than the whole budget never fits"
    # Each reservation (prompt + 600) is corrected down to the fake's small real usage,
    # so requests that would not fit twice on their reservations pass one after another.
    for _ in range(3):
        assert chat(gateway.url, key, max_tokens=600).status_code == 200


def test_max_tokens_cap_is_a_400(start_authed_gateway: Callable[..., AuthedGateway]) -> None:
    gateway = start_authed_gateway(limits={"max_tokens": 100})
    key = gateway.key("chat")
    refused = chat(gateway.url, key, max_tokens=101)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "max_tokens"
    assert chat(gateway.url, key, max_completion_tokens=100).status_code == 200


@pytest.fixture
def redis_url() -> Iterator[str]:
    require_redis()
    yield REDIS_URL


def test_two_gateways_share_one_budget_through_redis(
    start_authed_gateway: Callable[..., AuthedGateway],
    start_gateway: Callable[..., ServerThread],
    worker: FakeWorker,
    redis_url: str,
) -> None:
    first = start_authed_gateway(redis_url=redis_url)
    # A second replica on the same database (same data dir: same SQLite file and pepper).
    second = start_gateway([worker.url], auth={"enabled": True}, redis_url=redis_url)
    record, key = first.store.create_key("st-marys", "chat", rpm=4)
    try:
        statuses = [chat(url, key).status_code for url in [first.url, second.url] * 3]
        assert statuses == [200, 200, 200, 200, 429, 429]
    finally:
        client = redis.Redis.from_url(redis_url)
        stale = list(client.scan_iter(match=f"clinserve:rl:{{{record.public_id}}}*"))
        if stale:
            client.delete(*stale)
        client.close()

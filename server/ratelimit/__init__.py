"""Per-API-key rate limits: requests, tokens per minute and concurrent requests.

`limiter` holds the interface and the in-process backend (one gateway), `redis_limiter` the
backend shared by gateway replicas through Redis, `window` the sliding-window arithmetic both use.
"""

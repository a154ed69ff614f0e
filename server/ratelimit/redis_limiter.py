"""Rate limits shared by every gateway replica through Redis, one Lua script per operation.

Per subject there are two keys, both named `<prefix>{<subject>}...` (the braces are a Redis
Cluster hash tag, so one script's keys always live in one slot):

- `...:w`, a hash holding the fixed-window index and the current / previous request and token
  counts (see `window` for the sliding-window estimate built on them);
- `...:c`, a sorted set of lease ids scored by expiry time. Expired members are purged on every
  acquire, so a replica that dies mid-request leaks its slots for `lease_ttl_s` at most.

Each script reads Redis's own clock (`TIME`): replicas with skewed clocks still agree on which
window it is and when a lease expires. Checking and counting happen inside one script, which
Redis runs without interleaving any other command, so concurrent acquires from any number of
replicas admit exactly the limit (scripts that read `TIME` and then write need Redis >= 5,
which replicates their effects rather than the script). Every write refreshes a TTL (two
windows for the counters, one lease TTL for the set), so an idle subject costs nothing.

When Redis cannot be reached or refuses a command (a timeout, a failover to a read-only
replica, out of memory) the limiter does not fail requests: it falls back to per-replica
in-process limits (each replica then enforces the full limit on its own share), logs a warning
at most every 30 s, and tries Redis again `retry_interval_s` after the failure.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.ratelimit.limiter import (
    InProcessLimiter,
    KeyLimits,
    Lease,
    Limit,
    RateLimiter,
    Usage,
    admitted_lease,
    check_request,
    new_lease_id,
    refusal,
)
from server.ratelimit.window import EPSILON

log = logging.getLogger(__name__)

# Shared head of both scripts. ARGV[1] is the window length in ms. Leaves `now_ms`, `window`,
# `elapsed_ms` and the counts rolled forward to the current window in `rc rp tc tp`.
_ROLL = """
local window_ms = tonumber(ARGV[1])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now_ms / window_ms)
local elapsed_ms = now_ms - window * window_ms
local s = redis.call('HMGET', KEYS[1], 'w', 'rc', 'rp', 'tc', 'tp')
local function num(v) return tonumber(v) or 0 end
local stored = tonumber(s[1])
local rc, rp, tc, tp = 0, 0, 0, 0
if stored == window then
  rc, rp, tc, tp = num(s[2]), num(s[3]), num(s[4]), num(s[5])
elseif stored == window - 1 then
  rp, tp = num(s[2]), num(s[4])
end
local function save()
  redis.call('HSET', KEYS[1], 'w', window, 'rc', rc, 'rp', rp, 'tc', tc, 'tp', tp)
  redis.call('PEXPIRE', KEYS[1], 2 * window_ms)
end
"""

# ARGV: window_ms, rpm, tpm, max_concurrent (-1 = no limit), estimated tokens, lease id,
# lease TTL ms. Returns {failed bitmask (0 = admitted), window, elapsed_ms, rc, rp, tc, tp,
# active leases}, the counts including this request when admitted and untouched when not.
_ACQUIRE = (
    _ROLL
    + f"""
local rpm, tpm, max_concurrent = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cost, lease_ttl_ms = tonumber(ARGV[5]), tonumber(ARGV[7])
local weight = 1 - elapsed_ms / window_ms
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
local active = redis.call('ZCARD', KEYS[2])
local failed = 0
if rpm >= 0 and rp * weight + rc + 1 > rpm + {EPSILON} then failed = failed + 1 end
if tpm >= 0 and tp * weight + tc + cost > tpm + {EPSILON} then failed = failed + 2 end
if max_concurrent >= 0 and active >= max_concurrent then failed = failed + 4 end
if failed == 0 then
  if rpm >= 0 then rc = rc + 1 end
  if tpm >= 0 then tc = tc + cost end
  save()
  if max_concurrent >= 0 then
    redis.call('ZADD', KEYS[2], now_ms + lease_ttl_ms, ARGV[6])
    redis.call('PEXPIRE', KEYS[2], lease_ttl_ms)
    active = active + 1
  end
end
return {{failed, window, elapsed_ms, rc, rp, tc, tp, active}}
"""
)

# ARGV: window_ms, the lease's window, token correction, lease id.
_SETTLE = (
    _ROLL
    + """
redis.call('ZREM', KEYS[2], ARGV[4])
local lease_window, correction = tonumber(ARGV[2]), tonumber(ARGV[3])
if correction == 0 then return 0 end
if lease_window == window then
  tc = math.max(0, tc + correction)
elseif lease_window == window - 1 then
  tp = math.max(0, tp + correction)
else
  return 0
end
save()
return 1
"""
)

_FAILED_BITS: tuple[tuple[int, Limit], ...] = ((1, "rpm"), (2, "tpm"), (4, "concurrency"))
_WARNING_INTERVAL_S = 30.0


class RedisLimiter:
    """Limits shared across replicas. Construction opens no connection; Redis may be down.

    `timeout_s` bounds connecting and each command, so an unreachable Redis costs a request
    at most about twice that (one reconnect attempt) before the fallback answers; within
    `retry_interval_s` of a failure the fallback answers at once.
    """

    def __init__(
        self,
        url: str,
        *,
        window_s: float = 60.0,
        prefix: str = "clinserve:rl:",
        lease_ttl_s: float = 900.0,
        timeout_s: float = 0.5,
        retry_interval_s: float = 5.0,
    ) -> None:
        self.window_s = window_s
        self.prefix = prefix
        self.retry_interval_s = retry_interval_s
        self._window_ms = round(window_s * 1000)
        self._lease_ttl_ms = round(lease_ttl_s * 1000)
        if self._window_ms < 1 or self._lease_ttl_ms < 1:
            raise ValueError("window_s and lease_ttl_s must be at least 1 ms")
        self._redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), retries=1),
        )
        self._acquire_script = self._redis.register_script(_ACQUIRE)
        self._settle_script = self._redis.register_script(_SETTLE)
        self._fallback = InProcessLimiter(window_s=window_s, lease_ttl_s=lease_ttl_s)
        self._down_until = float("-inf")
        self._last_warning = float("-inf")

    def _keys(self, subject: str) -> list[str]:
        base = f"{self.prefix}{{{subject}}}"
        return [f"{base}:w", f"{base}:c"]

    def _redis_down(self, error: Exception, doing: str) -> None:
        now = time.monotonic()
        self._down_until = now + self.retry_interval_s
        if now - self._last_warning >= _WARNING_INTERVAL_S:
            self._last_warning = now
            log.warning(
                "Redis rate limiting unavailable (%s while %s: %s); using per-replica "
                "in-process limits until it answers again",
                type(error).__name__,
                doing,
                error,
            )

    async def acquire(self, subject: str, limits: KeyLimits, estimated_tokens: int = 0) -> Lease:
        check_request(limits, estimated_tokens, self.window_s)
        if limits.unlimited:  # nothing to count, so no round trip; settle() ignores it
            return Lease(subject, estimated_tokens, "", 0, tokens_counted=False, holds_slot=False)
        if time.monotonic() < self._down_until:
            return await self._fallback.acquire(subject, limits, estimated_tokens)
        lease_id = new_lease_id()
        args: list[int | str] = [
            self._window_ms,
            -1 if limits.rpm is None else limits.rpm,
            -1 if limits.tpm is None else limits.tpm,
            -1 if limits.max_concurrent is None else limits.max_concurrent,
            estimated_tokens,
            lease_id,
            self._lease_ttl_ms,
        ]
        try:
            reply = await self._acquire_script(keys=self._keys(subject), args=args)
        except (RedisError, OSError) as error:
            self._redis_down(error, "acquiring")
            return await self._fallback.acquire(subject, limits, estimated_tokens)
        failed_mask, window_index, elapsed_ms, rc, rp, tc, tp, active = (int(v) for v in reply)
        usage = Usage(rc, rp, tc, tp, active, elapsed_ms / 1000)
        if failed_mask:
            failed = [limit for bit, limit in _FAILED_BITS if failed_mask & bit]
            raise refusal(failed, limits, usage, estimated_tokens, self.window_s)
        return admitted_lease(
            subject,
            limits,
            estimated_tokens,
            lease_id=lease_id,
            window_index=window_index,
            after=usage,
            window_s=self.window_s,
            backend="redis",
        )

    async def settle(self, lease: Lease, actual_tokens: int | None = None) -> None:
        if lease.backend == "memory":
            await self._fallback.settle(lease, actual_tokens)
            return
        if lease.settled:
            return
        lease.settled = True
        correction = lease.token_correction(actual_tokens)
        if correction == 0 and not lease.holds_slot:
            return
        args: list[int | str] = [self._window_ms, lease.window, correction, lease.lease_id]
        try:
            await self._settle_script(keys=self._keys(lease.subject), args=args)
        except (RedisError, OSError) as error:
            # The slot expires with its lease TTL; the token count stays at the estimate.
            self._redis_down(error, "settling")

    async def close(self) -> None:
        await self._redis.aclose()


def limiter_from_url(redis_url: str | None, window_s: float = 60.0) -> RateLimiter:
    """The shared Redis backend when a URL is configured, else limits within this process."""
    if redis_url:
        return RedisLimiter(redis_url, window_s=window_s)
    return InProcessLimiter(window_s=window_s)

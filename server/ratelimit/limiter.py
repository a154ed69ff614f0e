"""The rate-limiter interface, the decisions both backends share, and the in-process backend.

A request is admitted by `acquire` against three per-key limits at once (requests per minute,
tokens per minute, concurrent requests) and later `settle`d, which frees its concurrency slot
and replaces its token reservation with what the worker actually generated. Admission is all
or nothing: a refused request counts against no limit, so a client hammering a spent tpm budget
does not also burn its rpm budget.

Tokens are reserved up front (prompt estimate + max_tokens, from the caller) because the real
count is only known after generation; without a reservation, N concurrent long requests would
all be admitted against the same unspent budget.

Limits are phrased per minute; the window length is a constructor parameter only so tests can
use 1 s windows.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from server.errors import RateLimited
from server.ratelimit import window

Limit = Literal["rpm", "tpm", "concurrency"]


@dataclass(frozen=True)
class KeyLimits:
    """One key's limits; None means no limit of that kind. Values must be >= 1."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_concurrent"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer or None, not {value!r}")

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.max_concurrent is None


@dataclass
class Lease:
    """What one `acquire` counted, so `settle` can release and correct exactly that.

    `remaining_requests` / `remaining_tokens` are the key's quota left after this request (None
    where the key has no such limit), for OpenAI-style `x-ratelimit-remaining-*` headers.
    """

    subject: str
    estimated_tokens: int
    lease_id: str
    window: int  # index of the fixed window the token reservation was counted in
    tokens_counted: bool  # the key has a tpm limit, so the reservation sits in that window
    holds_slot: bool  # the key has a concurrency limit, so `lease_id` holds one slot
    backend: Literal["memory", "redis"] = "memory"
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    settled: bool = field(default=False, compare=False)

    def token_correction(self, actual_tokens: int | None) -> int:
        """Tokens to add to the reservation's window so it holds `actual_tokens` instead."""
        if actual_tokens is None or not self.tokens_counted:
            return 0
        return actual_tokens - self.estimated_tokens


class RateLimiter(Protocol):
    async def acquire(self, subject: str, limits: KeyLimits, estimated_tokens: int = 0) -> Lease:
        """Count one request against `subject`, or raise `RateLimited` having counted nothing."""
        ...

    async def settle(self, lease: Lease, actual_tokens: int | None = None) -> None:
        """Free the lease's slot and true up its tokens; idempotent; never raises."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Usage:
    """A subject's counts at one instant, however the backend stores them."""

    requests: int
    previous_requests: int
    tokens: int
    previous_tokens: int
    active: int
    elapsed_s: float  # time since the current fixed window began


def check_request(limits: KeyLimits, estimated_tokens: int, window_s: float) -> None:
    """Refuse what no amount of waiting would admit, before touching any counter."""
    if estimated_tokens < 0:
        raise ValueError(f"estimated_tokens must be >= 0, not {estimated_tokens}")
    if limits.tpm is not None and estimated_tokens > limits.tpm:
        raise RateLimited(
            f"This request alone needs an estimated {estimated_tokens} tokens, more than this "
            f"key's limit of {limits.tpm} tokens per minute; reduce max_tokens or the prompt.",
            retry_after_s=window.retry_after_s(window_s),
        )


def failed_limits(
    limits: KeyLimits, usage: Usage, estimated_tokens: int, window_s: float
) -> list[Limit]:
    """The limits this request would exceed. The Redis Lua script mirrors this test."""
    failed: list[Limit] = []
    w = (usage.elapsed_s, window_s)
    if limits.rpm is not None and not window.fits(
        usage.requests, usage.previous_requests, *w, limits.rpm, 1
    ):
        failed.append("rpm")
    if limits.tpm is not None and not window.fits(
        usage.tokens, usage.previous_tokens, *w, limits.tpm, estimated_tokens
    ):
        failed.append("tpm")
    if limits.max_concurrent is not None and usage.active >= limits.max_concurrent:
        failed.append("concurrency")
    return failed


def refusal(
    failed: list[Limit], limits: KeyLimits, usage: Usage, estimated_tokens: int, window_s: float
) -> RateLimited:
    """The error for a refused request: the limit that takes longest to allow it is named, and
    Retry-After is that wait, since the request needs every limit to pass at once."""
    waits: dict[Limit, float] = {}
    messages: dict[Limit, str] = {}
    w = (usage.elapsed_s, window_s)
    if "rpm" in failed and limits.rpm is not None:
        waits["rpm"] = window.seconds_until_fits(
            usage.requests, usage.previous_requests, *w, limits.rpm, 1
        )
        messages["rpm"] = f"{limits.rpm} requests per minute"
    if "tpm" in failed and limits.tpm is not None:
        waits["tpm"] = window.seconds_until_fits(
            usage.tokens, usage.previous_tokens, *w, limits.tpm, estimated_tokens
        )
        messages["tpm"] = f"{limits.tpm} tokens per minute"
    if "concurrency" in failed and limits.max_concurrent is not None:
        waits["concurrency"] = 1.0  # a slot frees when any request finishes; no way to know when
        messages["concurrency"] = f"{limits.max_concurrent} concurrent requests"
    worst = max(waits, key=waits.__getitem__)
    return RateLimited(
        f"Rate limit reached: {messages[worst]} for this key.",
        retry_after_s=window.retry_after_s(waits[worst]),
    )


def admitted_lease(
    subject: str,
    limits: KeyLimits,
    estimated_tokens: int,
    *,
    lease_id: str,
    window_index: int,
    after: Usage,
    window_s: float,
    backend: Literal["memory", "redis"],
) -> Lease:
    """The lease for an admitted request, `after` being the counts including it."""
    return Lease(
        subject=subject,
        estimated_tokens=estimated_tokens,
        lease_id=lease_id,
        window=window_index,
        tokens_counted=limits.tpm is not None,
        holds_slot=limits.max_concurrent is not None,
        backend=backend,
        remaining_requests=window.remaining(
            limits.rpm, after.requests, after.previous_requests, after.elapsed_s, window_s
        ),
        remaining_tokens=window.remaining(
            limits.tpm, after.tokens, after.previous_tokens, after.elapsed_s, window_s
        ),
    )


def new_lease_id() -> str:
    """Unique across replicas, so leases from every gateway can share one Redis sorted set."""
    return secrets.token_hex(12)


@dataclass
class _SubjectState:
    window: int = 0
    requests: int = 0
    previous_requests: int = 0
    tokens: int = 0
    previous_tokens: int = 0
    leases: dict[str, float] = field(default_factory=dict)  # lease id -> expiry (clock time)

    def roll(self, index: int) -> None:
        """Move to fixed window `index`: the current counts become the previous ones, or both
        reset when at least a whole window went by."""
        if index == self.window:
            return
        adjacent = index == self.window + 1
        self.previous_requests = self.requests if adjacent else 0
        self.previous_tokens = self.tokens if adjacent else 0
        self.requests = self.tokens = 0
        self.window = index

    def usage(self, elapsed_s: float) -> Usage:
        return Usage(
            self.requests,
            self.previous_requests,
            self.tokens,
            self.previous_tokens,
            len(self.leases),
            elapsed_s,
        )


class InProcessLimiter:
    """Limits within one gateway process, used from one asyncio event loop.

    `acquire` and `settle` never await, so each runs from check to count without another
    coroutine interleaving: that is the whole of their atomicity, no lock needed. State is one
    small record per subject ever seen; subjects are API keys, a bounded set.

    Leases expire after `lease_ttl_s` like in Redis, so a request whose settle was lost (a bug,
    a cancelled task) cannot hold a concurrency slot forever.
    """

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        lease_ttl_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_s <= 0 or lease_ttl_s <= 0:
            raise ValueError("window_s and lease_ttl_s must be positive")
        self.window_s = window_s
        self.lease_ttl_s = lease_ttl_s
        self._clock = clock
        self._subjects: dict[str, _SubjectState] = {}

    def _state_at(self, subject: str, now: float) -> tuple[_SubjectState, float]:
        """The subject's state rolled to `now`, and the time since its window began."""
        index = math.floor(now / self.window_s)
        state = self._subjects.setdefault(subject, _SubjectState(window=index))
        state.roll(index)
        return state, now - index * self.window_s

    async def acquire(self, subject: str, limits: KeyLimits, estimated_tokens: int = 0) -> Lease:
        check_request(limits, estimated_tokens, self.window_s)
        now = self._clock()
        state, elapsed_s = self._state_at(subject, now)
        for lease_id, expiry in list(state.leases.items()):
            if expiry <= now:
                del state.leases[lease_id]
        failed = failed_limits(limits, state.usage(elapsed_s), estimated_tokens, self.window_s)
        if failed:
            raise refusal(failed, limits, state.usage(elapsed_s), estimated_tokens, self.window_s)
        lease_id = new_lease_id()
        if limits.rpm is not None:
            state.requests += 1
        if limits.tpm is not None:
            state.tokens += estimated_tokens
        if limits.max_concurrent is not None:
            state.leases[lease_id] = now + self.lease_ttl_s
        return admitted_lease(
            subject,
            limits,
            estimated_tokens,
            lease_id=lease_id,
            window_index=state.window,
            after=state.usage(elapsed_s),
            window_s=self.window_s,
            backend="memory",
        )

    async def settle(self, lease: Lease, actual_tokens: int | None = None) -> None:
        if lease.settled:
            return
        lease.settled = True
        if lease.subject not in self._subjects:
            return
        state, _ = self._state_at(lease.subject, self._clock())
        state.leases.pop(lease.lease_id, None)
        correction = lease.token_correction(actual_tokens)
        # A reservation two or more windows old no longer counts anywhere: nothing to correct.
        if lease.window == state.window:
            state.tokens = max(0, state.tokens + correction)
        elif lease.window == state.window - 1:
            state.previous_tokens = max(0, state.previous_tokens + correction)

    async def close(self) -> None:
        """Nothing to release; present to satisfy `RateLimiter`."""

"""Per-key limits as a pipeline stage: reserve before the work, settle with what it cost.

The caller's limits are the key's own (`keys create --rpm/--tpm/--max-concurrent`), falling
back to the deployment's defaults for kinds the key leaves unset. Tokens are reserved up
front (an estimate of the prompt plus the completion budget asked for) so a burst of
concurrent requests cannot all slip under the tokens-per-minute limit at once, then
corrected to the worker's reported usage when the answer is complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from server.db.keys import KeyRecord
from server.pipeline.facts import RequestFacts
from server.ratelimit.limiter import KeyLimits, Lease, RateLimiter

DEFAULT_COMPLETION_ESTIMATE = 256
"""Completion tokens reserved for a request that sets no max_tokens (corrected afterwards)."""

CHARS_PER_TOKEN = 4
"""A rough prompt-size estimate; the reservation is corrected to real usage anyway."""


@dataclass(frozen=True)
class Caller:
    """Whose budget a request spends: the key's public id and its effective limits."""

    subject: str
    limits: KeyLimits


def caller_for(key: KeyRecord | None, defaults: KeyLimits) -> Caller | None:
    """None (no limits) when authentication is off: there is no key to count against."""
    if key is None:
        return None
    limits = KeyLimits(
        rpm=key.rpm if key.rpm is not None else defaults.rpm,
        tpm=key.tpm if key.tpm is not None else defaults.tpm,
        max_concurrent=(
            key.max_concurrent if key.max_concurrent is not None else defaults.max_concurrent
        ),
    )
    return Caller(key.public_id, limits)


def estimate_tokens(prompt_chars: int, completion_budget: int | None) -> int:
    """Prompt characters / 4 plus the completion budget (None: the default reservation;
    0 for routes that generate nothing, such as embeddings)."""
    completion = DEFAULT_COMPLETION_ESTIMATE if completion_budget is None else completion_budget
    return prompt_chars // CHARS_PER_TOKEN + completion


class Quota:
    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    @asynccontextmanager
    async def spend(
        self, caller: Caller | None, estimated_tokens: int, facts: RequestFacts
    ) -> AsyncIterator[None]:
        """Hold a reservation for the block; settle it with `facts`' token counts after.

        Raises `RateLimited` (429 + Retry-After) before the block runs if any limit is spent.
        Without reported usage (a failure, a stream the client left) the estimate stands:
        overcounting a failed request is safer than letting unreported use go free.
        """
        if caller is None or caller.limits.unlimited:
            yield
            return
        lease = await self.limiter.acquire(caller.subject, caller.limits, estimated_tokens)
        facts.limit_headers = limit_headers(caller.limits, lease)
        try:
            yield
        finally:
            await self.limiter.settle(lease, facts.total_tokens)


def limit_headers(limits: KeyLimits, lease: Lease) -> list[tuple[bytes, bytes]]:
    """OpenAI's `x-ratelimit-*` headers for the limits the key has, so clients can pace
    themselves before they meet a 429."""
    headers: list[tuple[bytes, bytes]] = []
    for kind, limit, remaining in (
        ("requests", limits.rpm, lease.remaining_requests),
        ("tokens", limits.tpm, lease.remaining_tokens),
    ):
        if limit is not None and remaining is not None:
            headers.append((f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()))
            headers.append((f"x-ratelimit-remaining-{kind}".encode(), str(remaining).encode()))
    return headers

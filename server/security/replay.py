"""Token ids (`jti`) already seen, so a captured CDS client token cannot be played again.

Each id is remembered until its token expires (after that the expiry check refuses it
anyway), so memory follows the traffic of the last few minutes, not the uptime. The cache
is bounded: when it is full the entries nearest their expiry are dropped first (with a
warning), which keeps the gateway up under a flood at the cost of a short replay window for
those tokens. Only tokens whose signature and claims have already been verified reach it,
so only trusted issuers' traffic can fill it.

The cache is per process. Behind several gateway replicas a token replayed to another
replica within its lifetime (the spec's tokens live five minutes) is not caught; a shared
store (Redis) would close that gap.
"""

from __future__ import annotations

import heapq
import logging

log = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 100_000


class ReplayCache:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._max = max_entries
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def first_use(self, issuer: str, token_id: str, expires_at: float, now: float) -> bool:
        """Record the token; False if the same issuer's id is still remembered (a replay)."""
        self._forget_expired(now)
        key = (issuer, token_id)
        if key in self._expiry:
            return False
        if len(self._expiry) >= self._max:
            log.warning("token replay cache full (%d ids): forgetting the oldest", self._max)
            while len(self._expiry) >= self._max:
                self._pop()
        self._expiry[key] = expires_at
        heapq.heappush(self._heap, (expires_at, key))
        return True

    def _forget_expired(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            self._pop()

    def _pop(self) -> None:
        _, key = heapq.heappop(self._heap)
        del self._expiry[key]  # one heap entry per remembered id: ids are never re-added

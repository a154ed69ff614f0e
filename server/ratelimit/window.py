"""Sliding-window counter arithmetic, shared by the in-process and Redis backends.

Each subject keeps two integers per limit: the count in the current fixed window and the count
in the one before it. Usage "now" is estimated as

    previous * (1 - elapsed / window) + current

i.e. the previous window is assumed to have been spread evenly and only the part of it that
still overlaps the sliding window ending now is counted. Why this scheme: memory is O(1) per
subject instead of one timestamp per request (a sliding log, unbounded under a high rpm), it
allows no burst of twice the limit across a window boundary (the flaw of plain fixed windows),
and it is accurate to a few percent on real traffic: Cloudflare, which uses it for its rate
limiting, reported 0.003% of 400 million requests wrongly allowed or limited against an exact
sliding log. The Redis backend's Lua script
evaluates the same formula on the server; this module gives the Python side the matching
answers for Retry-After and the remaining-quota headers.

All functions take `cost <= limit`; a cost above the limit can never be admitted and callers
refuse it before getting here.
"""

from __future__ import annotations

import math

# Tolerance for float rounding in the weighted sum: 3 * (1 - 20/60) is 2.0000000000000004, and
# a request that fits exactly must not be refused for it. The Lua script uses the same value.
EPSILON = 1e-9


def weighted(current: int, previous: int, elapsed_s: float, window_s: float) -> float:
    """Estimated usage of the sliding window that ends `elapsed_s` into the current window."""
    return previous * (1.0 - elapsed_s / window_s) + current


def fits(
    current: int, previous: int, elapsed_s: float, window_s: float, limit: int, cost: int
) -> bool:
    return weighted(current, previous, elapsed_s, window_s) + cost <= limit + EPSILON


def seconds_until_fits(
    current: int, previous: int, elapsed_s: float, window_s: float, limit: int, cost: int
) -> float:
    """How long until `cost` more fits under `limit`, assuming no other traffic meanwhile.

    If the current window alone leaves room, only the previous window's weight has to shrink,
    which happens before this window ends. Otherwise the request waits for the next window, in
    which today's count becomes the previous one and decays in turn.
    """
    room = limit - cost
    if current <= room:
        if previous == 0:
            return 0.0
        return max(0.0, window_s * (1.0 - (room - current) / previous) - elapsed_s)
    into_next_window = window_s * (1.0 - room / current)
    return (window_s - elapsed_s) + into_next_window


def retry_after_s(seconds: float) -> int:
    """Whole seconds for a Retry-After header: rounded up (never early), at least 1."""
    return max(1, math.ceil(seconds - EPSILON))


def remaining(
    limit: int | None, current: int, previous: int, elapsed_s: float, window_s: float
) -> int | None:
    """Quota left in the sliding window (None where there is no limit), for response headers."""
    if limit is None:
        return None
    return max(0, math.floor(limit - weighted(current, previous, elapsed_s, window_s) + EPSILON))

"""API-key authentication with a short-lived cache in front of the database.

Checking a key is one indexed read plus an HMAC, but doing that read on every request would
put the database on the hot path of every completion. So a verdict (valid record, or
invalid) is cached for `cache_ttl_s` under the key's HMAC fingerprint (never the plaintext):
a revocation reaches every replica within that time, while expiry is checked against the
clock on every request and so is exact. Concurrent first uses of one key share a single
database read, and the read runs in a thread so a slow database never stalls the event loop.

`last_used_at` is written at most once a minute per key, in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from server.db.keys import KeyRecord, KeyStore
from server.db.models import utc_now
from server.errors import AuthenticationFailed
from server.security.principal import Principal, end_user_from

log = logging.getLogger(__name__)

MAX_CACHED = 10_000
"""Bound on cached verdicts, so a flood of random keys cannot grow memory without limit."""

LAST_USED_EVERY_S = 60.0


@dataclass(frozen=True)
class _Verdict:
    record: KeyRecord | None
    checked_at: float


def bearer_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer ...` (what OpenAI SDKs send) or `x-api-key`."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        return None
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class Authenticator:
    """Turns request headers into a `Principal`, or raises `AuthenticationFailed` (401)."""

    def __init__(
        self,
        store: KeyStore | None,
        cache_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`store` None switches authentication off: every caller is anonymous."""
        self._store = store
        self._ttl = cache_ttl_s
        self._clock = clock
        self._cache: OrderedDict[str, _Verdict] = OrderedDict()
        self._pending: dict[str, asyncio.Future[KeyRecord | None]] = {}
        self._last_marked: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self._store is not None

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        end_user = end_user_from(headers)
        if self._store is None:
            return Principal(None, end_user)
        plaintext = bearer_key(headers)
        if plaintext is None:
            raise AuthenticationFailed(
                "No API key provided: send it as 'Authorization: Bearer <key>'."
            )
        fingerprint = self._store.fingerprint(plaintext)
        record = None if fingerprint is None else await self._lookup(fingerprint, plaintext)
        if record is None or record.status(utc_now()) != "active":
            raise AuthenticationFailed("Invalid API key: unknown, revoked or expired.")
        self._mark_used(record.public_id)
        return Principal(record, end_user)

    async def _lookup(self, fingerprint: str, plaintext: str) -> KeyRecord | None:
        verdict = self._cache.get(fingerprint)
        now = self._clock()
        if verdict is not None and now - verdict.checked_at < self._ttl:
            return verdict.record
        pending = self._pending.get(fingerprint)
        if pending is not None:
            return await asyncio.shield(pending)
        store = self._store
        assert store is not None
        future: asyncio.Future[KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._pending[fingerprint] = future
        try:
            record = await asyncio.to_thread(store.verify, plaintext)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future never warns
            raise
        finally:
            del self._pending[fingerprint]
        future.set_result(record)
        self._remember(fingerprint, _Verdict(record, now))
        return record

    def _remember(self, fingerprint: str, verdict: _Verdict) -> None:
        self._cache[fingerprint] = verdict
        self._cache.move_to_end(fingerprint)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)

    def _mark_used(self, public_id: str) -> None:
        now = self._clock()
        if now - self._last_marked.get(public_id, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
            return
        self._last_marked[public_id] = now
        store = self._store
        assert store is not None
        task = asyncio.get_running_loop().create_task(self._write_last_used(store, public_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _write_last_used(store: KeyStore, public_id: str) -> None:
        try:
            await asyncio.to_thread(store.mark_used, public_id)
        except Exception as exc:  # bookkeeping only: never fail a request over it
            log.warning("could not record last use of key %s: %s", public_id, type(exc).__name__)

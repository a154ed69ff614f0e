"""The authenticator's cache: one database read per key per TTL, expiry exact, bounded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.db.keys import KeyRecord, KeyStore
from server.db.models import utc_now
from server.errors import AuthenticationFailed
from server.security.auth import Authenticator, bearer_key
from tests.db_fixtures import PEPPER, database_url, engine, migrated, sessions

__all__ = ["database_url", "engine", "migrated", "sessions"]  # fixtures used below


class CountingStore(KeyStore):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__(sessions, PEPPER)
        self.reads = 0

    def verify(self, plaintext: object) -> KeyRecord | None:
        self.reads += 1
        return super().verify(plaintext)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_bearer_key_forms() -> None:
    assert bearer_key({"authorization": "Bearer abc"}) == "abc"
    assert bearer_key({"authorization": "bearer  abc "}) == "abc"
    assert bearer_key({"authorization": "Basic abc"}) is None
    assert bearer_key({"x-api-key": "abc"}) == "abc"
    assert bearer_key({}) is None


def test_verdicts_are_cached_for_the_ttl_and_shared_by_concurrent_requests(
    sessions: sessionmaker[Session],
) -> None:
    store = CountingStore(sessions)
    _, key = store.create_key("a", "chat")
    clock = Clock()
    auth = Authenticator(store, cache_ttl_s=5.0, clock=clock)

    async def scenario() -> None:
        principals = await asyncio.gather(*(auth.authenticate(bearer(key)) for _ in range(20)))
        assert {p.tenant_id for p in principals} == {principals[0].tenant_id}
        assert store.reads == 1
        clock.now = 4.9
        await auth.authenticate(bearer(key))
        assert store.reads == 1
        clock.now = 5.1
        await auth.authenticate(bearer(key))
        assert store.reads == 2
        for _ in range(3):  # a bad key is cached too: a retry loop cannot hammer the database
            with pytest.raises(AuthenticationFailed):
                await auth.authenticate(bearer(key[:-4] + "AAAA"))
        assert store.reads == 3
        with pytest.raises(AuthenticationFailed):  # malformed: no database read at all
            await auth.authenticate(bearer("sk-whatever"))
        assert store.reads == 3
        await asyncio.sleep(0.1)  # let the throttled last_used_at write finish

    asyncio.run(scenario())
    assert store.get_key(key.split("-")[1]).last_used_at is not None


def test_expiry_is_exact_even_inside_the_ttl(sessions: sessionmaker[Session]) -> None:
    """The cached record is re-checked against the clock on every request."""
    store = CountingStore(sessions)
    _, key = store.create_key("a", "chat", expires_at=utc_now() + timedelta(seconds=1.5))
    auth = Authenticator(store, cache_ttl_s=3600.0)

    async def scenario() -> None:
        await auth.authenticate(bearer(key))
        await asyncio.sleep(1.6)
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(bearer(key))

    asyncio.run(scenario())
    assert store.reads == 1


def test_auth_off_is_anonymous_with_every_scope() -> None:
    principal = asyncio.run(Authenticator(None, 5.0).authenticate({}))
    assert principal.key is None
    assert "admin" in principal.scopes

"""A gateway with authentication on, and a key store on its own database, for auth tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from server.db.database import make_engine, resolve_database_url, session_factory
from server.db.keys import KeyStore
from server.db.models import ApiKey, utc_now
from server.db.pepper import deployment_pepper
from server.gateway import Gateway
from tests.conftest import FakeWorker, isolated_settings
from tests.fakes import ServerThread


@dataclass
class AuthedGateway:
    server: ServerThread
    store: KeyStore
    sessions: sessionmaker[Session]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def gateway(self) -> Gateway:
        """The running app's gateway (its audit writer, stores...)."""
        gateway: Gateway = self.server.server.config.app.state.gateway
        return gateway

    def key(self, scopes: str = "chat", tenant: str = "st-marys", **limits: Any) -> str:
        _, plaintext = self.store.create_key(tenant, scopes, **limits)
        return plaintext

    def revoked_key(self, scopes: str = "chat") -> str:
        record, plaintext = self.store.create_key("st-marys", scopes)
        self.store.revoke_key(record.public_id)
        return plaintext

    def expired_key(self, scopes: str = "chat") -> str:
        """A key whose expiry has passed (set in the database: creation refuses the past)."""
        record, plaintext = self.store.create_key(
            "st-marys", scopes, expires_at=utc_now() + timedelta(days=1)
        )
        with self.sessions.begin() as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.public_id == record.public_id)
                .values(expires_at=utc_now() - timedelta(seconds=1))
            )
        return plaintext


@pytest.fixture
def start_authed_gateway(
    start_gateway: Callable[..., ServerThread], worker: FakeWorker, tmp_path: Path
) -> Iterator[Callable[..., AuthedGateway]]:
    """Start a gateway with auth on (cache off unless asked) and a store on its database."""
    engines = []

    def start(**overrides: Any) -> AuthedGateway:
        auth = {"enabled": True, "cache_ttl_s": 0.0, **overrides.pop("auth", {})}
        server = start_gateway([worker.url], auth=auth, **overrides)
        settings = isolated_settings(tmp_path, [])
        engine = make_engine(resolve_database_url(settings.database_url, settings.data_dir))
        engines.append(engine)
        sessions = session_factory(engine)
        return AuthedGateway(server, KeyStore(sessions, deployment_pepper(settings)), sessions)

    yield start
    for engine in engines:
        engine.dispose()

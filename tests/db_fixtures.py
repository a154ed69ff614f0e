"""Database fixtures shared by tests/test_db_*.py: every test runs on SQLite and PostgreSQL.

PostgreSQL isolation: each test gets its own schema in the `test` database, reached through a
URL whose `options` put that schema first on the search_path, and the schema is dropped
afterwards. Where no server answers within a second (a laptop) the PostgreSQL variants are
skipped with the reason; set CLINSERVE_REQUIRE_POSTGRES=1 (CI) to make that a failure.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from server.db import migrate
from server.db.database import make_engine, session_factory
from server.db.keys import KeyStore

POSTGRES_URL = os.environ.get(
    "CLINSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PEPPER = b"p" * 32


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when a 1 s connect attempt succeeds."""
    import psycopg

    conninfo = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(conninfo, connect_timeout=1):
            return None
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {reason}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of each backend, private to the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'clinserve.db'}"
        return
    reason = postgres_unavailable()
    if reason is not None:
        if os.environ.get("CLINSERVE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"t_{secrets.token_hex(8)}"
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's empty database, disposed before the database is dropped."""
    created = make_engine(database_url)
    try:
        yield created
    finally:
        created.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    migrate.upgrade(engine)
    return engine


@pytest.fixture
def sessions(migrated: Engine) -> sessionmaker[Session]:
    return session_factory(migrated)


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> KeyStore:
    return KeyStore(sessions, PEPPER)

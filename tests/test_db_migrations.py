"""Migrations: from an empty database up, down to nothing and up again, matching the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from server.db import migrate
from server.db.database import (
    DatabaseConfigError,
    default_database_url,
    make_engine,
    parse_database_url,
    resolve_database_url,
)
from server.db.schema import Base
from tests import db_fixtures

# Fixtures shared with the other test_db_* modules (see tests/db_fixtures.py).
database_url = db_fixtures.database_url
engine = db_fixtures.engine
migrated = db_fixtures.migrated

APP_TABLES = {
    "tenants",
    "api_keys",
    "audit_events",
    "audit_content",
    "audit_chain_head",
    "feedback",
    "adapter_versions",
}


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(engine: Engine) -> None:
    assert _tables(engine) == set()
    assert migrate.current_revision(engine) is None

    migrate.upgrade(engine)
    assert _tables(engine) == APP_TABLES
    assert migrate.current_revision(engine) == migrate.head_revision() == "0006"
    migrate.upgrade(engine)  # idempotent at head
    assert migrate.current_revision(engine) == "0006"

    migrate.downgrade(engine, "base")
    assert _tables(engine) == set()
    assert migrate.current_revision(engine) is None

    migrate.upgrade(engine)
    assert _tables(engine) == APP_TABLES


def test_migrations_match_the_models(migrated: Engine) -> None:
    """A model change without a migration (or the reverse) shows up as a diff here."""
    with migrated.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_constraints_are_enforced(migrated: Engine) -> None:
    """Foreign keys (SQLite needs a PRAGMA for that) and the positive-limit checks hold."""
    with migrated.connect() as connection:
        with pytest.raises(Exception, match="(?i)foreign key"):
            connection.execute(
                text(
                    "INSERT INTO api_keys (public_id, tenant_id, secret_hash, scopes, created_at) "
                    "VALUES ('abc', 999, 'h', 'chat', CURRENT_TIMESTAMP)"
                )
            )
        connection.rollback()
        connection.execute(
            text("INSERT INTO tenants (name, created_at) VALUES ('t', CURRENT_TIMESTAMP)")
        )
        with pytest.raises(Exception, match="(?i)check constraint|ck_api_keys_rpm_positive"):
            connection.execute(
                text(
                    "INSERT INTO api_keys (public_id, tenant_id, secret_hash, scopes, rpm, "
                    "created_at) SELECT 'abc', id, 'h', 'chat', 0, CURRENT_TIMESTAMP FROM tenants"
                )
            )
        connection.rollback()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    created = make_engine(f"sqlite:///{tmp_path / 'nested' / 'x.db'}")
    try:
        with created.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        created.dispose()
    assert (tmp_path / "nested" / "x.db").is_file()


def test_default_url_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert default_database_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'clinserve.db'}"
    assert resolve_database_url(None, tmp_path) == default_database_url(tmp_path)
    assert resolve_database_url("  ", tmp_path) == default_database_url(tmp_path)
    assert resolve_database_url("sqlite:///x.db", tmp_path) == "sqlite:///x.db"


def test_urls_pick_psycopg_and_refuse_other_backends() -> None:
    assert parse_database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert parse_database_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(DatabaseConfigError, match="unsupported database 'mysql'"):
        parse_database_url("mysql://u@h/db")
    with pytest.raises(DatabaseConfigError, match="invalid database URL"):
        parse_database_url("not a url")


def test_missing_migrations_folder_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(migrate.MIGRATIONS_DIR_ENV, str(tmp_path))
    with pytest.raises(migrate.MigrationsNotFound, match="CLINSERVE_MIGRATIONS_DIR"):
        migrate.migrations_dir()

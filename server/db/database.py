"""Engines and sessions from a database URL, with the per-backend settings the store relies on.

SQLite is the zero-configuration default (`<data_dir>/clinserve.db`); PostgreSQL is the
production backend. Both go through `make_engine` so the CLI, the migrations and (later) the
gateway see the same connection behaviour: SQLite gets foreign keys enforced (it ignores them
unless asked on every connection) and WAL journaling (readers do not block the writer, which
matters once the gateway reads keys while the CLI revokes one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

DATABASE_FILE = "clinserve.db"
"""File name of the default SQLite database inside the data dir."""


class DatabaseConfigError(ValueError):
    """A database URL clinserve cannot use; the message names the URL's problem, not a trace."""


def default_database_url(data_dir: Path) -> str:
    """The SQLite URL used when no `database_url` setting is given."""
    return f"sqlite:///{(data_dir / DATABASE_FILE).expanduser().resolve()}"


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The configured URL, or the SQLite default in `data_dir` when none is set."""
    if database_url is not None and database_url.strip():
        return database_url.strip()
    return default_database_url(data_dir)


def parse_database_url(url: str | URL) -> URL:
    """Validate a URL and pick the driver clinserve ships for PostgreSQL.

    `postgresql://` and `postgres://` would otherwise mean psycopg2, which is not installed;
    they are rewritten to `postgresql+psycopg://` (psycopg 3). Other backends are refused
    because the migrations are only tested on SQLite and PostgreSQL.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise DatabaseConfigError(f"invalid database URL: {exc}") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseConfigError(
            f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://..."
        )
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for `url`; a file-based SQLite database's folder is created if missing."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        if not in_memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(wal=not in_memory))
        return engine
    kwargs.setdefault("pool_pre_ping", True)  # survive a PostgreSQL restart between requests
    return create_engine(parsed, **kwargs)


def _sqlite_pragmas(*, wal: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")  # wait for the writer, not fail at once
        finally:
            cursor.close()

    return on_connect


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose loaded rows stay readable after commit (results outlive the session)."""
    return sessionmaker(engine, expire_on_commit=False)

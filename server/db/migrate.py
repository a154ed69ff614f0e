"""Run the alembic migrations from code, with no alembic.ini and no dependence on the cwd.

The migration scripts live in `migrations/` at the repository root (the layout DESIGN.md
names). They are found relative to this file, which works from a source checkout and an
editable install (`pip install -e .`, what `make setup` does); a plain wheel does not carry
them, so `MIGRATIONS_DIR_ENV` can point elsewhere (e.g. a container that copies the folder).

The alembic `Config` is built here: `script_location` is the folder, and the caller's engine
is handed to `env.py` through `config.attributes`, so migrations use the same connection
setup (SQLite foreign keys, the psycopg driver) as everything else.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR_ENV = "CLINSERVE_MIGRATIONS_DIR"
"""Overrides where the alembic scripts are looked for (installs without the source tree)."""

ENGINE_ATTRIBUTE = "clinserve_engine"
"""Key under which `env.py` finds the engine in `Config.attributes`."""


class MigrationsNotFound(RuntimeError):
    """The migration scripts are not where this install expects them."""


def migrations_dir() -> Path:
    """The alembic script folder: `$CLINSERVE_MIGRATIONS_DIR`, else `<repo>/migrations`."""
    override = os.environ.get(MIGRATIONS_DIR_ENV, "").strip()
    repo_folder = Path(__file__).resolve().parents[2] / "migrations"
    folder = Path(override).expanduser() if override else repo_folder
    if not (folder / "env.py").is_file():
        raise MigrationsNotFound(
            f"no alembic migrations in {folder}: run from a source checkout or editable "
            f"install, or set {MIGRATIONS_DIR_ENV} to the repository's migrations folder"
        )
    return folder


def alembic_config(engine: Engine | None = None) -> Config:
    """An alembic Config for the packaged scripts, bound to `engine` when given.

    Also the entry point for writing a new revision, e.g.
    `command.revision(alembic_config(engine), "add audit", autogenerate=True)`.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    if engine is not None:
        config.attributes[ENGINE_ATTRIBUTE] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema up to `revision` (idempotent at head)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the schema back down to `revision` (`base`: no clinserve tables at all)."""
    command.downgrade(alembic_config(engine), revision)


def head_revision() -> str | None:
    """The newest revision the scripts define."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

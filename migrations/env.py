"""Alembic environment for clinserve: run by `server.db.migrate`, never by a bare `alembic`.

The engine arrives in `config.attributes` (see `server.db.migrate.alembic_config`), so the
migrations run on exactly the connection setup the application uses. Offline mode (`--sql`)
renders against the `sqlalchemy.url` main option instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from server.db.migrate import ENGINE_ATTRIBUTE
from server.db.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get(ENGINE_ATTRIBUTE)
    if not isinstance(engine, Engine):
        raise RuntimeError("run migrations through server.db.migrate, which passes the engine")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode recreates the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

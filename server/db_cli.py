"""What every database subcommand shares: options, opening (and migrating) the database the
server would use, and turning operator-facing failures into one stderr line and an exit code.

Only stdlib at module level: `cli.main` imports the subcommand modules to build its parser.
Exit 2 for input the operator must fix, 1 for everything else.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from server.settings import Settings

EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input the operator must fix; printed as one line, exit 2."""


def database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL (default: $CLINSERVE_DATABASE_URL or SQLite in the data dir)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="clinserve data folder (default: $CLINSERVE_DATA_DIR or the per-user data dir)",
    )


@dataclass
class OpenDatabase:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    def pepper(self) -> bytes:
        """The server secret (key hashes, audit chain), created on first use like the server."""
        from server.db.pepper import deployment_pepper

        return deployment_pepper(self.settings)


@contextmanager
def open_database(args: argparse.Namespace) -> Iterator[OpenDatabase]:
    """Settings as the server reads them with the CLI's overrides; migrated; disposed after."""
    from server.db import migrate
    from server.db.database import make_engine, resolve_database_url, session_factory
    from server.settings import Settings

    overrides: dict[str, Any] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.database_url is not None:
        overrides["database_url"] = args.database_url
    settings = Settings(**overrides)
    engine = make_engine(resolve_database_url(settings.database_url, settings.data_dir))
    try:
        migrate.upgrade(engine)
        yield OpenDatabase(settings, engine, session_factory(engine))
    finally:
        engine.dispose()


def guarded(
    prefix: str,
    body: Callable[[], int],
    usage: tuple[type[BaseException], ...] = (),
    operator: tuple[type[BaseException], ...] = (),
) -> int:
    """Run `body`; `usage` errors exit 2, `operator` errors 1, each as one stderr line."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from server.db.database import DatabaseConfigError
    from server.db.migrate import MigrationsNotFound
    from server.db.pepper import PepperError

    usage_errors: tuple[type[BaseException], ...] = (UsageError, DatabaseConfigError, *usage)
    operator_errors: tuple[type[BaseException], ...] = (PepperError, MigrationsNotFound, *operator)
    try:
        return body()
    except usage_errors as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        print(f"{prefix}: invalid settings: {errors}", file=sys.stderr)
        return EXIT_USAGE
    except operator_errors as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"{prefix}: database error: {reason}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def parse_moment(value: str, option: str) -> datetime:
    """`YYYY-MM-DD` (00:00 UTC that day) or an ISO-8601 datetime (UTC if no zone given)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date (YYYY-MM-DD) or ISO datetime") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def write_jsonl(rows: Iterable[dict[str, Any]], out: Path | None) -> str | None:
    """Write `rows` as JSON lines to `out`, or stdout; where they went, or None when the reader
    of stdout went away (`... | head`: it has what it wanted, exit quietly).

    A file is all or nothing: lines go to a sibling temporary file that is renamed at the end,
    so a failed export never leaves a file that looks complete.
    """
    if out is None:
        if isinstance(sys.stdout, io.TextIOWrapper):  # JSON lines are UTF-8 whatever the locale
            sys.stdout.reconfigure(encoding="utf-8")
        try:
            _write_lines(rows, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return None
        return "stdout"
    partial = out.with_name(f".{out.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as stream:
            _write_lines(rows, stream)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return str(out)


def _write_lines(rows: Iterable[dict[str, Any]], stream: IO[str]) -> None:
    for row in rows:
        stream.write(json.dumps(row, ensure_ascii=False) + "\n")

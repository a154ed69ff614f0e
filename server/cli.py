"""`clinserve serve`: the gateway, plus a managed local vLLM CPU worker unless --worker."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.gateway import Gateway


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument(
        "--worker",
        action="append",
        metavar="URL",
        help="external vLLM server; repeatable. Without it a local CPU worker is started.",
    )
    parser.add_argument("--worker-api-key", help="bearer key the external workers expect")
    parser.add_argument("--model", help="model directory or hub id for the local worker")
    parser.add_argument("--model-name", help="name clients send as `model`")
    parser.add_argument("--data-dir", help="where models, logs and state live")
    parser.add_argument(
        "--corpus",
        action="append",
        metavar="PATH",
        help="guideline files or folders; repeatable. Indexed at start-up when the index "
        "folder holds no index yet (make run passes the sample corpus in data/guidelines).",
    )
    parser.add_argument("--index-dir", help="the served guideline index folder")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "worker_api_key", "data_dir"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.worker:
        overrides["workers"] = args.worker
    retrieval = {"corpus": args.corpus, "index_dir": args.index_dir}
    if any(retrieval.values()):
        overrides["retrieval"] = {key: value for key, value in retrieval.items() if value}
    model = {"path": args.model, "name": args.model_name}
    if any(model.values()):
        overrides["model"] = {key: value for key, value in model.items() if value}
    return overrides


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from server.app import create_app
    from server.db.database import DatabaseConfigError
    from server.db.migrate import MigrationsNotFound
    from server.db.pepper import PepperError
    from server.jsonlog import configure_logging
    from server.serve import run as serve
    from server.settings import Settings
    from server.workers.local import LocalWorker
    from weights.errors import ModelNotFound
    from weights.location import resolve_model

    try:
        settings = Settings(**_overrides(args))
    except ValidationError as exc:
        print(f"clinserve serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)

    local_worker = None
    if not settings.workers:
        try:
            model = resolve_model(settings.model.path, settings.data_dir)
        except ModelNotFound as exc:
            print(f"clinserve serve: {exc}", file=sys.stderr)
            return 1
        local_worker = LocalWorker(
            model,
            settings.model.name,
            settings.local_worker,
            settings.data_dir / "logs" / "worker.log",
        )
        print(f"Starting a local vLLM CPU worker for {model} (log: {local_worker.log_path})")
    try:
        app = create_app(settings, local_worker=local_worker)
        _prepare_database(app.state.gateway)
    except (SQLAlchemyError, DatabaseConfigError, PepperError, MigrationsNotFound) as exc:
        print(f"clinserve serve: database: {exc}", file=sys.stderr)
        return 1
    print(f"Gateway on http://{settings.host}:{settings.port}/v1 (ready once /ready says so)")
    serve(app, settings.host, settings.port, settings.log_level, local_worker)
    return 0


def _prepare_database(gateway: Gateway) -> None:
    """Migrate before serving (errors surface here, not on the first request), then print
    the bootstrap admin key if this is the first start."""
    from server.db import migrate
    from server.security.bootstrap import banner, bootstrap_admin_key

    migrate.upgrade(gateway.engine)
    settings = gateway.settings
    if settings.auth.enabled and settings.auth.bootstrap_admin_key:
        plaintext = bootstrap_admin_key(gateway.keys)
        if plaintext is not None:
            print(banner(plaintext), flush=True)

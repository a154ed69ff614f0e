"""`clinserve audit ...`: verify the chain, export rows, purge expired texts, set retention.

Uses the same database and server secret as the gateway (see `server.db_cli`). `verify`
prints a JSON verdict and exits 1 when the chain is broken, so it can run from cron or CI.
`export` writes JSON lines (no texts unless `--with-content`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from server.db_cli import (
    UsageError,
    database_options,
    guarded,
    open_database,
    parse_moment,
    write_jsonl,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", help="check the hash chain (exit 1 if broken)")
    database_options(verify)
    export = sub.add_parser("export", help="audit rows as JSON lines")
    export.add_argument("--tenant", metavar="NAME", help="only this tenant's rows")
    export.add_argument("--since", metavar="DATE", help="from this time (YYYY-MM-DD or ISO)")
    export.add_argument("--until", metavar="DATE", help="before this time")
    export.add_argument("--with-content", action="store_true", help="include retained texts")
    export.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    database_options(export)
    purge = sub.add_parser("purge", help="delete retained texts past their retention period")
    database_options(purge)
    retention = sub.add_parser("retention", help="turn a tenant's content retention on or off")
    retention.add_argument("--tenant", required=True, metavar="NAME")
    choice = retention.add_mutually_exclusive_group(required=True)
    choice.add_argument("--days", type=int, help="keep prompt and response texts this long")
    choice.add_argument("--off", action="store_true", help="keep no texts (the default)")
    database_options(retention)


def run(args: argparse.Namespace) -> int:
    from server.audit.store import UnknownTenant

    return guarded(f"clinserve audit {args.action}", lambda: _run(args), usage=(UnknownTenant,))


def _run(args: argparse.Namespace) -> int:
    from server.audit.chain import chain_key
    from server.audit.store import AuditStore, EventFilter

    if args.action == "retention" and args.days is not None and args.days < 1:
        raise UsageError("--days must be a positive number of days")
    where = EventFilter(
        since=parse_moment(args.since, "--since") if getattr(args, "since", None) else None,
        until=parse_moment(args.until, "--until") if getattr(args, "until", None) else None,
    )
    with open_database(args) as database:
        store = AuditStore(database.sessions, chain_key(database.pepper()))
        if args.action == "verify":
            verdict = store.verify()
            print(json.dumps(verdict.to_json()))
            return 0 if verdict.intact else 1
        if args.action == "purge":
            print(json.dumps({"purged": store.purge()}))
            return 0
        if args.action == "retention":
            store.set_retention(args.tenant, None if args.off else args.days)
            state = "off" if args.off else f"{args.days} days"
            print(f"content retention for {args.tenant}: {state}", file=sys.stderr)
            return 0
        rows = store.export(args.tenant, where, with_content=args.with_content)
        return 0 if write_jsonl(rows, args.out) is not None else 1

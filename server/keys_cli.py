"""`clinserve keys ...`: create, list, update and revoke API keys in the gateway's database.

Reads the same settings as `clinserve serve` (`CLINSERVE_DATABASE_URL`, `CLINSERVE_DATA_DIR`,
the key pepper), so a key made here is one the gateway accepts; `--database-url` and
`--data-dir` override them. The database is migrated to the newest schema before use.

`create` prints the key on stdout and nothing else there, exactly once, so
`KEY=$(clinserve keys create ...)` captures it; the summary goes to stderr. `list` never
shows secrets or hashes (they are not stored, and the hash stays in the database).

Only stdlib at module level: `cli.main` imports this module to build the parser. Errors an
operator can act on print one line on stderr: exit 2 for bad input, 1 for everything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from server.db_cli import UsageError, database_options, guarded, open_database

_INTAKE_MODES = ("off", "annotate", "normalize")
"""`server.db.keys.INTAKE_MODES`, repeated because this module imports only the stdlib at load
(a test checks the two agree)."""

if TYPE_CHECKING:
    from server.db.keys import KeyRecord, KeyStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register `create`, `list`, `update` and `revoke` on the `clinserve keys` parser."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = sub.add_parser(
        "create",
        help="create a key (printed once on stdout)",
        description="Create an API key for a tenant (the tenant is created if missing). The key "
        "is printed once on stdout; only a keyed hash of it is stored.",
    )
    create.add_argument("--tenant", required=True, help="tenant name, e.g. st-marys")
    create.add_argument(
        "--scopes",
        required=True,
        help="comma-separated: chat,embeddings,intake,feedback,admin,adapters,cds",
    )
    create.add_argument("--rpm", type=int, help="requests per minute (default: no key limit)")
    create.add_argument("--tpm", type=int, help="tokens per minute (default: no key limit)")
    create.add_argument("--max-concurrent", type=int, help="requests in flight at once")
    create.add_argument(
        "--expires",
        metavar="DATE",
        help="YYYY-MM-DD (the key stops working at 00:00 UTC that day) or an ISO datetime",
    )
    create.add_argument("--description", help="free text shown by `keys list`")
    create.add_argument(
        "--intake-mode",
        choices=_INTAKE_MODES,
        help="intake mode for this key's chat requests that name none "
        "(default: the deployment's CLINSERVE_INTAKE__MODE)",
    )
    database_options(create)

    listing = sub.add_parser(
        "list", help="list keys (never secrets)", description="List API keys, oldest first."
    )
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="one JSON array on stdout")
    database_options(listing)

    update = sub.add_parser(
        "update",
        help="change a key's settings",
        description="Change a key's settings. Running gateways see the change within "
        "CLINSERVE_AUTH__CACHE_TTL_S seconds.",
    )
    update.add_argument("id", metavar="ID", help="the key id shown by `keys list`")
    update.add_argument(
        "--intake-mode",
        required=True,
        choices=(*_INTAKE_MODES, "default"),
        help="the key's intake mode; `default` follows the deployment's again",
    )
    database_options(update)

    revoke = sub.add_parser(
        "revoke", help="revoke a key at once", description="Revoke an API key by its id."
    )
    revoke.add_argument("id", metavar="ID", help="the key id shown by `keys list`")
    database_options(revoke)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action; map operator-facing failures to one stderr line."""
    from server.db.keys import InvalidKeySpec, KeyManagementError, KeyStore

    def body() -> int:
        if args.action == "create":  # refuse bad input before creating a database or pepper
            _check_create(args)
        with open_database(args) as database:
            store = KeyStore(database.sessions, database.pepper())
            if args.action == "create":
                return _create(store, args)
            if args.action == "list":
                return _list(store, args)
            if args.action == "update":
                return _update(store, args)
            return _revoke(store, args)

    return guarded(
        f"clinserve keys {args.action}",
        body,
        usage=(InvalidKeySpec,),
        operator=(KeyManagementError,),
    )


def _check_create(args: argparse.Namespace) -> None:
    from server.db.keys import check_key_spec

    check_key_spec(
        args.tenant,
        args.scopes,
        args.rpm,
        args.tpm,
        args.max_concurrent,
        args.description,
        args.intake_mode,
    )
    if args.expires:
        _parse_expiry(args.expires)


def _create(store: KeyStore, args: argparse.Namespace) -> int:
    record, plaintext = store.create_key(
        args.tenant,
        args.scopes,
        rpm=args.rpm,
        tpm=args.tpm,
        max_concurrent=args.max_concurrent,
        expires_at=_parse_expiry(args.expires) if args.expires else None,
        description=args.description,
        intake_mode=args.intake_mode,
    )
    print(plaintext, flush=True)
    expiry = record.expires_at.isoformat() if record.expires_at else "never"
    print(
        f"created key {record.public_id} for tenant {record.tenant} "
        f"(scopes {','.join(sorted(record.scopes))}; expires {expiry}). "
        "Store it now: it cannot be shown again.",
        file=sys.stderr,
    )
    return 0


def _list(store: KeyStore, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    records = store.list_keys(args.tenant)
    if args.json:
        print(json.dumps([_as_json(record, now) for record in records], indent=2))
        return 0
    header = ("ID", "TENANT", "SCOPES", "STATUS", "INTAKE", "EXPIRES", "LAST USED", "DESCRIPTION")
    rows = [header] + [
        (
            record.public_id,
            record.tenant,
            ",".join(sorted(record.scopes)),
            record.status(now),
            record.intake_mode or "-",
            _day(record.expires_at),
            _day(record.last_used_at),
            record.description or "",
        )
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _update(store: KeyStore, args: argparse.Namespace) -> int:
    mode = None if args.intake_mode == "default" else args.intake_mode
    record = store.set_intake_mode(args.id, mode)
    shown = record.intake_mode or "the deployment's default"
    print(f"key {record.public_id}: intake mode {shown}", file=sys.stderr)
    return 0


def _revoke(store: KeyStore, args: argparse.Namespace) -> int:
    before = store.get_key(args.id)
    record = store.revoke_key(args.id)
    if before.revoked_at is not None:
        print(f"key {record.public_id} was already revoked", file=sys.stderr)
    else:
        print(f"revoked key {record.public_id} of tenant {record.tenant}", file=sys.stderr)
    return 0


def _parse_expiry(value: str) -> datetime:
    """`YYYY-MM-DD` means 00:00 UTC that day; a datetime without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"--expires {value!r} is not a date (YYYY-MM-DD)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed <= datetime.now(UTC):
        raise UsageError(f"--expires {value} is in the past")
    return parsed.astimezone(UTC)


def _as_json(record: KeyRecord, now: datetime) -> dict[str, Any]:
    def stamp(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": record.public_id,
        "tenant": record.tenant,
        "scopes": sorted(record.scopes),
        "status": record.status(now),
        "rpm": record.rpm,
        "tpm": record.tpm,
        "max_concurrent": record.max_concurrent,
        "created_at": stamp(record.created_at),
        "expires_at": stamp(record.expires_at),
        "revoked_at": stamp(record.revoked_at),
        "last_used_at": stamp(record.last_used_at),
        "description": record.description,
        "intake_mode": record.intake_mode,
    }


def _day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"

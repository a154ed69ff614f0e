"""`clinserve adapters ...`: publish LoRA adapters and move versions between states.

Acts on the registry in the gateway's database (same settings as `clinserve serve`); running
gateways pick changes up from there. Commands that change a version print it as JSON on
stdout (`publish` prints the new version: `name`, `version`, `served_name`, ...). Refusals
(not an adapter, wrong base model, rank over the limit, a failed evaluation gate, a rule of
the state machine) are one line on stderr: exit 2 for what the operator must fix, 1 else.

Only stdlib at module level: `cli.main` imports this module to build the parser.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.db_cli import database_options, guarded, open_database

if TYPE_CHECKING:
    from server.adapters.publish import EvalGate, ServedBase
    from server.adapters.registry import AdapterRegistry, AdapterVersion
    from server.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    publish = sub.add_parser(
        "publish",
        help="check, copy and register an adapter folder as the next version",
        description="Check a peft LoRA folder, copy it under the adapters root and register it "
        "as the next version of NAME (staged, or a canary with --canary).",
    )
    publish.add_argument("dir", metavar="DIR", help="a peft LoRA adapter folder")
    publish.add_argument("--name", required=True, help="the alias clients ask for as `model`")
    publish.add_argument(
        "--canary", type=int, metavar="PERCENT", help="send this share of NAME's traffic to it"
    )
    publish.add_argument(
        "--eval-gate",
        action="append",
        default=[],
        metavar="METRIC>=VALUE|FILE.yaml",
        help="refuse unless the manifest's evaluation meets METRIC>=VALUE (repeatable), or "
        "unless the version, staged and evaluated through the running gateway as FILE.yaml "
        "says, scores within its margin of the active version (see `clinserve eval gate`)",
    )
    publish.add_argument(
        "--base-model",
        metavar="NAME",
        help="the served base model's name (default: CLINSERVE_MODEL__NAME)",
    )
    database_options(publish)

    listing = sub.add_parser("list", help="every version and its state")
    listing.add_argument("--name", help="only this adapter's versions")
    listing.add_argument("--json", action="store_true", help="one JSON array on stdout")
    database_options(listing)

    for action, summary in (
        ("promote", "make VERSION what NAME means (the active version is retired)"),
        ("retire", "stop serving VERSION (its files are kept)"),
    ):
        command = sub.add_parser(action, help=summary, description=summary)
        command.add_argument("name", metavar="NAME")
        command.add_argument("version", metavar="VERSION", type=int)
        database_options(command)

    canary = sub.add_parser("canary", help="send PERCENT of NAME's traffic to VERSION")
    canary.add_argument("name", metavar="NAME")
    canary.add_argument("version", metavar="VERSION", type=int)
    canary.add_argument("percent", metavar="PERCENT", type=int)
    database_options(canary)

    rollback = sub.add_parser("rollback", help="undo NAME's last promotion")
    rollback.add_argument("name", metavar="NAME")
    database_options(rollback)


def run(args: argparse.Namespace) -> int:
    from server.adapters.inspect import AdapterRefused
    from server.adapters.registry import RegistryError, UnknownAdapter

    return guarded(
        f"clinserve adapters {args.action}",
        lambda: _run(args),
        usage=(AdapterRefused, UnknownAdapter, RegistryError),
    )


def _run(args: argparse.Namespace) -> int:
    from server.adapters.eval_gate import is_gate_config
    from server.adapters.inspect import AdapterRefused
    from server.adapters.publish import EvalGate
    from server.adapters.registry import AdapterRegistry

    requested = getattr(args, "eval_gate", [])
    gates = [EvalGate.parse(text) for text in requested if not is_gate_config(text)]
    configs = [Path(text.strip()) for text in requested if is_gate_config(text)]
    if len(configs) > 1:
        raise AdapterRefused("give at most one evaluation gate config file")
    for config in configs:
        if not config.is_file():
            raise AdapterRefused(f"evaluation gate config {config} does not exist")
    with open_database(args) as database:
        settings = database.settings
        registry = AdapterRegistry(database.sessions)
        if args.action == "list":
            return _list(registry, args)
        if args.action == "publish":
            version = _publish(args, settings, registry, gates, configs[0] if configs else None)
        else:
            version = _change(registry, args)
    print(json.dumps(version.to_json(), indent=2))
    return 0


def _publish(
    args: argparse.Namespace,
    settings: Settings,
    registry: AdapterRegistry,
    gates: list[EvalGate],
    gate_config: Path | None,
) -> AdapterVersion:
    """Publish; with a gate config, stage first, evaluate, and only then make it a canary."""
    from server.adapters.eval_gate import gate_version
    from server.adapters.publish import publish

    base = _served_base(settings, args.base_model)
    version = publish(
        args.dir,
        args.name,
        registry=registry,
        root=settings.adapters.root_in(settings.data_dir),
        base=base,
        max_rank=settings.local_worker.max_lora_rank,
        canary_percent=None if gate_config else args.canary,
        gates=gates,
    )
    if gate_config is None:
        return version
    active = next((v for v in registry.list_versions(args.name) if v.state == "active"), None)
    reference = active.served_name if active else base.name
    return gate_version(registry, version, gate_config, reference, args.canary)


def _change(registry: AdapterRegistry, args: argparse.Namespace) -> AdapterVersion:
    if args.action == "promote":
        return registry.promote(args.name, args.version)
    if args.action == "retire":
        return registry.retire(args.name, args.version)
    if args.action == "canary":
        return registry.set_canary(args.name, args.version, args.percent)
    return registry.rollback(args.name)


def _served_base(settings: Settings, name: str | None) -> ServedBase:
    """The served base model; fingerprinted when its weights are on this machine (the local
    worker's model), so an adapter trained on other weights is caught here."""
    from server.adapters.publish import ServedBase
    from weights.errors import ModelNotFound
    from weights.fingerprint import fingerprint
    from weights.location import resolve_model

    base_name = name or settings.model.name
    if name is not None and name != settings.model.name:
        return ServedBase(base_name)  # another deployment's base: no local weights to check
    try:
        model_dir = resolve_model(settings.model.path, settings.data_dir)
        return ServedBase(base_name, fingerprint(Path(model_dir)))
    except (ModelNotFound, FileNotFoundError, NotADirectoryError):
        return ServedBase(base_name)


def _list(registry: AdapterRegistry, args: argparse.Namespace) -> int:
    versions = registry.list_versions(args.name)
    if args.json:
        print(json.dumps([version.to_json() for version in versions], indent=2))
        return 0
    header = ("NAME", "VERSION", "STATE", "CANARY", "RANK", "BASE MODEL", "PUBLISHED")
    rows: list[tuple[Any, ...]] = [header] + [
        (
            version.name,
            str(version.version),
            version.state,
            f"{version.canary_percent}%" if version.canary_percent else "-",
            str(version.rank),
            version.base_model,
            version.created_at.strftime("%Y-%m-%d %H:%M"),
        )
        for version in versions
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    if not versions:
        print("no adapters published", file=sys.stderr)
    return 0

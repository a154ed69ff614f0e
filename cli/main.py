"""Dispatch `clinserve <command>` to the package that owns it, importing only that package.

The command is the front door to every package, so it must not pull them all in: `clinserve
serve` never imports torch, and `clinserve model pull` never imports fastapi. Each command
module exposes `add_arguments(parser)` and `run(args) -> int` and keeps heavy imports inside
`run`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    module: str
    summary: str


COMMANDS: dict[str, Command] = {
    "serve": Command("server.cli", "run the gateway (and a local vLLM CPU worker unless --worker)"),
    "model": Command("weights.cli", "fetch, locate and build model weights"),
    "intake": Command("perturbation.cli", "analyse how a patient wrote a message (JSON out)"),
    "index": Command("retrieval.cli", "build, search and inspect guideline indexes"),
    "keys": Command("server.keys_cli", "create, list and revoke API keys"),
    "feedback": Command("server.feedback_cli", "export clinician feedback as training data"),
    "audit": Command("server.audit_cli", "verify, export and purge the audit trail"),
    "adapters": Command("server.adapters_cli", "publish LoRA adapters, promote and roll back"),
    "train": Command("training.cli", "train LoRA adapters and reward models from a YAML recipe"),
    "eval": Command("evaluation.cli", "MCQ accuracy and perturbation robustness of any endpoint"),
    "cds": Command("cli.cds", "an EMR's test key set and CDS Hooks JWT, for trying a deployment"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinserve",
        description="OpenAI-compatible clinical inference server.",
        epilog="Run `clinserve COMMAND --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        build_parser().parse_args(args)  # prints help or a usage error and exits
        return 2
    name, rest = args[0], args[1:]
    module = importlib.import_module(COMMANDS[name].module)
    parser = argparse.ArgumentParser(prog=f"clinserve {name}", description=COMMANDS[name].summary)
    module.add_arguments(parser)
    # A command whose options may follow its free-form arguments (`clinserve train sft
    # RECIPE key=value --check`) says so with INTERMIXED; argparse cannot do it with subparsers.
    intermixed = getattr(module, "INTERMIXED", False)
    parsed = parser.parse_intermixed_args(rest) if intermixed else parser.parse_args(rest)
    code: int = module.run(parsed)
    return code


if __name__ == "__main__":
    sys.exit(main())

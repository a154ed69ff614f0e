"""`clinserve train STAGE RECIPE.yaml [key=value ...]`: run one training stage from a recipe.

Stages: sft, cpt, reward, grpo, simpo, sample. The recipe and its data are checked before any
model loads (`--check` stops there), so a typo costs a second, not a model load. On success
one JSON object goes to stdout: the stage, what it wrote and what it measured. `--publish
NAME` hands the adapter to `clinserve adapters publish` (same settings and database as the
gateway), so running gateways load it; it runs as its own command, which keeps the training
package independent of the gateway's code.

Exit codes: 0 done, 2 a recipe, data or publishing refusal the user must fix (one line on
stderr), 1 anything else.

Only stdlib at module level: `cli.main` imports this module to build the parser.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
INTERMIXED = True  # options may come after the key=value overrides (see `cli.main`)
ADAPTER_STAGES = ("sft", "cpt", "grpo", "simpo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "stage", choices=("sft", "cpt", "reward", "grpo", "simpo", "sample"), help="what to run"
    )
    parser.add_argument("recipe", metavar="RECIPE.yaml", type=Path, help="the run's recipe")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override recipe settings, e.g. train.max_steps=5 lora.rank=8",
    )
    parser.add_argument(
        "--check", action="store_true", help="validate the recipe and its data, then stop"
    )
    parser.add_argument(
        "--publish",
        metavar="NAME",
        help="publish the adapter as the next version of NAME (sft, cpt, grpo, simpo)",
    )
    parser.add_argument(
        "--canary", type=int, metavar="PERCENT", help="with --publish: as a canary at PERCENT"
    )
    parser.add_argument(
        "--eval-gate",
        action="append",
        default=[],
        metavar="METRIC>=VALUE|FILE.yaml",
        help="with --publish: the evaluation gate (see `clinserve adapters publish --help`)",
    )


def run(args: argparse.Namespace) -> int:
    from training.recipe import RecipeError

    prefix = f"clinserve train {args.stage}"
    if (args.canary is not None or args.eval_gate) and not args.publish:
        print(f"{prefix}: error: --canary and --eval-gate go with --publish", file=sys.stderr)
        return EXIT_USAGE
    if args.publish and args.stage not in ADAPTER_STAGES:
        print(f"{prefix}: error: --publish applies to {', '.join(ADAPTER_STAGES)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        recipe = _load(args)
        if args.check:
            from training.stages import check

            print(json.dumps({"stage": args.stage, "check": check(recipe)}, indent=2))
            return 0
        from training.stages import run_stage

        with contextlib.redirect_stdout(sys.stderr):  # trainers print progress; stdout is JSON
            result = run_stage(recipe)
    except (RecipeError, ValueError, FileNotFoundError) as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.publish:
        published = _publish(Path(result["adapter"]), args.publish, args.canary, args.eval_gate)
        if published is None:
            return EXIT_USAGE
        result["published"] = published
    print(json.dumps(result, indent=2, default=str))
    return 0


def _load(args: argparse.Namespace) -> Any:
    from training.config import parse_recipe
    from training.recipe import apply_overrides, read_yaml

    data = apply_overrides(read_yaml(args.recipe), args.overrides)
    return parse_recipe(data, args.stage, args.recipe.resolve())


def _publish(
    adapter: Path, name: str, canary: int | None, gates: list[str]
) -> dict[str, Any] | None:
    """`clinserve adapters publish` on the new adapter; its JSON answer, None if refused.
    Its stderr is ours, so an evaluation gate's progress and refusal reach the user."""
    command = [sys.executable, "-m", "cli.main", "adapters", "publish", str(adapter)]
    command += ["--name", name] + ([] if canary is None else ["--canary", str(canary)])
    for gate in gates:
        command += ["--eval-gate", gate]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        print(f"clinserve train: the adapter stays in {adapter}", file=sys.stderr)
        return None
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer

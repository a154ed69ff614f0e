"""`clinserve eval mcq|robustness`: accuracy of any OpenAI-compatible endpoint on MCQ sets.

    clinserve eval mcq --base-url http://127.0.0.1:8000/v1 --api-key KEY --model NAME \\
        --dataset medqa.jsonl [--dataset jmed.jsonl] [--limit 200] [--seed 0] --out DIR
    clinserve eval robustness ... [--modes off,annotate,normalize] [--severities light,heavy]
    clinserve eval gate --config gate.yaml --candidate med@5 --reference med@4

The key may come from CLINSERVE_EVAL_API_KEY or OPENAI_API_KEY instead of the command line
(where other users of the machine can read it). Results go to DIR (see `evaluation.runs`);
the summary is printed as JSON on stdout. Exit 0 when every item got an answer; 1 when some
requests failed (their items count as wrong; run the same command again to retry just
those); 2 for what the user must fix (a dataset, an unknown model, a bad option); `gate`
exits 3 when it refuses the candidate (its verdict is on stdout either way).

Only stdlib at module level: `cli.main` imports this module to build the parser.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

KEY_VARIABLES = ("CLINSERVE_EVAL_API_KEY", "OPENAI_API_KEY")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    mcq = sub.add_parser("mcq", help="accuracy with 95% intervals, overall and per source")
    _common(mcq)
    robustness = sub.add_parser(
        "robustness", help="the same items clean and perturbed, per gateway intake mode"
    )
    _common(robustness)
    robustness.add_argument(
        "--modes",
        default="off,annotate,normalize",
        help="gateway intake modes, comma-separated (a bare vLLM worker: off)",
    )
    robustness.add_argument(
        "--severities", default="light,moderate,heavy", help="synthesizer severities"
    )
    robustness.add_argument(
        "--no-dialogue",
        action="store_true",
        help="leave out JMED's patient-dialogue variant",
    )
    gate = sub.add_parser(
        "gate",
        help="compare an adapter version with the one it would replace (exit 3: refused)",
        description="Evaluate CANDIDATE and REFERENCE on the same items as a gate config says; "
        "print the verdict as JSON. `clinserve adapters publish --eval-gate FILE` runs this.",
    )
    gate.add_argument("--config", required=True, type=Path, metavar="FILE", help="gate YAML")
    gate.add_argument("--candidate", required=True, metavar="MODEL", help="e.g. med@5")
    gate.add_argument("--reference", required=True, metavar="MODEL", help="e.g. med@4")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", required=True, help="the OpenAI base URL, ending in /v1")
    parser.add_argument("--api-key", help=f"else ${KEY_VARIABLES[0]} or ${KEY_VARIABLES[1]}")
    parser.add_argument("--model", required=True, help="the model (or adapter alias) to ask")
    parser.add_argument(
        "--dataset", action="append", required=True, type=Path, metavar="FILE",
        help="an MCQ JSONL file (repeatable)",
    )  # fmt: skip
    parser.add_argument("--limit", type=_positive, help="a seeded subset of this many items")
    parser.add_argument("--seed", type=int, default=0, help="subset and option-order seed")
    parser.add_argument(
        "--no-shuffle", action="store_true", help="keep the file's option order (biased sets!)"
    )
    parser.add_argument(
        "--scoring",
        choices=("generate", "logprobs"),
        default="generate",
        help="read the answer text, or take the likeliest letter of one token's logprobs",
    )
    parser.add_argument("--max-tokens", type=_positive, default=512)
    parser.add_argument("--system-prompt", help="a system message before each question")
    parser.add_argument(
        "--intake",
        choices=("off", "annotate", "normalize"),
        help="our gateway's intake mode for every request (mcq only; default: the gateway's)",
    )
    parser.add_argument(
        "--retrieval",
        choices=("on", "off"),
        help="our gateway's guideline retrieval (default: the gateway's; leave both --intake "
        "and --retrieval unset for an endpoint that is not clinserve)",
    )
    parser.add_argument("--concurrency", type=_positive, default=4)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=4)
    parser.add_argument("--no-cache", action="store_true", help="ask everything again")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plot")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    import asyncio

    from evaluation.items import DatasetError
    from evaluation.runs import RunError, evaluate_mcq, evaluate_robustness

    if args.action == "gate":
        return _gate(args)
    try:
        spec = _spec(args)
        if args.action == "mcq":
            summary = asyncio.run(evaluate_mcq(spec))
        else:
            summary = asyncio.run(evaluate_robustness(spec, _plan(args)))
    except (DatasetError, RunError, ValueError) as exc:
        print(f"clinserve eval {args.action}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(_headline(summary), indent=2, ensure_ascii=False))
    errors = _errors(summary)
    if errors:
        print(
            f"clinserve eval {args.action}: {errors} requests failed and count as wrong; "
            "run the same command again to retry them (the other answers are cached)",
            file=sys.stderr,
        )
        return 1
    return 0


def _gate(args: argparse.Namespace) -> int:
    import asyncio

    from evaluation.gate import load_gate, run_gate
    from evaluation.items import DatasetError
    from evaluation.runs import RunError

    try:
        config, base = load_gate(args.config)
        verdict = asyncio.run(run_gate(config, base, args.candidate, args.reference))
    except (DatasetError, RunError) as exc:
        print(f"clinserve eval gate: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(verdict.to_json(), indent=2, ensure_ascii=False))
    return 0 if verdict.passed else 3


def _spec(args: argparse.Namespace) -> Any:
    from evaluation.endpoint import Endpoint
    from evaluation.mcq import AskSettings
    from evaluation.runs import RunSpec

    api_key = args.api_key or next(
        (os.environ[name] for name in KEY_VARIABLES if os.environ.get(name)), None
    )
    clinical: dict[str, Any] = {}  # sent only when asked for: other providers refuse extras
    if args.retrieval:
        clinical["retrieval"] = args.retrieval == "on"
    if args.action == "mcq" and args.intake:
        clinical["intake"] = args.intake
    endpoint = Endpoint(
        base_url=args.base_url,
        api_key=api_key,
        model=args.model,
        timeout_s=args.timeout,
        max_retries=args.retries,
        concurrency=args.concurrency,
    )
    return RunSpec(
        endpoint=endpoint,
        datasets=tuple(args.dataset),
        out=args.out,
        limit=args.limit,
        seed=args.seed,
        shuffle=not args.no_shuffle,
        ask=AskSettings(
            scoring=args.scoring,
            max_tokens=args.max_tokens,
            system_prompt=args.system_prompt,
            clinical=clinical or None,
        ),
        cache=not args.no_cache,
        plots=not args.no_plots,
        progress=True,
        command=_command_line(args),
    )


def _plan(args: argparse.Namespace) -> Any:
    from evaluation.robustness import MODES, SEVERITIES, RobustnessPlan

    modes = _choices(args.modes, MODES, "--modes")
    severities = _choices(args.severities, SEVERITIES, "--severities")
    return RobustnessPlan(
        modes=modes,
        severities=severities,  # type: ignore[arg-type]
        dialogue=not args.no_dialogue,
        seed=args.seed,
    )


def _choices(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [part for part in chosen if part not in allowed]
    if unknown or not chosen:
        raise ValueError(f"{option}: choose from {', '.join(allowed)} (got {text!r})")
    return chosen


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, rebuilt from its options (the API key masked:
    results.json is shared)."""
    words = ["clinserve", "eval", args.action]
    for name, value in vars(args).items():
        if name in ("action", "command") or value is None or value is False:
            continue
        option = "--" + name.replace("_", "-")
        if name == "api_key":
            value = "***"
        for one in value if isinstance(value, list) else [value]:
            words.extend([option] if one is True else [option, str(one)])
    return shlex.join(words).replace("'***'", "***")


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    keys: tuple[str, ...] = (
        "kind", "model", "n", "accuracy", "ci95", "invalid_rate", "errors", "by_source",
    )  # fmt: skip
    if summary["kind"] == "robustness":
        keys = ("kind", "model", "n_items", "conditions", "drops")
    return {key: summary[key] for key in keys if key in summary}


def _errors(summary: dict[str, Any]) -> int:
    if summary["kind"] == "robustness":
        return sum(int(condition["errors"]) for condition in summary["conditions"])
    return int(summary["errors"])

"""`clinserve intake`: the intake analysis from the command line, one message or a JSONL file.

Reads one message on stdin and prints its analysis as JSON, or with `--jsonl FILE --field
NAME` prints one result per input line, in input order (a line that cannot be analysed
yields {"error": ...} in its place, so outputs stay aligned with inputs).

`--engine model|hybrid` asks an OpenAI-compatible server (`--url`, default a local
clinserve gateway) for the analysis under a JSON schema; see `perturbation.model_engine`.
Unlike the gateway, the command does not fall back to the rules when the model fails: the
user asked for the model, so a failure is reported (exit 1, or an error line per input).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from perturbation.engine import ENGINES, IntakeEngine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=["auto", "en", "zh"], default="auto")
    parser.add_argument("--engine", choices=ENGINES, default="rules", help="analysis engine")
    parser.add_argument("--jsonl", metavar="FILE", help="process a JSONL file instead of stdin")
    parser.add_argument("--field", default="text", help="the text field of each JSONL line")
    model = parser.add_argument_group("model and hybrid engines")
    model.add_argument(
        "--url",
        default=os.environ.get("CLINSERVE_INTAKE_URL", "http://127.0.0.1:8000/v1"),
        help="OpenAI-compatible base URL (default $CLINSERVE_INTAKE_URL or a local gateway)",
    )
    model.add_argument(
        "--model", default=os.environ.get("CLINSERVE_INTAKE_MODEL", "qwen2.5-coder-0.5b-instruct")
    )
    model.add_argument("--api-key-env", default="CLINSERVE_API_KEY", metavar="VAR",
                       help="environment variable holding the API key (never on argv)")  # fmt: skip
    model.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS")
    model.add_argument("--max-tokens", type=int, default=1024)


def _engine(args: argparse.Namespace) -> IntakeEngine:
    from perturbation.engine import RulesEngine, build_engine

    if args.engine == "rules":
        return RulesEngine()
    from perturbation.model_client import http_completer

    complete = http_completer(
        args.url, args.model, os.environ.get(args.api_key_env), args.timeout, args.max_tokens
    )
    return build_engine(args.engine, RulesEngine(), complete)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from perturbation.model_engine import ModelEngineError

    engine = _engine(args)
    language = None if args.lang == "auto" else args.lang
    if args.jsonl is None:
        text = sys.stdin.read()
        if not text.strip():
            print("clinserve intake: no text on stdin", file=sys.stderr)
            return 2
        try:
            result = await engine.analyze_async(text, language)
        except ModelEngineError as exc:
            print(f"clinserve intake: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return 0
    try:
        lines = open(args.jsonl, encoding="utf-8")
    except OSError as exc:
        print(f"clinserve intake: {exc}", file=sys.stderr)
        return 1
    with lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            output: dict[str, Any]
            try:
                text = json.loads(line)[args.field]
                if not isinstance(text, str):
                    raise TypeError(f"field {args.field!r} is not a string")
                output = (await engine.analyze_async(text, language)).to_json()
            except (ValueError, KeyError, TypeError, ModelEngineError) as exc:
                output = {"error": f"line {number}: {type(exc).__name__}: {exc}"}
            print(json.dumps(output, ensure_ascii=False))
    return 0

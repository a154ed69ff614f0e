"""`clinserve intake`: the intake analysis from the command line, one message or a JSONL file.

Reads one message on stdin and prints its analysis as JSON, or with `--jsonl FILE --field
NAME` prints one result per input line, in input order (a line that cannot be analysed
yields {"error": ...} in its place, so outputs stay aligned with inputs).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=["auto", "en", "zh"], default="auto")
    parser.add_argument(
        "--engine", choices=["rules"], default="rules", help="analysis engine (rules)"
    )
    parser.add_argument("--jsonl", metavar="FILE", help="process a JSONL file instead of stdin")
    parser.add_argument("--field", default="text", help="the text field of each JSONL line")


def run(args: argparse.Namespace) -> int:
    from perturbation.engine import RulesEngine

    engine = RulesEngine()
    language = None if args.lang == "auto" else args.lang
    if args.jsonl is None:
        text = sys.stdin.read()
        if not text.strip():
            print("clinserve intake: no text on stdin", file=sys.stderr)
            return 2
        print(json.dumps(engine.analyze(text, language).to_json(), ensure_ascii=False))
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
            result: dict[str, Any]
            try:
                text = json.loads(line)[args.field]
                if not isinstance(text, str):
                    raise TypeError(f"field {args.field!r} is not a string")
                result = engine.analyze(text, language).to_json()
            except (ValueError, KeyError, TypeError) as exc:
                result = {"error": f"line {number}: {type(exc).__name__}: {exc}"}
            print(json.dumps(result, ensure_ascii=False))
    return 0

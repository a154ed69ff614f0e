"""Run the evaluation gate on a staged version and act on its verdict.

The gateway package never imports the evaluation package (it pulls in the synthesizer and
training's prompt code), so the gate runs as `clinserve eval gate` in a subprocess and
answers with its verdict as JSON, the same contract an operator sees. A refused version is
retired (unloaded from the workers) and its verdict recorded, so `promote` refuses it later
too; a passed version stays staged, or becomes the canary it was published as.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from server.adapters.inspect import AdapterRefused
from server.adapters.registry import AdapterRegistry, AdapterVersion

REFUSED_EXIT = 3  # `clinserve eval gate`: a verdict was reached and it is no


def is_gate_config(text: str) -> bool:
    """`--eval-gate` takes `METRIC>=VALUE` or a gate config file."""
    return text.strip().endswith((".yaml", ".yml"))


def gate_version(
    registry: AdapterRegistry,
    version: AdapterVersion,
    config: Path,
    reference: str,
    canary_percent: int | None = None,
) -> AdapterVersion:
    """Evaluate staged `version` against `reference`; returns the version after the verdict,
    or raises `AdapterRefused` (the version is then retired)."""
    name, number = version.name, version.version
    try:
        verdict = run_gate(config, version.served_name, reference)
    except AdapterRefused:
        registry.retire(name, number)
        raise
    registry.record_evaluation(name, number, evaluation_of(verdict))
    if not verdict["passed"]:
        registry.retire(name, number)
        raise AdapterRefused(
            f"evaluation gate refused {version.served_name}: {verdict['reason']}; "
            "it is retired and cannot be promoted"
        )
    if canary_percent is not None:
        return registry.set_canary(name, number, canary_percent)
    return registry.get(name, number)


def run_gate(config: Path, candidate: str, reference: str) -> dict[str, Any]:
    """The verdict of `clinserve eval gate`; `AdapterRefused` when it could not decide."""
    if not config.is_file():
        raise AdapterRefused(f"evaluation gate config {config} does not exist")
    command = [
        sys.executable, "-m", "cli.main", "eval", "gate",
        "--config", str(config), "--candidate", candidate, "--reference", reference,
    ]  # fmt: skip
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode not in (0, REFUSED_EXIT):
        raise AdapterRefused(
            f"evaluation gate could not run (exit {done.returncode}; its error is above); "
            f"{candidate} is retired"
        )
    verdict: dict[str, Any] = json.loads(done.stdout)
    return verdict


def evaluation_of(verdict: dict[str, Any]) -> dict[str, float]:
    """The verdict as the manifest's `evaluation` numbers (what `METRIC>=VALUE` gates read)."""
    candidate, reference = verdict["candidate"], verdict["reference"]
    evaluation = {
        "accuracy": float(candidate["accuracy"]),
        "gate_reference_accuracy": float(reference["accuracy"]),
        "gate_drop_points": float(verdict["drop_points"]),
        "gate_passed": 1.0 if verdict["passed"] else 0.0,
    }
    for source, numbers in candidate.get("by_source", {}).items():
        evaluation[f"{source}_accuracy"] = float(numbers["accuracy"])
    return evaluation

"""The adapter evaluation gate: a candidate version must not be worse than what it replaces.

`clinserve adapters publish DIR --name med --eval-gate gate.yaml` stages the new version
(loaded on the workers, not routed), then runs `clinserve eval gate`, which asks the same
seeded items of the configured sets of the candidate (`med@5`) and of the reference (the
active `med@4`, or the base model when nothing is active yet) through the running gateway,
and passes when the candidate's accuracy is no more than `max_drop_points` below the
reference's. The comparison is of point estimates on the same items, with the paired
interval reported beside it: the margin is the operator's tolerance for noise, set with
the interval's width in view (about ±7 points at 200 items).

A gate config is a YAML file, checked as strictly as a training recipe:

    base_url: http://127.0.0.1:8000/v1
    api_key: ${CLINSERVE_EVAL_API_KEY}
    datasets: [/data/benchmarks/medqa.jsonl]   # relative paths: to this file's folder
    limit: 200
    max_drop_points: 2.0
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from evaluation.endpoint import Endpoint, EndpointClient, EndpointError
from evaluation.mcq import AskSettings
from evaluation.runs import RunError, RunSpec, evaluate_mcq
from evaluation.stats import paired_drop
from training.recipe import RecipeError, build, expand_env, read_yaml


@dataclass(frozen=True)
class GateConfig:
    base_url: str
    datasets: list[str]
    api_key: str | None = None
    limit: int | None = 200
    seed: int = 0
    max_drop_points: float = 2.0
    scoring: Literal["generate", "logprobs"] = "generate"
    max_tokens: int = 512
    system_prompt: str | None = None
    clinical: dict[str, Any] = field(
        default_factory=lambda: {"intake": "off", "retrieval": False}
    )  # the model is gated, not the gateway's context around it
    concurrency: int = 4
    timeout_s: float = 300.0
    ready_timeout_s: float = 600.0
    out: str = "runs/eval-gate"

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ValueError("datasets: name at least one MCQ file")
        if self.max_drop_points < 0:
            raise ValueError("max_drop_points must be 0 or more")


def load_gate(path: Path) -> tuple[GateConfig, Path]:
    """The config and the folder its relative dataset paths are read from."""
    try:
        config = build(GateConfig, expand_env(read_yaml(path)), "")
    except RecipeError as exc:
        raise RunError(f"{path}: {exc}") from None
    return config, path.resolve().parent


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    candidate: dict[str, Any]
    reference: dict[str, Any]
    drop_points: float
    drop_ci95: tuple[float, float]
    max_drop_points: float

    def reason(self) -> str:
        return (
            f"{self.candidate['model']} scores {100 * self.candidate['accuracy']:.1f}% against "
            f"{self.reference['model']}'s {100 * self.reference['accuracy']:.1f}% on the same "
            f"{self.candidate['n']} items: {self.drop_points:+.1f} points "
            f"(paired 95% CI {self.drop_ci95[0]:+.1f} to {self.drop_ci95[1]:+.1f}; "
            f"allowed drop {self.max_drop_points:g})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason(),
            "candidate": self.candidate,
            "reference": self.reference,
            "drop_points": self.drop_points,
            "drop_ci95": list(self.drop_ci95),
            "max_drop_points": self.max_drop_points,
        }


async def run_gate(
    config: GateConfig,
    base: Path,
    candidate: str,
    reference: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GateVerdict:
    """Wait until the endpoint serves `candidate`, then evaluate it and `reference`."""
    await wait_until_served(config, candidate, transport)
    runs = {}
    for role, model in (("candidate", candidate), ("reference", reference)):
        spec = _spec(config, base, model, Path(config.out) / model.replace("/", "_"))
        summary = await evaluate_mcq(spec, transport)
        correct = _correct_by_item(spec.out / "items.jsonl")
        runs[role] = (summary, correct)
    (cand, cand_correct), (ref, ref_correct) = runs["candidate"], runs["reference"]
    shared = sorted(set(cand_correct) & set(ref_correct))
    drop = paired_drop([ref_correct[i] for i in shared], [cand_correct[i] for i in shared])
    errors = int(cand["errors"]) + int(ref["errors"])
    if errors:
        raise RunError(f"{errors} evaluation requests failed; the gate cannot decide")
    return GateVerdict(
        passed=drop.points <= config.max_drop_points,
        candidate=_brief(cand),
        reference=_brief(ref),
        drop_points=drop.points,
        drop_ci95=drop.ci95,
        max_drop_points=config.max_drop_points,
    )


async def wait_until_served(
    config: GateConfig, model: str, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """Poll `/v1/models` until `model` is listed (the reconciler loads a staged version
    within a pass or two); `RunError` after `ready_timeout_s`."""
    endpoint = Endpoint(config.base_url, config.api_key, model, timeout_s=30.0)
    deadline = time.monotonic() + config.ready_timeout_s
    async with EndpointClient(endpoint, transport=transport) as client:
        while True:
            try:
                if model in await client.models():
                    return
            except EndpointError as exc:
                raise RunError(f"cannot list the models at {config.base_url}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise RunError(
                    f"{model} was not served at {config.base_url} within "
                    f"{config.ready_timeout_s:g} s; is the gateway running against this registry?"
                )
            await asyncio.sleep(1.0)


def _spec(config: GateConfig, base: Path, model: str, out: Path) -> RunSpec:
    return RunSpec(
        endpoint=Endpoint(
            config.base_url,
            config.api_key,
            model,
            timeout_s=config.timeout_s,
            concurrency=config.concurrency,
        ),
        datasets=tuple(base / dataset for dataset in config.datasets),
        out=out,
        limit=config.limit,
        seed=config.seed,
        ask=AskSettings(
            scoring=config.scoring,
            max_tokens=config.max_tokens,
            system_prompt=config.system_prompt,
            clinical=config.clinical or None,
        ),
        plots=False,
        command=f"clinserve eval gate ({model})",
    )


def _correct_by_item(path: Path) -> dict[str, bool]:
    import json

    with path.open(encoding="utf-8") as handle:
        return {row["id"]: bool(row["correct"]) for row in map(json.loads, handle)}


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("model", "n", "accuracy", "ci95", "invalid_rate", "by_source")
    return {key: summary[key] for key in keys}

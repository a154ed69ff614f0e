"""A whole evaluation run: items chosen and shuffled, asked through the endpoint, written out.

Everything a run writes lands in its output folder: `results.json` (the numbers),
`items.jsonl` (every item's answer, so an extraction can be audited), `report.md`, a PNG plot
and `cache.jsonl` (the endpoint's responses, which makes a stopped run resumable: run the
same command again). The cache key covers the endpoint, model and exact request, so a
changed prompt, model or option order is asked afresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from evaluation.cache import ResponseCache
from evaluation.endpoint import Endpoint, EndpointClient, EndpointError
from evaluation.items import McqItem, choose, load_many, shuffle_options
from evaluation.mcq import Asker, AskSettings, ItemResult, summarise
from evaluation.robustness import RobustnessPlan, run_robustness, summarise_robustness


class RunError(Exception):
    """The run cannot start (model not served, endpoint unreachable); nothing was scored."""


@dataclass(frozen=True)
class RunSpec:
    """What to ask and where the answers go."""

    endpoint: Endpoint
    datasets: tuple[Path, ...]
    out: Path
    limit: int | None = None
    seed: int = 0
    shuffle: bool = True
    ask: AskSettings = field(default_factory=AskSettings)
    cache: bool = True
    plots: bool = True
    progress: bool = False
    command: str = ""

    def items(self) -> list[McqItem]:
        chosen = choose(load_many(self.datasets), self.limit, self.seed)
        return [shuffle_options(item, self.seed) for item in chosen] if self.shuffle else chosen

    def header(self) -> dict[str, Any]:
        return {
            "model": self.endpoint.model,
            "base_url": self.endpoint.base_url,
            "datasets": [str(path) for path in self.datasets],
            "seed": self.seed,
            "limit": self.limit,
            "shuffle": self.shuffle,
            "scoring": self.ask.scoring,
            "clinical": None if self.ask.clinical is None else dict(self.ask.clinical),
        }


async def evaluate_mcq(
    spec: RunSpec, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """Ask every item once; write and return the results."""
    items = spec.items()
    started = _now()
    async with _asker(spec, transport) as asker:
        results = await asker.ask_all(items, spec.ask)
    summary = {"kind": "mcq", **spec.header(), **summarise(results), "from_cache": asker.from_cache}
    _finish(spec, summary, started)
    _write_items(spec.out / "items.jsonl", results)
    _write_report(spec, summary)
    return summary


async def evaluate_robustness(
    spec: RunSpec, plan: RobustnessPlan, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """Ask every item in every variant under every mode; write and return the results."""
    items = spec.items()
    started = _now()
    async with _asker(spec, transport) as asker:
        outcomes = await run_robustness(asker, items, plan, spec.ask)
    summary = {
        "kind": "robustness",
        **spec.header(),
        "n_items": len(items),
        **summarise_robustness(outcomes, plan),
        "from_cache": asker.from_cache,
    }
    _finish(spec, summary, started)
    rows = [
        {"mode": mode, "variant": variant, **result.to_json()}
        for (mode, variant), results in outcomes.items()
        for result in results
    ]
    _write_jsonl(spec.out / "items.jsonl", rows)
    _write_report(spec, summary)
    return summary


@asynccontextmanager
async def _asker(spec: RunSpec, transport: httpx.AsyncBaseTransport | None) -> AsyncIterator[Asker]:
    """The endpoint client and cache for one run, the model checked before any item is asked."""
    spec.out.mkdir(parents=True, exist_ok=True)
    async with EndpointClient(spec.endpoint, transport=transport) as client:
        await _check_model(client, spec.endpoint)
        with ResponseCache(spec.out / "cache.jsonl" if spec.cache else None) as cache:
            yield Asker(client, cache, progress=spec.progress)


async def _check_model(client: EndpointClient, endpoint: Endpoint) -> None:
    try:
        served = await client.models()
    except EndpointError as exc:
        raise RunError(f"cannot list the models at {endpoint.base_url}: {exc}") from exc
    if endpoint.model not in served:
        listing = ", ".join(sorted(served)[:20]) or "none"
        raise RunError(
            f"model {endpoint.model!r} is not served at {endpoint.base_url} (it serves: {listing})"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _finish(spec: RunSpec, summary: dict[str, Any], started: datetime) -> None:
    finished = _now()
    summary.update(
        started_at=started.isoformat(timespec="seconds"),
        finished_at=finished.isoformat(timespec="seconds"),
        duration_s=round((finished - started).total_seconds(), 1),
        command=spec.command,
    )
    path = spec.out / "results.json"
    temporary = path.with_suffix(f".tmp{time.monotonic_ns()}")
    temporary.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
    temporary.replace(path)


def _write_items(path: Path, results: Sequence[ItemResult]) -> None:
    _write_jsonl(path, [result.to_json() for result in results])


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_report(spec: RunSpec, summary: dict[str, Any]) -> None:
    from evaluation.report import mcq_markdown, robustness_markdown

    robustness = summary["kind"] == "robustness"
    markdown = robustness_markdown(summary) if robustness else mcq_markdown(summary)
    (spec.out / "report.md").write_text(markdown, "utf-8")
    if spec.plots:
        from evaluation.plots import plot_mcq, plot_robustness

        if robustness:
            plot_robustness(summary, spec.out / "robustness.png")
        else:
            plot_mcq(summary, spec.out / "accuracy.png")

"""One query's embed + hybrid search on one intra-op thread against all of them, side by side.

    python -m benchmarks.embed_threads [--queries 60] [--no-record]

The gateway embeds each chat request's retrieval query alone (`Embedder._embed_one`), and
`EmbedderSpec.single_text_threads` decides how many torch threads that forward pass may use:
1 by default. This measures why, on the machine at hand: the same 100-word queries (PubMedQA
questions followed by words of their long answers) over the sample guideline index, with
1 thread and with torch's default, first on a quiet machine and then next to one process
that keeps a core busy (what another request's intake analysis, a batch embedding, or any
neighbour on a shared host does). The settings alternate query by query, so both see the
same machine; the CPU model and its vector extensions are recorded because they decide the
absolute figures (an AVX2-only core does about a quarter of what one with AVX512-BF16 does).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from benchmarks.machine import cpu_description
from benchmarks.markdown import publish, table
from benchmarks.retrieval import PUBMEDQA, hundred_word_queries, load_items
from retrieval.documents import load_corpus
from retrieval.embedder import Embedder, EmbedderSpec
from retrieval.index import build_index
from retrieval.search import Retriever

ROOT = Path(__file__).resolve().parents[1]


def _spin() -> None:
    while True:
        pass


@contextmanager
def one_busy_core() -> Iterator[None]:
    """A process that keeps one core busy while the block runs."""
    process = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    process.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        process.terminate()
        process.join()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered),
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
    }


def compare(retrievers: dict[str, Retriever], queries: list[str]) -> dict[str, dict[str, float]]:
    """Each query searched once per setting, settings alternating, after a warm-up."""
    for retriever in retrievers.values():
        for query in queries[:5]:
            retriever.search(query, 4, "hybrid")
    samples: dict[str, list[float]] = {name: [] for name in retrievers}
    for query in queries:
        for name, retriever in retrievers.items():
            start = time.perf_counter()
            retriever.search(query, 4, "hybrid")
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: percentiles(found) for name, found in samples.items()}


def render(results: dict[str, Any]) -> str:
    rows = []
    for condition, by_setting in results["conditions"].items():
        one, every = by_setting["1 thread"], by_setting[results["default_label"]]
        rows.append(
            [
                condition,
                f"{one['p50_ms']:.1f} / {one['p95_ms']:.1f}",
                f"{every['p50_ms']:.1f} / {every['p95_ms']:.1f}",
                f"{every['p50_ms'] / one['p50_ms']:.2f}",
            ]
        )
    return "\n".join(
        [
            "## One query's embed + search: one thread or all",
            "",
            f"Run {results['date']} on {results['cpu']}; torch {results['torch']}, precision "
            f"{results['precision']}; {results['queries']} queries of 100 words, embed + "
            f"hybrid search (k=4) over the sample guideline index ({results['chunks']} chunks).",
            "",
            *table(
                [
                    "machine",
                    "1 thread p50 / p95 (ms)",
                    f"{results['default_label']} p50 / p95 (ms)",
                    "p50 ratio (all / 1)",
                ],
                rows,
            ),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    default_label = f"{default_threads} threads (torch default)"
    embedders = {
        "1 thread": Embedder(EmbedderSpec(single_text_threads=1)),
        default_label: Embedder(EmbedderSpec(single_text_threads=None)),
    }
    documents, _ = load_corpus([ROOT / "data" / "guidelines"])
    folder = Path(tempfile.mkdtemp(prefix="guidelines-index-")) / "index"
    index = build_index(documents, embedders["1 thread"], folder)
    retrievers = {name: Retriever(index, embedder) for name, embedder in embedders.items()}
    queries = hundred_word_queries(load_items(PUBMEDQA), args.queries)
    conditions = {"quiet": compare(retrievers, queries)}
    with one_busy_core():
        conditions["one core kept busy by another process"] = compare(retrievers, queries)
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_description(),
        "torch": torch.__version__,
        "precision": embedders["1 thread"].precision,
        "queries": len(queries),
        "chunks": len(index),
        "default_label": default_label,
        "conditions": conditions,
    }
    publish("embed_threads", results, render(results), args.out, record=not args.no_record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

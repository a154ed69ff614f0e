"""One query's embed + hybrid search, its tokens padded to a multiple of 16 or not.

    python -m benchmarks.embed_padding [--queries 200] [--no-record]

`EmbedderSpec.single_text_pad_to` pads the one text the gateway embeds per chat request with
masked tokens to a multiple of 16 where attention runs in bfloat16, because PyTorch's fused
CPU attention is much slower there at some sequence lengths than at the next multiple of 16.
This measures what that buys and costs on the machine at hand, for each precision the
machine runs (bfloat16 linears where the CPU has them, float32 always): the same 100-word
queries (PubMedQA questions followed by words of their long answers, 112-223 tokens) over
the sample guideline index, the settings alternating query by query, on one intra-op thread
as the gateway runs them. It also records how far padding moves the vectors (minimum cosine
against the unpadded ones).
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.embed_threads import ROOT, compare
from benchmarks.machine import cpu_description
from benchmarks.markdown import publish, table
from benchmarks.retrieval import PUBMEDQA, hundred_word_queries, load_items
from retrieval.bf16 import cpu_has_native_bf16
from retrieval.documents import load_corpus
from retrieval.embedder import BF16_ATTENTION_PAD, Embedder, EmbedderSpec
from retrieval.index import build_index
from retrieval.search import Retriever

PAD = BF16_ATTENTION_PAD


def embedders() -> dict[tuple[str, str], Embedder]:
    """(precision, padding) -> embedder, for each precision this CPU runs natively."""
    precisions = {"float32": False}
    if cpu_has_native_bf16():
        precisions = {"bfloat16 linears": True, **precisions}
    return {
        (name, padding): Embedder(EmbedderSpec(bf16=bf16, single_text_pad_to=pad))
        for name, bf16 in precisions.items()
        for padding, pad in (("unpadded", 0), (f"padded to {PAD}", PAD))
    }


def render(results: dict[str, Any]) -> str:
    rows = []
    for precision, by_padding in results["precisions"].items():
        plain, padded = by_padding["unpadded"], by_padding[f"padded to {PAD}"]
        rows.append(
            [
                precision,
                f"{plain['p50_ms']:.1f} / {plain['p95_ms']:.1f}",
                f"{padded['p50_ms']:.1f} / {padded['p95_ms']:.1f}",
                f"{padded['p50_ms'] / plain['p50_ms']:.2f} / "
                f"{padded['p95_ms'] / plain['p95_ms']:.2f}",
                f"{by_padding['min_cosine']:.6f}",
            ]
        )
    tokens = results["tokens"]
    return "\n".join(
        [
            f"## One query's embed + search: padded to a multiple of {PAD} tokens or not",
            "",
            f"Run {results['date']} on {results['cpu']}; torch {results['torch']}; "
            f"{results['queries']} queries of 100 words ({tokens['min']}-{tokens['max']} "
            f"tokens, median {tokens['median']}), embed + hybrid search (k=4) over the sample "
            f"guideline index ({results['chunks']} chunks), one intra-op thread.",
            "",
            *table(
                [
                    "precision",
                    "unpadded p50 / p95 (ms)",
                    f"padded to {PAD} p50 / p95 (ms)",
                    "ratio p50 / p95 (padded / unpadded)",
                    "min cosine padded vs unpadded",
                ],
                rows,
            ),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    by_setting = embedders()
    first = next(iter(by_setting.values()))
    documents, _ = load_corpus([ROOT / "data" / "guidelines"])
    index = build_index(documents, first, Path(tempfile.mkdtemp(prefix="guidelines-")) / "index")
    queries = hundred_word_queries(load_items(PUBMEDQA), args.queries)
    lengths = sorted(first.count_tokens([query]) for query in queries)
    precisions: dict[str, dict[str, Any]] = {}
    for precision in dict.fromkeys(name for name, _ in by_setting):
        pair = {padding: e for (name, padding), e in by_setting.items() if name == precision}
        measured: dict[str, Any] = compare(
            {padding: Retriever(index, e) for padding, e in pair.items()}, queries
        )
        vectors = [np.concatenate([e.embed_queries([q]) for q in queries]) for e in pair.values()]
        measured["min_cosine"] = float((vectors[0] * vectors[1]).sum(axis=1).min())
        precisions[precision] = measured
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_description(),
        "torch": torch.__version__,
        "queries": len(queries),
        "tokens": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1]},
        "chunks": len(index),
        "precisions": precisions,
    }
    publish("embed_padding", results, render(results), args.out, record=not args.no_record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`clinserve index build|search|info`: guideline indexes from the command line.

    clinserve index build --corpus data/guidelines --out INDEX
    clinserve index search --index INDEX [--k 5] [--mode dense|bm25|hybrid] "query"
    clinserve index search --index INDEX --queries queries.jsonl   # {"id", "query"} per line
    clinserve index info INDEX

Search prints JSON (one object for a query; one line per query, in input order, for a
batch). Files the build cannot read are listed on stderr and skipped; an empty corpus or an
index built with another embedder is an error (exit 1) with one line saying why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_ERROR = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="ingest, chunk, embed and index a corpus")
    build.add_argument("--corpus", nargs="+", required=True, type=Path, metavar="PATH")
    build.add_argument("--out", required=True, type=Path, metavar="DIR")
    build.add_argument("--max-tokens", type=int, default=200)
    build.add_argument("--overlap-tokens", type=int, default=40)
    build.add_argument("--hnsw-threshold", type=int, default=20_000,
                       help="chunks above which the dense index is HNSW, not exact")  # fmt: skip
    build.add_argument("--quiet", action="store_true")
    _embedder_options(build)

    search = sub.add_parser("search", help="search an index (JSON out)")
    search.add_argument("--index", required=True, type=Path, metavar="DIR")
    search.add_argument("--k", type=int, default=5)
    search.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid")
    search.add_argument("--queries", type=Path, metavar="FILE", help='JSONL {"id", "query"}')
    search.add_argument("query", nargs="?")
    _embedder_options(search)

    info = sub.add_parser("info", help="print an index's manifest")
    info.add_argument("index", type=Path, metavar="DIR")


def _embedder_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("embedder")
    group.add_argument("--embedder", metavar="PATH", help="sentence-transformers model folder "
                       "(default: the packaged all-MiniLM-L6-v2)")  # fmt: skip
    group.add_argument("--query-instruction", metavar="TEXT")
    group.add_argument("--passage-instruction", metavar="TEXT")


def run(args: argparse.Namespace) -> int:
    from retrieval.embedder import EmbedderError
    from retrieval.manifest import IndexUnusable

    try:
        if args.action == "build":
            return _build(args)
        if args.action == "search":
            return _search(args)
        return _info(args)
    except (EmbedderError, IndexUnusable, ValueError, OSError) as exc:
        print(f"clinserve index: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _embedder(args: argparse.Namespace) -> Any:
    from retrieval.embedder import Embedder, EmbedderSpec

    return Embedder(EmbedderSpec(args.embedder, args.query_instruction, args.passage_instruction))


def _build(args: argparse.Namespace) -> int:
    from retrieval.documents import load_corpus
    from retrieval.index import IndexOptions, build_index

    documents, problems = load_corpus(args.corpus)
    for problem in problems:
        print(f"skipped {problem.path}: {problem.reason}", file=sys.stderr)
    options = IndexOptions(args.max_tokens, args.overlap_tokens, args.hnsw_threshold)
    index = build_index(documents, _embedder(args), args.out, options, progress=not args.quiet)
    m = index.manifest
    print(
        f"indexed {m.documents} documents as {m.chunks} chunks "
        f"({m.duplicates_dropped} duplicates dropped, {len(problems)} files skipped) "
        f"into {index.folder} [{m.dense['kind']}, {m.embedder['name']}]",
        file=sys.stderr,
    )
    return 0


def _search(args: argparse.Namespace) -> int:
    from retrieval.index import load_index
    from retrieval.search import Retriever

    if (args.query is None) == (args.queries is None):
        print("clinserve index search: give a query or --queries FILE (not both)", file=sys.stderr)
        return EXIT_ERROR
    if args.k < 1:
        print("clinserve index search: --k must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    embedder = _embedder(args)
    retriever = Retriever(load_index(args.index, embedder), embedder)
    if args.query is not None:
        hits = retriever.search(args.query, args.k, args.mode)
        print(json.dumps([hit.to_json() for hit in hits], ensure_ascii=False))
        return 0
    with args.queries.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                print(json.dumps(_batch_line(retriever, line, number, args), ensure_ascii=False))
    return 0


def _batch_line(retriever: Any, line: str, number: int, args: argparse.Namespace) -> Any:
    try:
        item = json.loads(line)
        query = item["query"]
        if not isinstance(query, str):
            raise TypeError("'query' is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        return {"id": None, "error": f"line {number}: {type(exc).__name__}: {exc}"}
    hits = retriever.search(query, args.k, args.mode)
    return {"id": item.get("id"), "hits": [hit.to_json() for hit in hits]}


def _info(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from retrieval.manifest import Manifest

    print(json.dumps(asdict(Manifest.load(args.index)), indent=2, ensure_ascii=False))
    return 0

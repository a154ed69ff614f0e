"""Build, save and load a guideline index: chunks, their vectors in FAISS, and BM25.

Dense search is exact (`IndexFlatIP`) up to `hnsw_threshold` chunks, where exhaustive inner
products over normalised vectors are both exact and fast enough (10,000 x 384 floats is a
few milliseconds); above it an HNSW graph keeps search sub-linear at a small recall cost.
Both are settings, recorded in the manifest.

An index folder is written beside its destination and renamed into place, so a reader sees
the old index or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from retrieval.bm25 import BM25
from retrieval.chunking import Chunk, chunk_document, deduplicate
from retrieval.documents import SourceDocument
from retrieval.embedder import Embedder
from retrieval.manifest import IndexUnusable, Manifest, corpus_sha256

CHUNKS_FILE = "chunks.jsonl"
DENSE_FILE = "dense.faiss"


@dataclass(frozen=True)
class IndexOptions:
    max_tokens: int = 200
    overlap_tokens: int = 40
    hnsw_threshold: int = 20_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128


@dataclass
class Index:
    folder: Path
    manifest: Manifest
    chunks: list[Chunk]
    dense: Any  # a faiss index
    bm25: BM25

    def __len__(self) -> int:
        return len(self.chunks)


def passage_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its title and section give a short passage context."""
    heading = f"{chunk.title} > {chunk.section}" if chunk.section else chunk.title
    return f"{heading}\n{chunk.text}"


def _dense_index(vectors: np.ndarray, options: IndexOptions) -> tuple[Any, dict[str, Any]]:
    dimension = vectors.shape[1]
    index: Any
    if len(vectors) <= options.hnsw_threshold:
        index = faiss.IndexFlatIP(dimension)
        description: dict[str, Any] = {"kind": "flat"}
    else:
        hnsw = faiss.IndexHNSWFlat(dimension, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = options.hnsw_ef_construction
        hnsw.hnsw.efSearch = options.hnsw_ef_search
        index = hnsw
        description = {
            "kind": "hnsw",
            "m": options.hnsw_m,
            "ef_construction": options.hnsw_ef_construction,
            "ef_search": options.hnsw_ef_search,
        }
    index.add(vectors)
    return index, {**description, "threshold": options.hnsw_threshold}


def build_index(
    documents: Sequence[SourceDocument],
    embedder: Embedder,
    out: Path,
    options: IndexOptions | None = None,
    progress: bool = False,
) -> Index:
    """Chunk, de-duplicate, embed and index `documents` into the folder `out` (replaced
    atomically if it exists). Refuses an empty corpus."""
    options = options or IndexOptions()
    if not documents:
        raise ValueError("the corpus is empty: no document could be read")
    chunks: list[Chunk] = []
    for doc in documents:
        chunks.extend(chunk_document(doc, options.max_tokens, options.overlap_tokens))
    chunks, dropped = deduplicate(chunks)
    if not chunks:
        raise ValueError("the corpus has no text to index")
    vectors = embedder.embed_passages([passage_text(c) for c in chunks], progress=progress)
    dense, dense_description = _dense_index(vectors, options)
    bm25 = BM25.build([f"{c.title} {c.section} {c.text}" for c in chunks])
    manifest = Manifest(
        embedder=embedder.identity,
        dense=dense_description,
        chunking={"max_tokens": options.max_tokens, "overlap_tokens": options.overlap_tokens},
        corpus_sha256=corpus_sha256(documents),
        documents=len(documents),
        chunks=len(chunks),
        duplicates_dropped=dropped,
        languages=dict(Counter(c.language for c in chunks)),
    )
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(staging, manifest, chunks, dense, bm25)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Index(out, manifest, chunks, dense, bm25)


def _write(folder: Path, manifest: Manifest, chunks: list[Chunk], dense: Any, bm25: BM25) -> None:
    with (folder / CHUNKS_FILE).open("w", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
    faiss.write_index(dense, str(folder / DENSE_FILE))
    bm25.save(folder)
    manifest.save(folder)  # last: a folder with a manifest is complete


def _replace(staging: Path, out: Path) -> None:
    """Move `staging` to `out`; an existing `out` is moved aside first and then removed."""
    os.chmod(staging, 0o755)
    if not out.exists():
        os.replace(staging, out)
        return
    if not (out / "manifest.json").is_file():
        raise FileExistsError(f"{out} exists and is not an index: refusing to replace it")
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    os.replace(out, retired / "index")
    os.replace(staging, out)
    shutil.rmtree(retired, ignore_errors=True)


def load_index(folder: Path, embedder: Embedder) -> Index:
    """Read an index and check it was built by `embedder`; IndexUnusable otherwise."""
    manifest = Manifest.load(folder)
    manifest.check_embedder(embedder.identity, folder)
    try:
        with (folder / CHUNKS_FILE).open(encoding="utf-8") as handle:
            chunks = [Chunk(**json.loads(line)) for line in handle if line.strip()]
        dense: Any = faiss.read_index(str(folder / DENSE_FILE))
        bm25 = BM25.load(folder)
    except (OSError, ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise IndexUnusable(f"the index in {folder} is damaged: {exc}") from exc
    if not len(chunks) == dense.ntotal == len(bm25.lengths) == manifest.chunks:
        raise IndexUnusable(f"the index in {folder} is damaged: its parts disagree in size")
    if manifest.dense.get("kind") == "hnsw":
        dense.hnsw.efSearch = manifest.dense["ef_search"]
    return Index(folder, manifest, chunks, dense, bm25)

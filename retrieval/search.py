"""Search an index: dense (cosine via FAISS), BM25, or both fused by reciprocal rank.

Reciprocal rank fusion (score = sum over lists of 1 / (60 + rank)) needs no calibration
between cosine similarities and BM25 scores, which live on unrelated scales, and is what
hybrid search engines ship by default. Each list is cut at its own minimum score before
fusion, so a chunk that neither list really matches is not promoted by being merely
present in both; with no passage above the cut the answer is empty, and the gateway adds
no context rather than irrelevant context.

At most two passages come from one document (a setting), so a question that touches two
guidelines sees both.

Queries are spelling-corrected against the index's own vocabulary first
(`retrieval.query_spelling`), for BM25 and the embedder alike: a slip in a rare term
("urticaaria") would otherwise match nothing in BM25 and blur the query vector. The
corrector is built with the `Retriever`, so it always matches the index being searched.

A hybrid query in a language the embedder cannot read (Chinese with the English default
embedder, whose vectors for any two Chinese texts are close) is answered by BM25 alone:
fusing in a dense ranking that is noise would only push the right passages down.

A query's dense search runs on one OpenMP thread: a second thread does not speed up one
query's scan (flat over 10,000 x 384: 0.55 ms on one thread, 0.75 ms on two, with twice the
CPU time), and when another process holds a core the query waits for it: next to one busy
process on 2 vCPUs, embed + search p50 was 30 ms with two FAISS threads, 22 ms with one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import faiss
import numpy as np

from retrieval.chunking import Chunk
from retrieval.documents import detect_language
from retrieval.embedder import Embedder
from retrieval.index import Index
from retrieval.query_spelling import QuerySpeller

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")
RRF_K = 60


@dataclass(frozen=True)
class SearchOptions:
    min_dense: float = 0.30  # cosine below this is not a match (all-MiniLM-L6-v2 scale)
    min_bm25: float = 1.0  # BM25 below this is a stop-word-level overlap
    candidates: int = 50  # per list, before fusion
    max_per_document: int | None = 2  # passages from one document; None: no cap


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # the ranking score of the mode asked for (cosine, BM25 or RRF)
    dense: float | None = None
    bm25: float | None = None

    def to_json(self, snippet_chars: int | None = None) -> dict[str, Any]:
        text = self.chunk.text
        if snippet_chars is not None and len(text) > snippet_chars:
            text = text[: snippet_chars - 1].rstrip() + "…"
        return {
            "id": self.chunk.id,
            "doc_id": self.chunk.doc_id,
            "title": self.chunk.title,
            "section": self.chunk.section,
            "source": self.chunk.source,
            "version": self.chunk.version,
            "url": self.chunk.url,
            "score": round(self.score, 4),
            "dense": None if self.dense is None else round(self.dense, 4),
            "bm25": None if self.bm25 is None else round(self.bm25, 4),
            "text": text,
        }


class Retriever:
    def __init__(self, index: Index, embedder: Embedder, options: SearchOptions | None = None):
        self.index = index
        self.embedder = embedder
        self.options = options or SearchOptions()
        self.speller = QuerySpeller(index.bm25.document_frequencies())

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if k < 1 or not query.strip():
            return []
        query = self.speller.correct(query)
        if mode == "hybrid" and not self.embedder.reads(detect_language(query)):
            mode = "bm25"
        cap = self.options.max_per_document
        room = k if cap is None else k * 4  # candidates to fill k after the cap
        hits = self.search_vector(query, self._query_vector(query, mode), room, mode)
        return _per_document(hits, k, cap)

    def _query_vector(self, query: str, mode: Mode) -> np.ndarray | None:
        return None if mode == "bm25" else self.embedder.embed_queries([query])[0]

    def search_vector(self, query: str, vector: np.ndarray | None, k: int, mode: Mode) -> list[Hit]:
        """Search with a query vector computed elsewhere (batched embedding); `query`, and
        the text the vector was computed from, as `self.speller.correct` returns it."""
        want = max(k, self.options.candidates)
        dense = self._dense(vector, want) if mode != "bm25" else []
        lexical = self._bm25(query, want) if mode != "dense" else []
        if mode == "dense":
            return [Hit(self.index.chunks[i], s, dense=s) for i, s in dense[:k]]
        if mode == "bm25":
            return [Hit(self.index.chunks[i], s, bm25=s) for i, s in lexical[:k]]
        return self._fuse(dense, lexical, k)

    def _dense(self, vector: np.ndarray | None, want: int) -> list[tuple[int, float]]:
        assert vector is not None
        with _one_faiss_thread():
            scores, ids = self.index.dense.search(vector.reshape(1, -1), min(want, len(self.index)))
        return [
            (int(i), float(s))
            for i, s in zip(ids[0], scores[0], strict=True)
            if i >= 0 and s >= self.options.min_dense
        ]

    def _bm25(self, query: str, want: int) -> list[tuple[int, float]]:
        return [(i, s) for i, s in self.index.bm25.top(query, want) if s >= self.options.min_bm25]

    def _fuse(
        self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]], k: int
    ) -> list[Hit]:
        fused: dict[int, float] = {}
        for ranking in (dense, lexical):
            for rank, (number, _) in enumerate(ranking):
                fused[number] = fused.get(number, 0.0) + 1.0 / (RRF_K + rank + 1)
        dense_scores, bm25_scores = dict(dense), dict(lexical)
        best = sorted(fused, key=lambda n: (-fused[n], n))[:k]
        return [
            Hit(self.index.chunks[n], fused[n], dense_scores.get(n), bm25_scores.get(n))
            for n in best
        ]


@contextmanager
def _one_faiss_thread() -> Iterator[None]:
    """FAISS's OpenMP thread count, the calling thread's own, at 1 while the block runs."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _per_document(hits: list[Hit], k: int, cap: int | None) -> list[Hit]:
    """The best k hits with at most `cap` from any one document: a question that touches
    two guidelines should see both, not four passages of the closer one."""
    if cap is None:
        return hits[:k]
    taken: dict[str, int] = {}
    out: list[Hit] = []
    for hit in hits:
        if taken.get(hit.chunk.doc_id, 0) < cap:
            taken[hit.chunk.doc_id] = taken.get(hit.chunk.doc_id, 0) + 1
            out.append(hit)
            if len(out) == k:
                break
    return out

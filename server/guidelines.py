"""The served guideline index: loaded at start-up, built from the corpus the first time, and
swapped for a rebuilt one while requests keep flowing.

Swapping is one reference assignment: a request takes the current `Retriever` once and uses
it to the end, so it never sees half of two indexes; the new one is loaded completely (in a
worker thread, off the event loop) before it replaces the old. A rebuild is noticed by
polling the index folder's manifest, so `clinserve index build --out` on the served folder
is all an operator does. A rebuild that cannot be loaded (damaged, other embedder) is
logged and the old index keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from retrieval.embedder import Embedder, EmbedderSpec
from retrieval.index import build_index, load_index
from retrieval.manifest import FILE as MANIFEST
from retrieval.search import Retriever, SearchOptions
from server.settings import RetrievalSettings

log = logging.getLogger("clinserve.guidelines")


class GuidelineLibrary:
    def __init__(self, settings: RetrievalSettings, index_dir: Path) -> None:
        self.settings = settings
        self.index_dir = index_dir
        self.retriever: Retriever | None = None
        self.status = "disabled" if not settings.enabled else "loading"
        self._embedder: Embedder | None = None
        self._stamp: tuple[int, int] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._first_done = False

    @property
    def embedder(self) -> Embedder:
        """The configured embedder (weights load on first use)."""
        if self._embedder is None:
            s = self.settings
            spec = EmbedderSpec(s.embedder_path, s.query_instruction, s.passage_instruction)
            self._embedder = Embedder(spec)
        return self._embedder

    @property
    def settled(self) -> bool:
        """Whether the start-up load (or build) has finished, whatever its outcome: /ready
        waits for it, so a first request does not race the index."""
        return self._watcher is None or self._first_done

    def start(self) -> None:
        """Load (or build) in the background: a first build takes a minute, and the gateway
        and its worker start meanwhile."""
        if self.settings.enabled:
            self._watcher = asyncio.create_task(self._run(), name="guideline-index")

    async def _run(self) -> None:
        try:
            await asyncio.to_thread(self._first_load)
        finally:
            self._first_done = True
        await self._watch()

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    def _manifest_stamp(self) -> tuple[int, int] | None:
        try:
            stat = (self.index_dir / MANIFEST).stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def _first_load(self) -> None:
        try:
            if self._manifest_stamp() is None and self.settings.corpus:
                self.status = "building the index"
                self._build_from_corpus()
            if self._manifest_stamp() is not None:
                self._load()
            else:
                self.status = "no index"
        except Exception as exc:  # a broken index must not stop the gateway from serving
            self.status = f"unavailable: {exc}"
            log.error("guideline index not loaded: %s", exc)

    def _build_from_corpus(self) -> None:
        from retrieval.documents import load_corpus

        documents, problems = load_corpus(self.settings.corpus)
        for problem in problems:
            log.warning("guideline corpus: skipped %s: %s", problem.path, problem.reason)
        log.info("building the guideline index from %d documents", len(documents))
        build_index(documents, self.embedder, self.index_dir)

    def _load(self) -> None:
        stamp = self._manifest_stamp()
        index = load_index(self.index_dir, self.embedder)
        s = self.settings
        options = SearchOptions(s.min_dense, s.min_bm25, max_per_document=s.max_per_document)
        self.retriever = Retriever(index, self.embedder, options)
        self._stamp = stamp
        self.status = "ready"
        log.info(
            "guideline index loaded: %d chunks from %d documents (%s)",
            index.manifest.chunks, index.manifest.documents, index.manifest.built_at,
        )  # fmt: skip

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            stamp = self._manifest_stamp()
            if stamp is None or stamp == self._stamp:
                continue
            try:
                await asyncio.to_thread(self._load)
            except Exception as exc:
                self._stamp = stamp  # do not retry the same broken build every few seconds
                log.error("rebuilt guideline index not loaded, the old one keeps serving: %s", exc)

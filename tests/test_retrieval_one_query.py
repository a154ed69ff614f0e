"""The one-query path (what the gateway runs per chat request): the embedder's direct forward
pass gives `encode()`'s vectors, and both the forward pass and the dense search run on one
thread of the calling thread's own, leaving every other thread's count as it was; one text is
padded to a multiple of 16 tokens where asked, without moving its vector."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
import torch

from retrieval.embedder import Embedder, EmbedderSpec, default_model_path
from retrieval.index import Index, passage_text
from retrieval.search import Retriever

QUERIES = Path(__file__).parent / "data" / "guideline_queries.jsonl"


def english_queries() -> list[str]:
    lines = QUERIES.read_text("utf-8").splitlines()
    return [q for q in (json.loads(line)["query"] for line in lines) if q.isascii()]


def encoded(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """What sentence-transformers' own `encode()` returns, one text per call."""
    return np.concatenate(
        [
            embedder.model.encode([t], normalize_embeddings=True, convert_to_numpy=True)
            for t in texts
        ]
    )


def test_one_text_gets_the_vector_encode_gives(embedder: Embedder, guideline_index: Index) -> None:
    queries = english_queries()[:40]
    passages = [passage_text(c) for c in guideline_index.chunks if c.language == "en"][:20]
    direct = np.concatenate([embedder.embed_queries([q]) for q in queries])
    direct_passages = np.concatenate([embedder.embed_passages([p]) for p in passages])
    assert direct.dtype == np.float32 and direct.shape == (len(queries), embedder.dimension)
    assert np.allclose(np.linalg.norm(direct, axis=1), 1, atol=1e-5)
    assert (direct * encoded(embedder, queries)).sum(axis=1).min() >= 0.9999
    assert (direct_passages * encoded(embedder, passages)).sum(axis=1).min() >= 0.9999
    batched = embedder.embed_queries(queries)  # the batch path, as an index build embeds
    assert (direct * batched).sum(axis=1).min() >= 0.9999


def test_a_folders_default_prompt_applies_to_one_text(tmp_path: Path, embedder: Embedder) -> None:
    """`encode()` prepends a folder's default prompt; the direct path must too, or one
    query would land elsewhere than the same query in a batch."""
    packaged = default_model_path()
    folder = tmp_path / "prompted"
    folder.mkdir()
    for item in packaged.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "config_sentence_transformers.json").unlink()
    config = json.loads((packaged / "config_sentence_transformers.json").read_text("utf-8"))
    config.update(prompts={"tagged": "clinical guideline passage: "}, default_prompt_name="tagged")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config), "utf-8")
    prompted = Embedder(EmbedderSpec(path=str(folder)))
    query = "how long to give antibiotics for uncomplicated cystitis"
    direct = prompted.embed_queries([query])[0]
    assert float(direct @ encoded(prompted, [query])[0]) >= 0.9999
    assert float(direct @ embedder.embed_queries([query])[0]) < 0.99  # the prompt did apply


class LengthProbe:
    """Records the token length the transformer reads each time it runs."""

    def __init__(self, embedder: Embedder) -> None:
        self.lengths: list[int] = []
        self.handle = embedder.model[0].register_forward_pre_hook(self._record)

    def _record(self, _module: Any, args: tuple[Any, ...]) -> None:
        self.lengths.append(int(args[0]["input_ids"].shape[1]))


def test_one_text_is_padded_to_a_multiple_of_16_tokens(embedder: Embedder) -> None:
    """Forced on, so that it runs on CPUs without bfloat16 too (where it is off by default)."""
    padded_embedder = Embedder(EmbedderSpec(single_text_pad_to=16))
    unpadded = Embedder(EmbedderSpec(single_text_pad_to=0))
    queries = [q for q in english_queries() if embedder.count_tokens([q]) % 16][:20]
    limit = embedder.model.max_seq_length
    assert limit is not None
    too_long = " ".join(["persistent chest pain radiating to the left arm"] * 60)
    probes = LengthProbe(padded_embedder), LengthProbe(unpadded)
    try:
        padded = np.concatenate([padded_embedder.embed_queries([q]) for q in [*queries, too_long]])
        plain = np.concatenate([unpadded.embed_queries([q]) for q in [*queries, too_long]])
    finally:
        for probe in probes:
            probe.handle.remove()
    wanted = [embedder.count_tokens([q]) for q in queries]
    assert probes[1].lengths == [*wanted, limit]
    assert probes[0].lengths == [-(-n // 16) * 16 for n in wanted] + [limit]
    assert (padded * plain).sum(axis=1).min() >= 0.9999


def test_padding_follows_the_precision_unless_set(embedder: Embedder) -> None:
    probe = LengthProbe(embedder)
    try:
        embedder.embed_queries(["chest pain on exertion"])
    finally:
        probe.handle.remove()
    tokens = embedder.count_tokens(["chest pain on exertion"])
    assert tokens % 16 and probe.lengths == [16 if embedder.precision == "bf16-matmul" else tokens]


class ThreadProbe:
    """Records torch's intra-op thread count each time the transformer runs."""

    def __init__(self, embedder: Embedder) -> None:
        self.seen: list[int] = []
        self.handle = embedder.model[0].register_forward_pre_hook(self._record)

    def _record(self, *_: Any) -> None:
        self.seen.append(torch.get_num_threads())


def test_one_text_runs_on_one_thread_and_batches_on_all(embedder: Embedder) -> None:
    default = torch.get_num_threads()
    probe = ThreadProbe(embedder)
    try:
        embedder.embed_queries(["chest pain on exertion"])
        embedder.embed_queries(["chest pain on exertion", "fever after travel"])
        with ThreadPoolExecutor(1) as pool:  # as the gateway calls it (asyncio.to_thread)
            pool.submit(embedder.embed_queries, ["fever after travel"]).result()
            in_worker = pool.submit(torch.get_num_threads).result()
    finally:
        probe.handle.remove()
    assert probe.seen == [1, default, 1]
    assert torch.get_num_threads() == default and in_worker == default


def test_thread_count_is_restored_when_the_forward_pass_fails(embedder: Embedder) -> None:
    default = torch.get_num_threads()

    def fail(*_: Any) -> None:
        raise RuntimeError("forward pass failed")

    handle = embedder.model[0].register_forward_pre_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="forward pass failed"):
            embedder.embed_queries(["chest pain"])
    finally:
        handle.remove()
    assert torch.get_num_threads() == default


class RecordingDense:
    """The real FAISS index, noting FAISS's thread count when it is searched."""

    def __init__(self, dense: Any) -> None:
        self.dense = dense
        self.threads: list[int] = []

    def search(self, vectors: np.ndarray, k: int) -> Any:
        self.threads.append(faiss.omp_get_max_threads())
        return self.dense.search(vectors, k)


def test_dense_search_runs_on_one_faiss_thread(embedder: Embedder, guideline_index: Index) -> None:
    recording = RecordingDense(guideline_index.dense)
    index = Index(
        guideline_index.folder,
        guideline_index.manifest,
        guideline_index.chunks,
        recording,
        guideline_index.bm25,
    )
    retriever = Retriever(index, embedder)
    default = faiss.omp_get_max_threads()
    hits = retriever.search("first-line treatment for hypertension", 3, "hybrid")
    thread = threading.Thread(target=retriever.search, args=("asthma inhaler", 3, "dense"))
    thread.start()
    thread.join()
    assert hits and recording.threads == [1, 1]
    assert faiss.omp_get_max_threads() == default

"""The guideline index for real: the packaged embedder, FAISS, BM25, the manifest check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from retrieval.documents import SourceDocument
from retrieval.embedder import Embedder, EmbedderError, EmbedderSpec, default_model_path
from retrieval.index import Index, IndexOptions, build_index, load_index, passage_text
from retrieval.manifest import IndexUnusable
from retrieval.search import Retriever, SearchOptions

QUERIES = Path(__file__).parent / "data" / "guideline_queries.jsonl"


def small_corpus() -> list[SourceDocument]:
    return [
        SourceDocument(
            id=f"doc-{n}",
            title=title,
            text=f"# {title}\n\n## Management\n\n{body}",
            language="en",
            source="Test",
            version="2024",
        )
        for n, (title, body) in enumerate(
            [
                ("Gout", "Colchicine or an NSAID treats an acute gout flare."),
                ("Asthma", "An inhaled corticosteroid is the first controller for asthma."),
                ("Migraine", "A triptan with an NSAID treats an acute migraine attack."),
                ("Anaphylaxis", "Give intramuscular adrenaline into the thigh at once."),
                ("Dengue", "Avoid NSAIDs in dengue; paracetamol treats the fever."),
                ("Influenza", "Oseltamivir helps most when started within 48 hours."),
            ]
        )
    ]


def doc_ranking(retriever: Retriever, query: str, mode: str = "hybrid") -> list[str]:
    docs: list[str] = []
    for hit in retriever.search(query, 20, mode):  # type: ignore[arg-type]
        if hit.chunk.doc_id not in docs:
            docs.append(hit.chunk.doc_id)
    return docs


def test_manifest_records_what_built_the_index(guideline_index: Index) -> None:
    manifest = guideline_index.manifest
    assert manifest.embedder["name"] == "all-MiniLM-L6-v2"
    assert manifest.embedder["dimension"] == 384
    assert manifest.documents == 47 and manifest.chunks == len(guideline_index)
    assert set(manifest.languages) == {"en", "zh"}
    assert manifest.dense["kind"] == "flat" and len(manifest.corpus_sha256) == 64
    assert {p.name for p in guideline_index.folder.iterdir()} == {
        "manifest.json", "chunks.jsonl", "dense.faiss", "bm25.npz", "bm25_vocabulary.json"
    }  # fmt: skip


def test_sample_queries_find_their_guidelines(guideline_index: Index, embedder: Embedder) -> None:
    """The labelled queries (clinician and patient wording, both languages): recall@5 at
    document level, measured 1.00 en / 0.84 zh when written; this guards regressions."""
    retriever = Retriever(guideline_index, embedder)
    queries = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines()]
    for language, floor in (("en", 0.95), ("zh", 0.78)):
        items = [q for q in queries if q["language"] == language]
        found = sum(bool(set(q["relevant"]) & set(doc_ranking(retriever, q["query"])[:5]))
                    for q in items)  # fmt: skip
        assert found / len(items) >= floor, (language, found, len(items))


def test_exact_terms_and_chinese_reach_the_right_document(
    guideline_index: Index, embedder: Embedder
) -> None:
    retriever = Retriever(guideline_index, embedder)
    assert doc_ranking(retriever, "CHA2DS2-VASc", "bm25")[0].endswith("ng196")
    assert doc_ranking(retriever, "孩子发烧39度还抽筋了怎么办")[0].startswith("zh-")


def test_a_query_matching_nothing_returns_nothing(
    guideline_index: Index, embedder: Embedder
) -> None:
    retriever = Retriever(guideline_index, embedder)
    assert retriever.search("qwxz vbnm plkj", 5, "bm25") == []
    assert retriever.search("   ", 5) == []


def test_load_round_trip_and_passage_text(guideline_index: Index, embedder: Embedder) -> None:
    loaded = load_index(guideline_index.folder, embedder)
    query = "first-line treatment for hypertension in a 45 year old"
    before = [h.chunk.id for h in Retriever(guideline_index, embedder).search(query, 5)]
    after = [h.chunk.id for h in Retriever(loaded, embedder).search(query, 5)]
    assert before == after
    chunk = loaded.chunks[0]
    assert passage_text(chunk).startswith(chunk.title)


def test_an_index_from_another_embedder_is_refused(guideline_index: Index) -> None:
    other = Embedder(EmbedderSpec(query_instruction="query: "))
    with pytest.raises(IndexUnusable, match="Rebuild the index"):
        load_index(guideline_index.folder, other)


def test_a_damaged_or_foreign_folder_is_refused(
    tmp_path: Path, guideline_index: Index, embedder: Embedder
) -> None:
    with pytest.raises(IndexUnusable, match="not an index"):
        load_index(tmp_path, embedder)
    copy = tmp_path / "copy"
    shutil.copytree(guideline_index.folder, copy)
    lines = (copy / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    (copy / "chunks.jsonl").write_text("\n".join(lines[:-3]) + "\n", encoding="utf-8")
    with pytest.raises(IndexUnusable, match="damaged"):
        load_index(copy, embedder)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(IndexUnusable, match="format 99"):
        load_index(copy, embedder)


def test_hnsw_above_the_threshold(tmp_path: Path, embedder: Embedder) -> None:
    options = IndexOptions(hnsw_threshold=3, hnsw_m=8, hnsw_ef_search=32)
    index = build_index(small_corpus(), embedder, tmp_path / "idx", options)
    assert index.manifest.dense["kind"] == "hnsw"
    retriever = Retriever(load_index(tmp_path / "idx", embedder), embedder)
    assert doc_ranking(retriever, "adrenaline for a severe allergic reaction")[0] == "doc-3"


def test_rebuilding_replaces_the_folder_and_refuses_a_non_index(
    tmp_path: Path, embedder: Embedder
) -> None:
    out = tmp_path / "idx"
    first = build_index(small_corpus()[:3], embedder, out)
    second = build_index(small_corpus(), embedder, out)
    assert first.manifest.corpus_sha256 != second.manifest.corpus_sha256
    assert load_index(out, embedder).manifest.documents == 6
    assert [p.name for p in tmp_path.iterdir()] == ["idx"], "no staging folders left behind"
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_index(small_corpus(), embedder, precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_an_empty_corpus_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="empty"):
        build_index([], embedder, tmp_path / "idx")
    assert not (tmp_path / "idx").exists()


def test_the_packaged_weights_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    shutil.copytree(default_model_path(), folder)
    (folder / "model.safetensors").write_bytes(b"tampered")
    monkeypatch.setattr("retrieval.embedder.default_model_path", lambda: folder)
    with pytest.raises(EmbedderError, match="pinned sha256"):
        Embedder()
    with pytest.raises(EmbedderError, match="not a sentence-transformers"):
        Embedder(EmbedderSpec(path=str(tmp_path / "missing")))


def test_at_most_two_passages_per_document(guideline_index: Index, embedder: Embedder) -> None:
    query = "my bp is always 150 over 95 and i get headaches, what pills should i take?"
    hits = Retriever(guideline_index, embedder).search(query, 6)
    per_document = [hit.chunk.doc_id for hit in hits]
    assert len(hits) == 6
    assert max(per_document.count(doc) for doc in per_document) <= 2
    uncapped = Retriever(guideline_index, embedder, SearchOptions(max_per_document=None))
    assert len(uncapped.search(query, 6)) == 6

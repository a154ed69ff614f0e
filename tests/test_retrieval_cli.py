"""`clinserve index build|search|info` as a user runs them (real embedder, real files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def clinserve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "index", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "gout.md").write_text(
        "---\nid: gout\ntitle: Gout\nsource: Test\nversion: '2024'\n---\n\n# Gout\n\n"
        "## Acute flare\n\nColchicine or an NSAID treats an acute gout flare.\n",
        encoding="utf-8",
    )
    (corpus / "more.jsonl").write_text(
        json.dumps({"id": "flu", "title": "Influenza", "text": "Oseltamivir within 48 hours."})
        + "\n{not json\n"
        + json.dumps({"id": "zh-gao", "title": "高血压", "text": "高血压患者首选降压药物。"})
        + "\n",
        encoding="utf-8",
    )
    (corpus / "broken.md").write_bytes(b"\xff\xfe\x00binary")
    done = clinserve("build", "--corpus", str(corpus), "--out", str(root / "idx"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stderr and "broken.md" in done.stderr and "line 2" in done.stderr
    assert "indexed 3 documents" in done.stderr
    return root / "idx"


def test_search_prints_hits_as_json(built: Path) -> None:
    done = clinserve("search", "--index", str(built), "--k", "2", "treatment for a gout flare")
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert hits[0]["doc_id"] == "gout" and hits[0]["section"] == "Acute flare"
    assert {"id", "title", "section", "source", "score", "text"} <= set(hits[0])


def test_batch_search_keeps_input_order_and_reports_bad_lines(built: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        '{"id": "a", "query": "oseltamivir dose"}\n[1]\n{"id": "b", "query": "高血压吃什么药"}\n',
        encoding="utf-8",
    )
    done = clinserve("search", "--index", str(built), "--mode", "bm25", "--queries", str(queries))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line.get("id") for line in lines] == ["a", None, "b"]
    assert lines[0]["hits"][0]["doc_id"] == "flu" and "error" in lines[1]
    assert lines[2]["hits"][0]["doc_id"] == "zh-gao"


def test_info_prints_the_manifest(built: Path) -> None:
    done = clinserve("info", str(built))
    assert done.returncode == 0
    manifest = json.loads(done.stdout)
    assert manifest["documents"] == 3 and manifest["embedder"]["dimension"] == 384


def test_an_index_from_another_embedder_is_an_error(built: Path) -> None:
    done = clinserve("search", "--index", str(built), "--query-instruction", "query: ", "gout")
    assert done.returncode == 1 and done.stdout == ""
    assert "Rebuild the index" in done.stderr and "Traceback" not in done.stderr


def test_an_empty_corpus_and_a_missing_index_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = clinserve("build", "--corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "i"))
    assert done.returncode == 1 and "empty" in done.stderr
    done = clinserve("info", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "not an index" in done.stderr
    done = clinserve("search", "--index", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "give a query" in done.stderr

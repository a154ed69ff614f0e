"""Corpus ingestion: every format, metadata defaults, bad inputs, directory walking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from retrieval.documents import MAX_FILE_BYTES, Problem, SourceDocument, load_corpus
from tests.pdfs import build_pdf

CORPUS = Path(__file__).resolve().parent.parent / "data" / "guidelines"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def load_one(path: Path) -> SourceDocument:
    documents, problems = load_corpus([path])
    assert problems == []
    assert len(documents) == 1
    return documents[0]


def problem_for(path: Path) -> str:
    documents, problems = load_corpus([path])
    assert documents == []
    assert len(problems) == 1
    assert problems[0].path == str(path)
    return problems[0].reason


# --- the shipped sample corpus -----------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> dict[str, SourceDocument]:
    documents, problems = load_corpus([CORPUS])
    assert problems == []
    return {doc.id: doc for doc in documents}


def test_corpus_loads_every_document_without_problems(corpus: dict[str, SourceDocument]) -> None:
    assert len(corpus) == 47
    languages = [doc.language for doc in corpus.values()]
    assert languages.count("en") == 26
    assert languages.count("zh") == 21
    for doc in corpus.values():
        assert doc.title and doc.source and doc.version and doc.guideline and doc.topics
        assert doc.id.startswith(doc.language + "-")
        assert doc.text == doc.text.strip()


def test_corpus_order_is_deterministic_and_sorted() -> None:
    first = [doc.path for doc in load_corpus([CORPUS])[0]]
    assert first == [doc.path for doc in load_corpus([CORPUS])[0]]
    files = [path.split(":")[0] for path in first]
    assert files == sorted(files, key=lambda p: Path(p).relative_to(CORPUS).parts)


def test_corpus_covers_every_format(corpus: dict[str, SourceDocument]) -> None:
    suffixes = {Path(doc.path.split(":")[0]).suffix for doc in corpus.values()}
    assert suffixes == {".md", ".html", ".txt", ".jsonl"}
    assert corpus["en-dengue-who-2009"].path == f"{CORPUS / 'extra.jsonl'}:1"


def test_corpus_versions_stay_strings(corpus: dict[str, SourceDocument]) -> None:
    assert corpus["en-copd-gold-2024"].version == "2024"
    assert corpus["en-hypertension-nice-ng136"].version == "2023-11"
    assert corpus["en-hypertension-nice-ng136"].url == "https://www.nice.org.uk/guidance/ng136"
    assert corpus["en-hypertension-nice-ng136"].topics == ("hypertension", "cardiovascular")


def test_corpus_plain_text_headings(corpus: dict[str, SourceDocument]) -> None:
    text = corpus["en-antibiotic-stewardship-cdc-core-elements"].text
    assert text.startswith("## SCOPE\n\nThis summary describes")
    assert "\n### The seven core elements\n\nHospitals can assess" in text
    assert "\n1. Hospital leadership commitment:" in text
    zh = corpus["zh-covid19-nhc-v10"]
    assert zh.language == "zh" and zh.title == "《新型冠状病毒感染诊疗方案（试行第十版）》要点"
    assert "### 临床表现\n\n主要表现为" in zh.text


def test_corpus_html_structure(corpus: dict[str, SourceDocument]) -> None:
    doc = corpus["en-sepsis-ssc-2021"]
    assert doc.topics == ("sepsis", "infection", "emergency", "critical-care")
    assert "### Initial tests\n\n- Measure blood lactate" in doc.text
    assert "recommends against using qSOFA alone as a single" in doc.text  # inline <strong>


# --- Markdown ----------------------------------------------------------------------------


def test_markdown_front_matter_and_body(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.md",
        "---\nid: en-x\ntitle: 'X: a summary'\nsource: NICE\nguideline: NG1\n"
        "version: 2024-01-15\nlanguage: en\nurl: https://example.org/x\ntopics: [a, b]\n---\n\n"
        "# X: a summary\n\n## Scope\n\nBody text.\n",
    )
    doc = load_one(path)
    assert doc == SourceDocument(
        id="en-x",
        title="X: a summary",
        text="# X: a summary\n\n## Scope\n\nBody text.",
        language="en",
        source="NICE",
        guideline="NG1",
        version="2024-01-15",  # YAML parsed a date
        url="https://example.org/x",
        topics=("a", "b"),
        path=str(path),
    )


@pytest.mark.parametrize(("written", "expected"), [("2019", "2019"), ("1.5", "1.5"), ("v2", "v2")])
def test_numeric_versions_become_strings(tmp_path: Path, written: str, expected: str) -> None:
    doc = load_one(write(tmp_path / "a.md", f"---\nversion: {written}\n---\ntext"))
    assert doc.version == expected


def test_markdown_defaults_without_front_matter(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "Sub Dir" / "My_File.md", "intro\n\n# Heading Title\n\ntext"))
    assert doc.title == "Heading Title"
    assert doc.id == "my-file"  # relative to the file given
    assert (doc.language, doc.source, doc.version, doc.topics) == ("en", None, None, ())
    walked = load_corpus([tmp_path])[0][0]
    assert walked.id == "sub-dir-my-file"  # relative to the directory given


def test_title_falls_back_to_stem_and_language_is_detected(tmp_path: Path) -> None:
    doc = load_one(
        write(tmp_path / "gaoxueya.md", "## 评估\n\n高血压患者应定期测量血压。Use ABPM.")
    )
    assert doc.title == "gaoxueya"
    assert doc.language == "zh"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("---\ntitle: [unclosed\n---\nbody", "bad YAML front matter"),
        ("---\ntitle: a: b\n---\nbody", "bad YAML front matter"),
        ("---\n- a\n- b\n---\nbody", "front matter is not a mapping"),
        ("---\ntitle: x\nbody without an end", "no closing '---'"),
        ("---\ntitle: x\n---\n\n", "no body text"),
        ("---\nlanguage: fr\n---\nbody", "unsupported language 'fr'"),
        ("---\nversion: [1, 2]\n---\nbody", "'version' must be a single value"),
        ("---\ntopics: 3\n---\nbody", "'topics' must be a list"),
        ("---\nid: has space\n---\nbody", "bad id 'has space'"),
    ],
)
def test_bad_markdown_is_a_problem(tmp_path: Path, content: str, reason: str) -> None:
    assert reason in problem_for(write(tmp_path / "bad.md", content))


def test_bad_yaml_reason_names_the_file_line(tmp_path: Path) -> None:
    reason = problem_for(write(tmp_path / "bad.md", "---\nid: a\ntitle: [x\n---\nbody"))
    assert reason.startswith("bad YAML front matter:")
    assert "line" in reason


# --- HTML --------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8">
<title>Sepsis &amp; shock</title>
<meta name="id" content="en-sepsis"><meta name="Source" content="SSC">
<meta name="version" content="2021"><meta name="topics" content="sepsis, infection">
<meta name="guideline" content="SSC 2021"><meta name="url" content="https://example.org/s">
<style>p { color: red }</style><script>var ignored = "script text";</script>
</head><body>
<header>Site header</header><nav><a href="/">Home</a></nav>
<h1>Sepsis &amp; shock</h1>
<h2>Management</h2>
<p>Give <strong>antibiotics</strong> within 1 hour.<br>Reassess often.</p>
<ul><li>Lactate</li><li>Cultures <em>first</em></li></ul>
<h3>Doses</h3>
<table><tr><th>Drug</th><td>Norepinephrine first</td></tr></table>
<p>Unclosed paragraph
<div>Loose text</div>
<footer>Copyright</footer>
</body></html>"""


def test_html_metadata_and_body(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "s.html", HTML))
    assert (doc.id, doc.title, doc.source, doc.version) == (
        "en-sepsis",
        "Sepsis & shock",
        "SSC",
        "2021",
    )
    assert (doc.guideline, doc.url, doc.language) == ("SSC 2021", "https://example.org/s", "en")
    assert doc.topics == ("sepsis", "infection")
    assert doc.text == (
        "# Sepsis & shock\n\n## Management\n\nGive antibiotics within 1 hour.\n\nReassess often."
        "\n\n- Lactate\n- Cultures first\n\n### Doses\n\nDrug\n\nNorepinephrine first"
        "\n\nUnclosed paragraph\n\nLoose text"
    )
    for hidden in ("Site header", "Home", "script text", "color", "Copyright"):
        assert hidden not in doc.text


def test_html_language_from_html_lang_and_title_from_h1(tmp_path: Path) -> None:
    page = '<html lang="zh-CN"><body><h1>标题</h1><p>内容很短。</p></body></html>'
    doc = load_one(write(tmp_path / "page.htm", page))
    assert (doc.language, doc.title) == ("zh", "标题")


def test_html_without_body_text_is_a_problem(tmp_path: Path) -> None:
    page = "<html><head><title>T</title></head><body><script>x()</script></body></html>"
    assert problem_for(write(tmp_path / "e.html", page)) == "no body text"


# --- plain text --------------------------------------------------------------------------


def test_plain_text_convention(tmp_path: Path) -> None:
    content = (
        "Gout summary\nId: en-gout\nSource: ACR\nGuideline: Gout 2020\nVersion: 2020-06\n"
        "Language: en\nTopics: gout, rheumatology\nURL: https://example.org/g\n\n"
        "SCOPE\n\nAdults with gout.\n\nFlares:\nTreat early.\n- colchicine\n1. NSAID\n"
    )
    doc = load_one(write(tmp_path / "g.txt", content))
    assert (doc.id, doc.title, doc.source, doc.guideline) == (
        "en-gout",
        "Gout summary",
        "ACR",
        "Gout 2020",
    )
    assert (doc.version, doc.url, doc.topics) == (
        "2020-06",
        "https://example.org/g",
        ("gout", "rheumatology"),
    )
    assert (
        doc.text
        == "## SCOPE\n\nAdults with gout.\n\n### Flares\n\nTreat early.\n- colchicine\n1. NSAID"
    )


def test_plain_text_without_metadata(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "Notes.txt", "A title line\n\nSome body.\nNOT A HEADING.\n"))
    assert (doc.id, doc.title, doc.text) == ("notes", "A title line", "Some body.\nNOT A HEADING.")


def test_plain_text_with_only_a_title_is_a_problem(tmp_path: Path) -> None:
    assert problem_for(write(tmp_path / "t.txt", "Title only\nId: x\n")) == "no body text"


# --- PDF ---------------------------------------------------------------------------------


def test_pdf_with_metadata_title(tmp_path: Path) -> None:
    pdf = build_pdf(
        [["Asthma summary", "Use an ICS (inhaled steroid)."], ["Page two."]], title="Asthma"
    )
    doc = load_one(write(tmp_path / "asthma.pdf", pdf))
    assert (doc.id, doc.title, doc.language) == ("asthma", "Asthma", "en")
    assert "Use an ICS (inhaled steroid)." in doc.text
    assert doc.text.endswith("Page two.")


def test_pdf_title_falls_back_to_first_line(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "p.pdf", build_pdf([["", "Gout in brief", "Body line."]])))
    assert doc.title == "Gout in brief"
    assert doc.text == "# Gout in brief\nBody line."


def test_pdf_without_text_is_a_problem(tmp_path: Path) -> None:
    reason = problem_for(write(tmp_path / "scan.pdf", build_pdf([[], []], title="Scanned")))
    assert reason.startswith("PDF has no extractable text")


@pytest.mark.parametrize(
    "content",
    [b"%PDF-1.4\nnot really a pdf", build_pdf([["Some text."]])[:150], b"plain words"],
)
def test_corrupt_pdf_is_a_problem(tmp_path: Path, content: bytes) -> None:
    assert problem_for(write(tmp_path / "bad.pdf", content)).startswith("PDF cannot be read")


# --- JSON Lines --------------------------------------------------------------------------


def test_jsonl_good_and_bad_lines(tmp_path: Path) -> None:
    good = {
        "id": "en-a",
        "title": "A",
        "text": "## Scope\n\nBody.",
        "version": 2019,
        "topics": ["t"],
    }
    lines = [
        json.dumps(good),
        "",
        "[1, 2]",
        json.dumps({"title": "No text"}),
        "{not json",
        json.dumps({"title": "No id", "text": "Body two.", "Language": "en"}),
        json.dumps({"title": 5, "text": "x"}),
        "   ",
    ]
    path = write(tmp_path / "Extra.jsonl", "\n".join(lines) + "\n")
    documents, problems = load_corpus([path])
    assert [(d.id, d.title, d.version, d.path) for d in documents] == [
        ("en-a", "A", "2019", f"{path}:1"),
        ("extra-6", "No id", None, f"{path}:6"),
    ]
    assert documents[0].text == "## Scope\n\nBody." and documents[0].topics == ("t",)
    reasons = [p.reason for p in problems]
    assert reasons[0] == "line 3: not a JSON object but list"
    assert reasons[1] == "line 4: missing 'text'"
    assert reasons[2].startswith("line 5: invalid JSON")
    assert reasons[3] == "line 7: 'title' is not a string"
    assert {p.path for p in problems} == {str(path)}


def test_jsonl_record_with_bad_metadata_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", json.dumps({"title": "T", "text": "t", "language": "de"}))
    assert problem_for(path) == "line 1: unsupported language 'de' (expected 'en' or 'zh')"


# --- unreadable files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("binary.md", bytes(range(256)) * 4, "contains NUL bytes (binary or UTF-16 file?)"),
        ("latin1.md", "Caf\u00e9 au lait".encode("latin-1"), "not valid UTF-8 (byte 3)"),
        (
            "utf16.txt",
            "Title\n\nbody".encode("utf-16"),
            "contains NUL bytes (binary or UTF-16 file?)",
        ),
        ("empty.md", b"", "empty file"),
        ("blank.txt", b" \n\n\t\n", "empty file"),
        ("blank.jsonl", b"\n\n", "empty file"),
        ("blank.pdf", b"", "empty file"),
        ("garbage.html", b"<p>ok</p>\xff\xfe", "not valid UTF-8 (byte 9)"),
    ],
)
def test_unreadable_files_are_problems(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    assert problem_for(write(tmp_path / name, content)) == reason


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "bom.md", "\ufeff---\nid: en-bom\n---\n# T\n\nx"))
    assert (doc.id, doc.title) == ("en-bom", "T")


def test_oversized_file_is_a_problem_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    with path.open("wb") as handle:  # sparse: no 20 MB actually written
        handle.truncate(MAX_FILE_BYTES + 1)
    assert problem_for(path) == f"larger than 20 MB ({MAX_FILE_BYTES + 1} bytes)"


def test_duplicate_ids_first_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "a.md", "---\nid: en-x\ntitle: First\n---\nbody a")
    write(tmp_path / "b.jsonl", json.dumps({"id": "en-x", "title": "Second", "text": "body b"}))
    documents, problems = load_corpus([tmp_path])
    assert [doc.title for doc in documents] == ["First"]
    assert problems == [
        Problem(f"{tmp_path / 'b.jsonl'}:1", f"duplicate id en-x (first in {first})")
    ]


def test_nonexistent_path_raises(tmp_path: Path) -> None:
    write(tmp_path / "ok.md", "text")
    with pytest.raises(FileNotFoundError):
        load_corpus([tmp_path, tmp_path / "missing"])


def test_bad_files_do_not_stop_the_rest(tmp_path: Path) -> None:
    write(tmp_path / "a.md", b"\x00\x01")
    write(tmp_path / "b.md", "# Good\n\nFine.")
    write(tmp_path / "c.pdf", b"%PDF-broken")
    documents, problems = load_corpus([tmp_path])
    assert [doc.title for doc in documents] == ["Good"]
    assert [Path(p.path).name for p in problems] == ["a.md", "c.pdf"]


# --- walking directories -----------------------------------------------------------------


def test_directory_walk_skips_hidden_readme_and_other_suffixes(tmp_path: Path) -> None:
    for name in ("b.md", "a.txt", "z/c.MARKDOWN", "y/d.jsonl", "e.HTM"):
        content = json.dumps({"title": "D", "text": "d"}) if name.endswith("jsonl") else "T\n\nx"
        write(tmp_path / name, content)
    for name in ("README.md", "z/readme.md", ".hidden.md", ".git/e.md", "notes.docx", "f.json"):
        write(tmp_path / name, "ignored")
    documents, problems = load_corpus([tmp_path])
    assert problems == []
    found = [Path(doc.path.split(":")[0]).relative_to(tmp_path).as_posix() for doc in documents]
    assert found == ["a.txt", "b.md", "e.HTM", "y/d.jsonl", "z/c.MARKDOWN"]


def test_explicit_files_are_read_even_if_a_walk_would_skip_them(tmp_path: Path) -> None:
    readme = write(tmp_path / "README.md", "# Readme\n\ntext")
    assert load_one(readme).title == "Readme"
    other = write(tmp_path / "notes.docx", "x")
    assert problem_for(other) == "unsupported file type '.docx'"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_leaving_the_directory_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(outside / "secret.md", "# Secret\n\nx")
    write(root / "inside.md", "# Inside\n\nx")
    (root / "link-out.md").symlink_to(outside / "secret.md")
    (root / "dir-out").symlink_to(outside, target_is_directory=True)
    (root / "link-in.md").symlink_to(root / "inside.md")
    (root / "loop").symlink_to(root, target_is_directory=True)
    documents, problems = load_corpus([root])
    assert [doc.path for doc in documents] == [str(root / "inside.md"), str(root / "link-in.md")]
    assert sorted(Path(p.path).name for p in problems) == ["dir-out", "link-out.md"]
    assert all("not followed" in p.reason for p in problems)

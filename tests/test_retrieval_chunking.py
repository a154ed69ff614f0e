"""Heading-aware chunking, sentence packing with overlap, and de-duplication."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.chunking import (
    Chunk,
    approximate_tokens,
    chunk_document,
    deduplicate,
    split_sentences,
)
from retrieval.documents import Language, SourceDocument, load_corpus

CORPUS = Path(__file__).resolve().parent.parent / "data" / "guidelines"


def doc(text: str, title: str = "Title", language: Language = "en") -> SourceDocument:
    return SourceDocument(
        id="en-doc", title=title, text=text, language=language, source="S", version="1"
    )


def sentences(prefix: str, count: int, words: int = 8) -> list[str]:
    """Distinct sentences like 'a1 w w w w w w w.' that each cost words*1.3 tokens."""
    return [f"{prefix}{n} " + " ".join(["word"] * (words - 1)) + "." for n in range(count)]


@pytest.fixture(scope="module")
def corpus() -> list[SourceDocument]:
    documents, problems = load_corpus([CORPUS])
    assert problems == []
    return documents


# --- token estimate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("...,;!? -- ()", 0),
        ("one", 2),
        ("one two three", 4),
        (" ".join(["w"] * 10), 13),
        ("140/90 mmHg", 4),
        ("高血压", 3),
        ("高血压患者FEV1。", 7),
        ("snake_case", 3),
    ],
)
def test_approximate_tokens(text: str, tokens: int) -> None:
    assert approximate_tokens(text) == tokens


# --- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_tokens", "overlap"), [(15, 0), (0, 0), (100, -1), (100, 100), (16, 20)]
)
def test_bad_arguments_raise(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_document(doc("text"), max_tokens=max_tokens, overlap_tokens=overlap)


def test_smallest_valid_arguments() -> None:
    assert (
        chunk_document(doc("short text"), max_tokens=16, overlap_tokens=15)[0].text == "short text"
    )


# --- sections ----------------------------------------------------------------------------

SECTIONED = """Preamble before any heading.

# Title

Intro under the title.

## Management

### First-line drugs

Offer drug A.

### Second-line

Offer drug B.

## Empty section

## Follow-up

Review in a year.

# Appendix

#### Deep

Deep text.
"""


def test_section_paths() -> None:
    chunks = chunk_document(doc(SECTIONED))
    assert [(c.section, c.text) for c in chunks] == [
        ("", "Preamble before any heading."),
        ("", "Intro under the title."),
        ("Management > First-line drugs", "Offer drug A."),
        ("Management > Second-line", "Offer drug B."),
        ("Follow-up", "Review in a year."),
        ("Appendix > Deep", "Deep text."),
    ]


def test_title_heading_compared_loosely() -> None:
    chunks = chunk_document(doc("#  the   TITLE\n\nx", title="The title"))
    assert chunks[0].section == ""


def test_heading_like_lines_inside_code_fences_are_text() -> None:
    chunks = chunk_document(doc("## Real\n\n```\n# not a heading\n```\n\nafter"))
    assert [c.section for c in chunks] == ["Real"]
    assert "# not a heading" in chunks[0].text


def test_no_chunk_crosses_a_heading() -> None:
    text = "\n\n".join(f"## S{n}\n\n" + " ".join(sentences(f"s{n}x", 12)) for n in range(4))
    chunks = chunk_document(doc(text), max_tokens=40, overlap_tokens=12)
    assert len(chunks) > 8
    for chunk in chunks:
        number = chunk.section[1:]
        assert all(word.startswith(f"s{number}x") for word in chunk.text.split() if word[0] == "s")


def test_ids_and_metadata() -> None:
    document = replace(doc(SECTIONED), url="https://example.org", guideline="G")
    chunks = chunk_document(document)
    assert [c.id for c in chunks] == [f"en-doc#{n}" for n in range(len(chunks))]
    metadata = chunks[2].metadata()
    assert metadata == {
        "id": "en-doc#2",
        "doc_id": "en-doc",
        "title": "Title",
        "section": "Management > First-line drugs",
        "language": "en",
        "source": "S",
        "guideline": "G",
        "version": "1",
        "url": "https://example.org",
    }
    json.dumps(metadata)


def test_empty_and_punctuation_only_sections_make_no_chunk() -> None:
    assert chunk_document(doc("# Title\n\n## A\n\n   \n\n## B\n\n---\n")) == []


# --- packing, limits and overlap ---------------------------------------------------------


@pytest.mark.parametrize(("max_tokens", "overlap"), [(16, 0), (50, 10), (120, 40), (200, 40)])
def test_max_tokens_respected_on_the_corpus(
    corpus: list[SourceDocument], max_tokens: int, overlap: int
) -> None:
    for document in corpus:
        chunks = chunk_document(document, max_tokens=max_tokens, overlap_tokens=overlap)
        assert chunks
        for chunk in chunks:
            assert 0 < approximate_tokens(chunk.text) <= max_tokens
            assert chunk.text == chunk.text.strip()
            assert chunk.language == document.language


def test_sentences_are_packed_whole() -> None:
    parts = sentences("a", 10)  # 8 words: 11 tokens each
    chunks = chunk_document(doc(" ".join(parts)), max_tokens=40, overlap_tokens=0)
    assert [c.text for c in chunks] == [
        " ".join(parts[0:3]),
        " ".join(parts[3:6]),
        " ".join(parts[6:9]),
        parts[9],
    ]


def test_overlap_is_whole_trailing_sentences_within_budget() -> None:
    parts = sentences("a", 12, words=6)  # 8 tokens each
    chunks = chunk_document(doc(" ".join(parts)), max_tokens=40, overlap_tokens=17)
    texts = [c.text for c in chunks]
    assert len(texts) > 2
    for previous, current in zip(texts, texts[1:], strict=False):
        previous_parts, current_parts = split_sentences(previous), split_sentences(current)
        shared = [s for s in current_parts if s in previous_parts]
        assert shared == previous_parts[-len(shared) :] == current_parts[: len(shared)]
        assert len(shared) == 2  # two sentences (16 tokens) fit in 17, three would not
        assert approximate_tokens(" ".join(shared)) <= 17
    covered = {s for text in texts for s in split_sentences(text)}
    assert covered == set(parts)


def test_overlap_never_repeats_the_whole_previous_chunk() -> None:
    parts = sentences("a", 4, words=20)  # 26 tokens each, one per chunk at max 40
    chunks = chunk_document(doc(" ".join(parts)), max_tokens=40, overlap_tokens=39)
    assert [c.text for c in chunks] == parts


def test_zero_overlap_shares_nothing() -> None:
    parts = sentences("a", 12, words=6)
    chunks = chunk_document(doc(" ".join(parts)), max_tokens=40, overlap_tokens=0)
    assert " ".join(c.text for c in chunks) == " ".join(parts)


def test_long_english_sentence_is_split_by_words() -> None:
    words = [f"w{n}" for n in range(100)]
    chunks = chunk_document(doc(" ".join(words) + "."), max_tokens=16, overlap_tokens=0)
    assert all(approximate_tokens(c.text) <= 16 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == words[:-1] + ["w99."]
    assert len(chunks[0].text.split()) == 12  # 12 words = 15.6 -> 16 tokens; 13 would be 17


def test_long_chinese_sentence_is_split_by_characters() -> None:
    text = "高血压" * 30 + "。"
    chunks = chunk_document(doc(text, language="zh"), max_tokens=20, overlap_tokens=0)
    assert [len(c.text) for c in chunks] == [20, 20, 20, 20, 11]
    assert "".join(c.text for c in chunks) == text


def test_a_word_longer_than_the_limit_is_cut() -> None:
    def by_chars(text: str) -> int:
        return len(text)

    chunks = chunk_document(doc("x" * 50), max_tokens=16, overlap_tokens=0, count_tokens=by_chars)
    assert [c.text for c in chunks] == ["x" * 16, "x" * 16, "x" * 16, "xx"]


def test_custom_token_counter_is_used() -> None:
    def by_chars(text: str) -> int:
        return len(text)

    chunks = chunk_document(doc("Aaaa bbbb. Cccc dddd. Eeee ffff."), 22, 0, by_chars)
    assert [c.text for c in chunks] == ["Aaaa bbbb. Cccc dddd.", "Eeee ffff."]


# --- sentences ---------------------------------------------------------------------------


def test_chinese_sentence_splitting() -> None:
    text = "第一句。第二句！第三句？第四句；“第五句。”第六句"
    assert split_sentences(text) == [
        "第一句。",
        "第二句！",
        "第三句？",
        "第四句；",
        "“第五句。”",
        "第六句",
    ]


def test_english_sentence_splitting() -> None:
    text = "Give aspirin, e.g. 75 mg daily. Check C. difficile! Really? (Yes.) Done.3.5 mg"
    assert split_sentences(text) == [
        "Give aspirin, e.g. 75 mg daily.",
        "Check C. difficile!",
        "Really?",
        "(Yes.)",
        "Done.3.5 mg",
    ]


def test_chinese_chunks_are_joined_without_spaces() -> None:
    text = "## 处理\n\n" + "".join(f"第{n}句话的内容比较长一些。" for n in range(12))
    chunks = chunk_document(doc(text, language="zh"), max_tokens=40, overlap_tokens=14)
    assert len(chunks) > 3
    for chunk in chunks:
        assert " " not in chunk.text
        assert chunk.section == "处理"
        assert approximate_tokens(chunk.text) <= 40
    assert chunks[1].text.startswith(split_sentences(chunks[0].text)[-1])


def test_soft_wrapped_lines_are_joined() -> None:
    chunks = chunk_document(doc("one line\nwrapped here.\n\n高血压\n患者"), overlap_tokens=0)
    assert chunks[0].text == "one line wrapped here.\n\n高血压患者"


# --- lists and tables --------------------------------------------------------------------


def test_list_items_stay_whole_and_on_their_lines() -> None:
    items = [f"- item {n}: " + " ".join(["word"] * 6) + ". More words here." for n in range(6)]
    text = "Intro sentence.\n" + "\n".join(items) + "\n  continued line of the last item."
    chunks = chunk_document(doc(text), max_tokens=40, overlap_tokens=0)
    lines = [line for c in chunks for line in c.text.split("\n")]
    assert lines == [
        "Intro sentence.",
        *items[:-1],
        items[-1] + " continued line of the last item.",
    ]


def test_an_over_long_list_item_is_split_into_sentences() -> None:
    item = "- " + " ".join(sentences("a", 6))
    chunks = chunk_document(doc(item), max_tokens=30, overlap_tokens=0)
    assert len(chunks) == 3
    assert chunks[0].text.startswith("- a0 ")
    assert all(approximate_tokens(c.text) <= 30 for c in chunks)


def test_table_rows_are_lines() -> None:
    table = "| Age | Dose |\n|---|---|\n| Adult | 500 micrograms |\n| Child | 300 micrograms |"
    chunks = chunk_document(doc("## Doses\n\n" + table))
    assert chunks[0].text == table


# --- de-duplication ----------------------------------------------------------------------


def make_chunk(n: int, text: str) -> Chunk:
    return Chunk(f"d#{n}", "d", "T", "", text, "en", None, None, None, None)


def test_deduplicate_keeps_first_of_normalised_duplicates() -> None:
    chunks = [
        make_chunk(0, "Not clinical advice."),
        make_chunk(1, "Other text."),
        make_chunk(2, "  NOT clinical\n advice. "),
        make_chunk(3, "not clinical advice."),
        make_chunk(4, "Not clinical advice!"),
    ]
    kept, dropped = deduplicate(chunks)
    assert [c.id for c in kept] == ["d#0", "d#1", "d#4"]
    assert dropped == 2
    assert deduplicate([]) == ([], 0)


def test_corpus_chunks_and_dedup(corpus: list[SourceDocument]) -> None:
    chunks = [chunk for document in corpus for chunk in chunk_document(document)]
    kept, dropped = deduplicate(chunks)
    assert len(kept) + dropped == len(chunks)
    assert len({c.id for c in chunks}) == len(chunks)
    zh_sections = {c.section.split(" > ")[0] for c in chunks if c.language == "zh"}
    assert {"适用范围", "评估", "处理", "随访"} <= zh_sections
    en_sections = {c.section.split(" > ")[0] for c in chunks if c.language == "en"}
    assert {"Scope", "Assessment", "Management", "Follow-up"} <= en_sections

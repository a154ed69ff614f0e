"""Heading-aware chunking of guideline documents, and de-duplication of chunks.

A chunk is what gets embedded, retrieved and cited, so it must be self-contained and
attributable: it never spans two sections (a citation names one section path), it is cut at
sentence boundaries (a half sentence can invert a recommendation: "do not give X ... "),
and consecutive chunks of a section share a few whole trailing sentences, so a fact that
straddles a boundary is still retrievable in one piece.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from retrieval.documents import HAN, Language, SourceDocument

TokenCounter = Callable[[str], int]

MIN_MAX_TOKENS = 16

_HAN_CHAR = re.compile(f"[{HAN}]")
_WORD = re.compile(rf"[^\W_{HAN}]+")  # a run of letters/digits that are not Han
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_TABLE_ROW = re.compile(r"^\s*\|")
_SENTENCE_END = re.compile(
    r"[.!?]+[\"'”’)\]]*(?=\s)"  # English: terminal punctuation, then whitespace
    r"|[。！？；]+[”’」』）)\]]*"  # Chinese: full-width terminals need no space after them
)
_ABBREVIATIONS = frozenset({"e.g", "i.e", "vs", "dr", "mr", "mrs", "ms", "prof", "approx", "fig"})
_ONLY_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]\s+)?\d+$")
_LAST_WORD = re.compile(r"(\S+)$")
_FIRST_WIDE = "\u2e80"  # CJK radicals onwards: Han, kana, full-width punctuation
_ATOM = re.compile(rf"[{HAN}]|[^\s{HAN}]+")  # a Han character, or a run of other non-space


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage with the metadata needed to cite it."""

    id: str
    doc_id: str
    title: str
    section: str
    text: str
    language: Language
    source: str | None
    guideline: str | None
    version: str | None
    url: str | None

    def metadata(self) -> dict[str, Any]:
        """Everything but the text, JSON-serialisable (for the index's side table)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "text"}


def approximate_tokens(text: str) -> int:
    """A tokenizer-free estimate of subword tokens, good enough to size chunks.

    Latin words and numbers count 1.3 each (English averages about 1.3 WordPiece/BPE pieces
    per word), each Han character 1, punctuation and whitespace 0. Integer arithmetic, so
    ten words are exactly 13 tokens.
    """
    words = len(_WORD.findall(text))
    return (words * 13 + 9) // 10 + len(_HAN_CHAR.findall(text))


def chunk_document(
    doc: SourceDocument,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
    count_tokens: TokenCounter | None = None,
) -> list[Chunk]:
    """Split a document into chunks of at most `max_tokens` (as `count_tokens` counts them).

    Sections come from the Markdown headings; inside a section whole sentences (list items
    and table rows as units of their own) are packed greedily, and each chunk after the
    first starts with up to `overlap_tokens` of the previous chunk's trailing sentences.
    """
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}, got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(f"overlap_tokens must be in [0, max_tokens), got {overlap_tokens}")
    count = count_tokens or approximate_tokens
    chunks: list[Chunk] = []
    for section, lines in _sections(doc):
        units = _units(lines, max_tokens, count)
        for text in _pack(units, max_tokens, overlap_tokens, count):
            chunks.append(_chunk(doc, len(chunks), section, text))
    return chunks


def deduplicate(chunks: Sequence[Chunk]) -> tuple[list[Chunk], int]:
    """Keep the first of chunks whose text is the same up to case and whitespace.

    Guideline summaries repeat boilerplate (the closing disclaimer, "see the source
    guideline"); indexed once per document it would crowd real answers out of the top k.
    """
    seen: set[str] = set()
    kept: list[Chunk] = []
    for chunk in chunks:
        key = " ".join(chunk.text.casefold().split())
        if key not in seen:
            seen.add(key)
            kept.append(chunk)
    return kept, len(chunks) - len(kept)


def split_sentences(text: str) -> list[str]:
    """English sentences end in . ! ? before whitespace; Chinese ones at 。！？；.

    A period after an abbreviation ("e.g.", "vs.", "Dr."), an initial ("C. difficile") or
    a bare list number ("1.") does not end a sentence.
    """
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.group().startswith(".") and _is_false_stop(text[start : match.start()]):
            continue
        sentences.append(text[start : match.end()])
        start = match.end()
    sentences.append(text[start:])
    return [sentence.strip() for sentence in sentences if sentence.strip()]


# --- sections ----------------------------------------------------------------------------


def _sections(doc: SourceDocument) -> Iterator[tuple[str, list[str]]]:
    """(heading path, body lines) per section, in document order, headings excluded.

    A level-1 heading that repeats the title is a container, not a section: it closes the
    sections above it but adds nothing to the path.
    """
    stack: list[tuple[int, str]] = []
    path, lines, in_fence = "", [], False
    for line in doc.text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        yield path, lines
        level, name = len(heading.group(1)), heading.group(2).strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, "" if level == 1 and _same(name, doc.title) else name))
        path, lines = " > ".join(name for _, name in stack if name), []
    yield path, lines


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


# --- units: sentences, list items, table rows --------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """The smallest piece a chunk is made of, and the separator that precedes it."""

    text: str
    sep: str  # " " inside a paragraph, "\n" between a paragraph's blocks, "\n\n" between


def _units(lines: list[str], max_tokens: int, count: TokenCounter) -> list[_Unit]:
    units: list[_Unit] = []
    for paragraph in _paragraphs(lines):
        for index, (is_item, text) in enumerate(_blocks(paragraph)):
            whole = is_item and count(text) <= max_tokens
            pieces = [text] if whole else _fitting_sentences(text, max_tokens, count)
            for number, piece in enumerate(pieces):
                sep = _glue(pieces[number - 1], piece) if number else ("\n" if index else "\n\n")
                units.append(_Unit(piece, sep))
    return units


def _glue(left: str, right: str) -> str:
    """The space that belongs between two pieces of one paragraph: none next to Chinese.

    Chinese is written without spaces, so re-joining sentences or soft-wrapped lines (PDF
    text comes one visual line at a time) with a space would put one between characters.
    """
    wide = left[-1:] >= _FIRST_WIDE or right[:1] >= _FIRST_WIDE
    return "" if wide else " "


def _paragraphs(lines: list[str]) -> Iterator[list[str]]:
    paragraph: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            paragraph.append(line)
        elif paragraph:
            yield paragraph
            paragraph = []


def _blocks(paragraph: list[str]) -> list[tuple[bool, str]]:
    """(is a list item or table row, text) blocks of one paragraph.

    A list item keeps its indented continuation lines; each table row is a block of its
    own; consecutive prose lines are soft-wrapped text. Joined lines are glued like
    sentences (see _glue), so a wrapped Chinese line gets no space.
    """
    blocks: list[tuple[bool, list[str]]] = []
    for line in paragraph:
        if _LIST_ITEM.match(line) or _TABLE_ROW.match(line):
            blocks.append((True, [line.rstrip()]))
        elif blocks and line[:1].isspace() and _LIST_ITEM.match(blocks[-1][1][0]):
            blocks[-1][1].append(line.strip())
        elif blocks and not blocks[-1][0]:
            blocks[-1][1].append(line.strip())
        else:
            blocks.append((False, [line.strip()]))
    return [(is_item, _join_lines(parts)) for is_item, parts in blocks]


def _join_lines(lines: list[str]) -> str:
    text = lines[0]
    for line in lines[1:]:
        text += _glue(text, line) + line
    return text


def _fitting_sentences(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    return [piece for s in split_sentences(text) for piece in _split_long(s, max_tokens, count)]


def _is_false_stop(before: str) -> bool:
    match = _LAST_WORD.search(before)
    if match is None:
        return False
    word = match.group(1).lstrip("(\"'“‘").casefold()
    is_initial = len(word) == 1 and word.isalpha()
    return is_initial or word in _ABBREVIATIONS or bool(_ONLY_LIST_MARKER.match(before))


def _split_long(sentence: str, max_tokens: int, count: TokenCounter) -> list[str]:
    """Cut an over-long sentence into max-size pieces at word (or Han character) edges.

    Pieces are slices of the original, so spacing and punctuation survive. A single word
    longer than the limit (a URL, a run-on identifier) is cut between characters.
    """
    if count(sentence) <= max_tokens:
        return [sentence]
    spans = [
        span for atom in _ATOM.finditer(sentence) for span in _atom_spans(atom, max_tokens, count)
    ]
    pieces: list[str] = []
    first = 0
    while first < len(spans):
        end = _piece_end(sentence, spans, first, max_tokens, count)
        pieces.append(sentence[spans[first][0] : spans[end - 1][1]])
        first = end
    return pieces


def _atom_spans(atom: re.Match[str], max_tokens: int, count: TokenCounter) -> list[tuple[int, int]]:
    if count(atom.group()) <= max_tokens:
        return [atom.span()]
    return [(i, i + 1) for i in range(atom.start(), atom.end())]


def _piece_end(
    sentence: str, spans: list[tuple[int, int]], first: int, max_tokens: int, count: TokenCounter
) -> int:
    """Index after the last span of the longest piece starting at spans[first] that fits."""
    start = spans[first][0]

    def fits(end: int) -> bool:
        return count(sentence[start : spans[end - 1][1]]) <= max_tokens

    return _last_fitting(len(spans), first, fits)


def _last_fitting(total: int, first: int, fits: Callable[[int], bool]) -> int:
    """Largest end in (first, total] with fits(end); always at least first + 1.

    Galloping then bisecting keeps each probe short, so a pathological text with no
    sentence punctuation (a table dumped from a PDF) is still cut in near-linear time.
    """
    good, step = first + 1, 1
    while good + step <= total and fits(good + step):
        good += step
        step *= 2
    bad = min(good + step, total + 1)
    while bad - good > 1:
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


# --- packing -----------------------------------------------------------------------------


def _pack(units: list[_Unit], max_tokens: int, overlap: int, count: TokenCounter) -> list[str]:
    """Greedy packing of whole units; each new chunk opens with the previous one's tail."""
    texts: list[str] = []
    current: list[_Unit] = []
    for unit in units:
        if current and count(_join([*current, unit])) > max_tokens:
            texts.append(_join(current))
            current = _overlap_tail(current, unit, max_tokens, overlap, count)
        current.append(unit)
    if current:
        texts.append(_join(current))
    # A section of nothing but rules or table borders ("---", "|---|") says nothing.
    return [text for text in texts if approximate_tokens(text) > 0]


def _overlap_tail(
    previous: list[_Unit], following: _Unit, max_tokens: int, overlap: int, count: TokenCounter
) -> list[_Unit]:
    """The longest run of `previous`'s trailing units that fits in `overlap` tokens and
    still leaves room for `following`.

    Never the whole previous chunk: the next chunk would then only restate it plus one
    unit. (The room check already implies this for a monotone counter; the slice makes it
    hold for any `count_tokens`.)
    """
    tail: list[_Unit] = []
    for unit in reversed(previous[1:]):
        candidate = [unit, *tail]
        if count(_join(candidate)) > overlap or count(_join([*candidate, following])) > max_tokens:
            break
        tail = candidate
    return tail


def _join(units: list[_Unit]) -> str:
    return (units[0].text + "".join(unit.sep + unit.text for unit in units[1:])).strip()


def _chunk(doc: SourceDocument, number: int, section: str, text: str) -> Chunk:
    return Chunk(
        id=f"{doc.id}#{number}",
        doc_id=doc.id,
        title=doc.title,
        section=section,
        text=text,
        language=doc.language,
        source=doc.source,
        guideline=doc.guideline,
        version=doc.version,
        url=doc.url,
    )

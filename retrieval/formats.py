"""One reader per corpus file format, each turning raw bytes into metadata plus a body.

Readers only parse: they return the metadata exactly as the file states it (keys
lower-cased) and the body as Markdown-style text (`#` headings, blank-line paragraphs,
`- ` list items). Everything the formats have in common (id and title fallbacks, language
detection, turning versions into strings, duplicate ids) happens once, in
`retrieval.documents`, so the five formats cannot drift apart.

A reader raises `FormatError` when the whole file is unusable. A JSON Lines file can be
partly good, so its reader also returns a `BadRecord` for each line it has to skip.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import yaml
from pypdf import PdfReader


class FormatError(Exception):
    """The file cannot be used at all; the message is the human-readable reason."""


@dataclass(frozen=True)
class RawDocument:
    """A document as its file states it, before metadata defaults are applied."""

    meta: dict[str, Any]
    body: str
    line: int | None = None  # 1-based line number of a JSON Lines record


@dataclass(frozen=True)
class BadRecord:
    """A JSON Lines line that had to be skipped while the rest of the file still loads."""

    line: int
    reason: str


Reader = Callable[[bytes], list[RawDocument | BadRecord]]


# --- shared ------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """Strict UTF-8 (a BOM is tolerated) with Unix newlines.

    Strict, because a wrongly decoded guideline would be indexed as mojibake and cited to
    clinicians; a loud Problem is better. NUL bytes never occur in real text files, so they
    mark a binary (or UTF-16) file that happens to carry a text suffix.
    """
    if b"\x00" in data:
        raise FormatError("contains NUL bytes (binary or UTF-16 file?)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not valid UTF-8 (byte {exc.start})") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lower_keys(mapping: dict[Any, Any]) -> dict[str, Any]:
    return {str(key).strip().lower(): value for key, value in mapping.items()}


def _collapse_blank_lines(lines: list[str]) -> str:
    """Join lines, keeping at most one blank line in a row and none at either end."""
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1].strip()):
            out.append(line.rstrip() if line.strip() else "")
    return "\n".join(out).strip("\n")


# --- Markdown with YAML front matter -----------------------------------------------------


def read_markdown(data: bytes) -> list[RawDocument | BadRecord]:
    meta, body = split_front_matter(decode_text(data))
    return [RawDocument(meta, body)]


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split `---` YAML `---` off the top of a Markdown file.

    Only a front matter that starts on the very first line counts, as in Jekyll, Hugo and
    Pandoc, so a horizontal rule further down is never mistaken for one.
    """
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return {}, text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        raise FormatError("front matter has no closing '---' line")
    try:
        loaded = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise FormatError(f"bad YAML front matter: {_yaml_reason(exc)}") from exc
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise FormatError("front matter is not a mapping of keys to values")
    return _lower_keys(loaded), "\n".join(lines[end + 1 :])


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """PyYAML's own message is several lines long; keep the problem and the file line."""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    mark = getattr(exc, "problem_mark", None)
    # +2: the mark is 0-based and counts from the line after the opening '---'.
    return f"{problem} (line {mark.line + 2})" if mark is not None else str(problem)


# --- HTML --------------------------------------------------------------------------------

_SKIPPED_TAGS = frozenset({"script", "style", "nav", "header", "footer", "template"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "td", "th", "tr", "table", "ul", "ol", "dl", "dt", "dd", "blockquote"}
    | {"pre", "section", "article", "main", "aside", "figure", "figcaption", "caption"}
    | {"br", "hr", "body", "head", "title"}
    | set(_HEADINGS)
)
_VOID_TAGS = frozenset({"br", "hr", "meta", "img", "input", "link", "area", "base", "col", "wbr"})


@dataclass
class _Block:
    kind: str  # "p", "li" or "h1".."h6"
    text: str


class _HtmlExtractor(HTMLParser):
    """Collects <title>, <meta name=...> and the body's text blocks in document order.

    The stdlib parser is forgiving about unclosed tags, which real exported guideline pages
    have plenty of; blocks are flushed at every block-level tag boundary, so an unclosed <p>
    or <li> still ends where the next block starts.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.blocks: list[_Block] = []
        self.title = ""
        self.lang = ""
        self._open: list[str] = []
        self._buffer: list[str] = []
        self._skip_depth = 0
        self._in_head = False
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): value or "" for name, value in attrs}
        if tag == "html":
            self.lang = attributes.get("lang", "")
        elif tag == "meta":
            self._add_meta(attributes)
        if tag in _SKIPPED_TAGS:
            self._skip_depth += 1
            return
        if tag in _BLOCK_TAGS:
            self._flush()
        self._in_head = (self._in_head or tag == "head") and tag != "body"
        self._in_title = self._in_title or tag == "title"
        if tag in _VOID_TAGS:
            return
        if tag in ("li", "p") and self._open and self._open[-1] == tag:
            self._open.pop()  # <li>a<li>b: the second item implicitly closes the first
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if tag in _BLOCK_TAGS:
            self._flush()
        if tag == "head":
            self._in_head = False
        if tag == "title":
            self._in_title = False
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self.title += data
        elif not self._in_head:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    def _add_meta(self, attributes: dict[str, str]) -> None:
        name = attributes.get("name", "").strip().lower()
        if name and name not in self.meta:
            self.meta[name] = attributes.get("content", "").strip()

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer.clear()
        if text:
            self.blocks.append(_Block(self._block_kind(), text))

    def _block_kind(self) -> str:
        for tag in reversed(self._open):
            if tag in _HEADINGS or tag == "li":
                return tag
        return "p"


def read_html(data: bytes) -> list[RawDocument | BadRecord]:
    parser = _HtmlExtractor()
    parser.feed(decode_text(data))
    parser.close()
    meta: dict[str, Any] = dict(parser.meta)
    title = " ".join(parser.title.split())
    if title:
        meta["title"] = title
    if parser.lang and not meta.get("language"):
        meta["language"] = parser.lang
    return [RawDocument(meta, _render_blocks(parser.blocks))]


def _render_blocks(blocks: list[_Block]) -> str:
    """Markdown-style text; list items of one list stay on consecutive lines."""
    parts: list[str] = []
    previous = ""
    for block in blocks:
        if block.kind in _HEADINGS:
            line = "#" * _HEADINGS[block.kind] + " " + block.text
        elif block.kind == "li":
            line = "- " + block.text
        else:
            line = block.text
        if parts:
            parts.append("\n" if block.kind == "li" and previous == "li" else "\n\n")
        parts.append(line)
        previous = block.kind
    return "".join(parts)


# --- plain text --------------------------------------------------------------------------

_TXT_KEYS = frozenset({"id", "title", "source", "guideline", "version", "language"})
_TXT_KEYS |= {"topics", "url"}
_TXT_META_LINE = re.compile(r"([A-Za-z][A-Za-z ]*?)\s*:\s*(.*)")
_LIST_ITEM = re.compile(r"\s*(?:[-*+•]|\d+[.)])\s+")
_SENTENCE_END_CHARS = ".!?。！？"


def read_text(data: bytes) -> list[RawDocument | BadRecord]:
    """Our .txt convention: title line, `Key: value` lines, blank line, then the body."""
    lines = decode_text(data).split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    if start == len(lines):
        raise FormatError("empty file")
    meta: dict[str, Any] = {"title": lines[start].strip()}
    index = start + 1
    while index < len(lines):
        match = _TXT_META_LINE.fullmatch(lines[index].strip())
        if match is None or match.group(1).lower() not in _TXT_KEYS:
            break
        meta.setdefault(match.group(1).lower(), match.group(2).strip())
        index += 1
    return [RawDocument(meta, _plain_body(lines[index:]))]


def _plain_body(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        level = _txt_heading_level(line.strip())
        if level:
            out += ["", "#" * level + " " + line.strip().rstrip(":").rstrip(), ""]
        else:
            out.append(line)
    return _collapse_blank_lines(out)


def _txt_heading_level(line: str) -> int:
    """2 for an ALL-CAPS line, 3 for a line ending in an ASCII ':', else 0 (not a heading).

    List items and lines ending like a sentence are body text even when shouted, and the
    full-width '：' is not a heading marker: Chinese prose uses it to introduce a list.
    """
    if not line or _LIST_ITEM.match(line) or line[-1] in _SENTENCE_END_CHARS:
        return 0
    if line.isupper():
        return 2
    return 3 if line.endswith(":") else 0


# --- PDF ---------------------------------------------------------------------------------

_MAX_TITLE_CHARS = 200


def read_pdf(data: bytes) -> list[RawDocument | BadRecord]:
    """Text of every page; the title from /Title, else the first line (made a '#' heading).

    pypdf raises a wide and version-dependent range of exception types on malformed input
    and warns about recoverable damage, so both are caught here: a bad PDF in a corpus must
    become a Problem, never abort the whole ingestion.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise FormatError("PDF is encrypted")
            pages = [page.extract_text() or "" for page in reader.pages]
            title = (reader.metadata.title if reader.metadata else None) or ""
        except FormatError:
            raise
        except Exception as exc:  # any pypdf failure, see the docstring
            raise FormatError(f"PDF cannot be read: {type(exc).__name__}: {exc}") from exc
    text = "\n\n".join(page.strip() for page in pages).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise FormatError("PDF has no extractable text (scanned images?)")
    if "\x00" in text:
        raise FormatError("PDF text contains NUL characters (garbled extraction)")
    meta: dict[str, Any] = {}
    if str(title).strip():
        meta["title"] = " ".join(str(title).split())
    else:
        text = _first_line_as_title(text)
    return [RawDocument(meta, text.strip())]


def _first_line_as_title(text: str) -> str:
    """Make a short first line the '# title' heading, so the title fallback finds it."""
    lines = text.strip().split("\n")
    if len(lines[0].strip()) <= _MAX_TITLE_CHARS:
        lines[0] = "# " + lines[0].strip()
    return "\n".join(lines)


# --- JSON Lines --------------------------------------------------------------------------

_JSONL_REQUIRED = ("title", "text")


def read_jsonl(data: bytes) -> list[RawDocument | BadRecord]:
    """One document per line; a bad line is reported and skipped, blank lines are ignored."""
    records: list[RawDocument | BadRecord] = []
    # split("\n"), not splitlines(): U+2028 and friends are legal inside JSON strings.
    for number, line in enumerate(decode_text(data).split("\n"), start=1):
        if line.strip():
            records.append(_jsonl_record(number, line))
    return records


def _jsonl_record(number: int, line: str) -> RawDocument | BadRecord:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return BadRecord(number, f"invalid JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(value, dict):
        return BadRecord(number, f"not a JSON object but {type(value).__name__}")
    meta = _lower_keys(value)
    for key in _JSONL_REQUIRED:
        if key not in meta:
            return BadRecord(number, f"missing {key!r}")
        if not isinstance(meta[key], str):
            return BadRecord(number, f"{key!r} is not a string")
    body = meta.pop("text")
    return RawDocument(meta, body, line=number)


READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".jsonl": read_jsonl,
}
"""File suffix (lower case) -> reader. The loader silently skips any other suffix."""

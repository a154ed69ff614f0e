"""Guideline source documents and the corpus loader.

`load_corpus` turns files and directories into `SourceDocument`s and a list of `Problem`s.
A corpus is assembled by people from many exports, so one bad file must never stop an
index build: every content problem (garbled bytes, broken front matter, a bad JSONL line,
a scanned PDF, a duplicate id) is reported and skipped. Only a path that does not exist at
all raises, because that is a mistake in the command, not in the corpus.
"""

from __future__ import annotations

import datetime as dt
import errno
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal, NamedTuple

from retrieval.formats import READERS, BadRecord, FormatError, RawDocument

Language = Literal["en", "zh"]

MAX_FILE_BYTES = 20 * 1024 * 1024
"""Larger files are refused: real guideline summaries are kilobytes, so 20 MB is a wrong
file (a scanned atlas, a database dump), and reading it would only slow the build down."""

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""Han (CJK ideograph) ranges for regex character classes: extension A, unified, compat."""

_HAN_CHAR = re.compile(f"[{HAN}]")
_ZH_SHARE = 0.2
_TITLE_HEADING = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_NOT_SLUG = re.compile(r"[\W_]+")
_BAD_ID = re.compile(r"[\s#]")


@dataclass(frozen=True)
class SourceDocument:
    """One guideline summary, its body as Markdown-style text, metadata normalised."""

    id: str
    title: str
    text: str
    language: Language
    source: str | None = None
    guideline: str | None = None
    version: str | None = None
    url: str | None = None
    topics: tuple[str, ...] = ()
    path: str = ""


@dataclass(frozen=True)
class Problem:
    """A file (or JSONL line) that was skipped, and why, in words an operator can act on."""

    path: str
    reason: str


class _Entry(NamedTuple):
    file: Path
    relative: PurePath  # to the directory given, for ids derived from the path


def load_corpus(paths: Sequence[Path]) -> tuple[list[SourceDocument], list[Problem]]:
    """Load every supported file under `paths`, in a deterministic order.

    Directories are walked recursively in sorted order, skipping hidden entries, README
    files, unsupported suffixes and symlinks that leave the directory. A file named
    explicitly is always read (or reported if its suffix is unsupported). The first
    document with a given id wins; later ones are reported as duplicates.
    """
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(path))
    documents: list[SourceDocument] = []
    problems: list[Problem] = []
    first_path: dict[str, str] = {}
    for item in (loaded for path in paths for loaded in _load_path(path)):
        if isinstance(item, Problem):
            problems.append(item)
        elif item.id in first_path:
            reason = f"duplicate id {item.id} (first in {first_path[item.id]})"
            problems.append(Problem(item.path, reason))
        else:
            first_path[item.id] = item.path
            documents.append(item)
    return documents, problems


def detect_language(text: str) -> Language:
    """'zh' when more than a fifth of the non-space characters are Han, else 'en'.

    A share, not "any Han character": Chinese guidelines are full of Latin drug names,
    units and trial acronyms, and an English one may quote a Chinese title.
    """
    visible = sum(1 for char in text if not char.isspace())
    han = len(_HAN_CHAR.findall(text))
    return "zh" if visible and han / visible > _ZH_SHARE else "en"


# --- finding files -----------------------------------------------------------------------


def _load_path(path: Path) -> Iterator[SourceDocument | Problem]:
    if not path.is_dir():
        if path.suffix.lower() not in READERS:
            yield Problem(str(path), f"unsupported file type {path.suffix or '(no suffix)'!r}")
            return
        yield from _load_file(_Entry(path, PurePath(path.name)))
        return
    for found in _walk(path):
        if isinstance(found, Problem):
            yield found
        else:
            yield from _load_file(found)


def _walk(root: Path) -> Iterator[_Entry | Problem]:
    """Every corpus file under root in sorted path order; symlinks only while inside root."""
    real_root = root.resolve()
    yield from _walk_directory(root, root, real_root, {real_root})


def _walk_directory(
    directory: Path, root: Path, real_root: Path, seen: set[Path]
) -> Iterator[_Entry | Problem]:
    try:
        children = sorted(directory.iterdir(), key=lambda child: child.name)
    except OSError as exc:
        yield Problem(str(directory), f"cannot list directory: {exc.strerror or exc}")
        return
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_symlink() and not child.resolve().is_relative_to(real_root):
            yield Problem(str(child), f"symlink leads outside {root}; not followed")
        elif child.is_dir():
            real = child.resolve()
            if real not in seen:  # else a symlink loop, or a second way into one directory
                seen.add(real)
                yield from _walk_directory(child, root, real_root, seen)
        elif _is_corpus_file(child):
            yield _Entry(child, child.relative_to(root))


def _is_corpus_file(path: Path) -> bool:
    """Supported suffix and not a README (directories document themselves in README.md)."""
    return path.suffix.lower() in READERS and path.stem.lower() != "readme"


# --- reading one file --------------------------------------------------------------------


def _load_file(entry: _Entry) -> list[SourceDocument | Problem]:
    where = str(entry.file)
    try:
        size = entry.file.stat().st_size
        if size > MAX_FILE_BYTES:
            return [Problem(where, f"larger than 20 MB ({size} bytes)")]
        data = entry.file.read_bytes()
    except OSError as exc:
        return [Problem(where, f"cannot read: {exc.strerror or exc}")]
    if not data.strip():
        return [Problem(where, "empty file")]
    try:
        records = READERS[entry.file.suffix.lower()](data)
    except FormatError as exc:
        return [Problem(where, str(exc))]
    if not records:
        return [Problem(where, "no documents in file")]
    return [_from_record(record, entry) for record in records]


def _from_record(record: RawDocument | BadRecord, entry: _Entry) -> SourceDocument | Problem:
    if isinstance(record, BadRecord):
        return Problem(str(entry.file), f"line {record.line}: {record.reason}")
    try:
        return _build(record, entry)
    except FormatError as exc:
        prefix = f"line {record.line}: " if record.line is not None else ""
        return Problem(str(entry.file), f"{prefix}{exc}")


def _build(raw: RawDocument, entry: _Entry) -> SourceDocument:
    """Apply the metadata rules shared by every format (see SourceDocument's fields)."""
    body = raw.body.strip()
    if not body:
        raise FormatError("no body text")
    meta = raw.meta
    suffix = f":{raw.line}" if raw.line is not None else ""
    return SourceDocument(
        id=_document_id(meta, entry.relative, raw.line),
        title=_text_value(meta, "title") or _first_title_heading(body) or entry.file.stem,
        text=body,
        language=_language(meta, body),
        source=_text_value(meta, "source"),
        guideline=_text_value(meta, "guideline"),
        version=_text_value(meta, "version"),
        url=_text_value(meta, "url"),
        topics=_topics(meta.get("topics")),
        path=f"{entry.file}{suffix}",
    )


def _text_value(meta: dict[str, Any], key: str) -> str | None:
    """A scalar metadata value as a string, or None when absent or blank.

    YAML turns `version: 2024-01-15` into a date and `version: 2019` into an int; both are
    versions, so they come back as the text that was written ("2024-01-15", "2019").
    """
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, dt.date):  # datetime is a date subclass
        return value.isoformat()
    if isinstance(value, list | dict | tuple | set):
        raise FormatError(f"{key!r} must be a single value, not a {type(value).__name__}")
    text = " ".join(str(value).split())
    return text or None


def _document_id(meta: dict[str, Any], relative: PurePath, line: int | None) -> str:
    given = _text_value(meta, "id")
    if given is not None:
        if _BAD_ID.search(given):
            raise FormatError(f"bad id {given!r}: ids cannot contain spaces or '#'")
        return given
    slug = _NOT_SLUG.sub("-", str(relative.with_suffix("")).lower()).strip("-") or "document"
    return f"{slug}-{line}" if line is not None else slug


def _first_title_heading(body: str) -> str | None:
    match = _TITLE_HEADING.search(body)
    return match.group(1).strip() if match else None


def _language(meta: dict[str, Any], body: str) -> Language:
    stated = _text_value(meta, "language")
    if stated is None:
        return detect_language(body)
    code = stated.lower().replace("_", "-")
    if code == "zh" or code.startswith("zh-"):
        return "zh"
    if code == "en" or code.startswith("en-"):
        return "en"
    raise FormatError(f"unsupported language {stated!r} (expected 'en' or 'zh')")


def _topics(value: Any) -> tuple[str, ...]:
    """A YAML/JSON list, or the comma-separated string that HTML metas and .txt files use."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise FormatError("'topics' must be a list or a comma-separated string")
    if any(isinstance(item, list | dict) for item in items):
        raise FormatError("'topics' must be a flat list of names")
    return tuple(text for text in (" ".join(str(item).split()) for item in items) if text)

"""Multiple-choice items: loaded strictly, subset with a seed, options shuffled with a seed.

Why strict: a benchmark file that is slightly wrong (an answer letter that is not an option,
a gap in the option letters, a repeated id) does not fail loudly at scoring time, it just
scores wrong. So every line is checked on load and the first fault stops the run with
`file:line`, the field and what was expected.

Why seeded and hash-based: a subset and a shuffle must come out the same on every machine
and in every process, so that two runs (or a resumed run and its cache) ask the same items
with the same option order. `random.Random(seed)` and SHA-256 are stable; Python's `hash()`
of a string is salted per process and is never used.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training.rewards import normalize_answer

LANGUAGES = ("en", "zh")
_UPPER = string.ascii_uppercase


class DatasetError(ValueError):
    """A benchmark file that cannot be used as it is; the message names file:line and field."""


@dataclass(frozen=True)
class McqItem:
    """One multiple-choice question with its options in letter order and its answer key."""

    id: str
    source: str
    language: str  # "en" | "zh"
    question: str
    options: tuple[tuple[str, str], ...]  # (("A", text), ("B", text), ...) in letter order
    answer: str  # normal form: "B", or "A,C" (sorted, comma-joined)
    dialogue: str | None = None  # JMED: the raw patient dialogue the question summarises

    def option_map(self) -> dict[str, str]:
        """{"A": text, ...} in letter order."""
        return dict(self.options)

    def letters(self) -> str:
        """The option letters, e.g. "ABCD"."""
        return "".join(letter for letter, _ in self.options)


def _text_field(record: Mapping[str, Any], field: str, where: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{where}: '{field}' must be a non-empty string, got {value!r:.60}")
    return value


def _options(record: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    raw = record.get("options")
    if not isinstance(raw, Mapping) or len(raw) < 2:
        raise DatasetError(f"{where}: 'options' must be an object with at least two options")
    expected = _UPPER[: len(raw)]
    if sorted(raw) != list(expected):
        raise DatasetError(
            f"{where}: 'options' letters {','.join(sorted(map(str, raw)))} are not "
            f"A..{expected[-1]} without gaps"
        )
    for letter in expected:
        text = raw[letter]
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{where}: 'options' {letter} must be a non-empty string")
    return tuple((letter, raw[letter]) for letter in expected)


def _answer(record: Mapping[str, Any], letters: str, where: str) -> str:
    raw = record.get("answer")
    if not isinstance(raw, str):
        raise DatasetError(f"{where}: 'answer' must be a string like 'B' or 'A,C'")
    parts = [part.strip() for part in raw.split(",")]
    wrong = [part for part in parts if len(part) != 1 or part not in letters]
    normal = normalize_answer(raw, letters)
    if wrong or normal is None:
        raise DatasetError(
            f"{where}: 'answer' {raw!r} is not one of the options {letters[0]}-{letters[-1]}"
        )
    return normal


def _parse_item(record: Any, where: str) -> McqItem:
    """One validated item from one decoded JSON line; `where` ("file:line") prefixes errors.

    Fields beyond the item's (pubmedqa's contexts, JMED's patient age) are ignored.
    """
    if not isinstance(record, Mapping):
        raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")
    language = record.get("language")
    if language not in LANGUAGES:
        raise DatasetError(f"{where}: 'language' {language!r} is not one of {', '.join(LANGUAGES)}")
    options = _options(record, where)
    dialogue = record.get("dialogue")
    if dialogue is not None and not isinstance(dialogue, str):
        raise DatasetError(f"{where}: 'dialogue' must be a string when present")
    return McqItem(
        id=_text_field(record, "id", where),
        source=_text_field(record, "source", where),
        language=str(language),
        question=_text_field(record, "question", where),
        options=options,
        answer=_answer(record, "".join(letter for letter, _ in options), where),
        dialogue=dialogue or None,
    )


def _read(path: Path) -> list[tuple[str, McqItem]]:
    """(file:line, item) for every item of one file, ids unique within it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    located: list[tuple[str, McqItem]] = []
    first_seen: dict[str, str] = {}
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other characters that
    # splitlines() treats as line ends (pubmedqa's abstracts do).
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc.msg})") from exc
        item = _parse_item(record, where)
        if item.id in first_seen:
            raise DatasetError(f"{where}: 'id' {item.id!r} repeats {first_seen[item.id]}")
        first_seen[item.id] = where
        located.append((where, item))
    if not located:
        raise DatasetError(f"{path}: no items")
    return located


def load_items(path: str | Path) -> list[McqItem]:
    """Every item of one JSONL benchmark file, in file order; DatasetError on the first fault."""
    return [item for _, item in _read(Path(path))]


def load_many(paths: Sequence[str | Path]) -> list[McqItem]:
    """The items of several files, in the order given; an id may appear in only one file."""
    first_seen: dict[str, str] = {}
    items: list[McqItem] = []
    for path in paths:
        for where, item in _read(Path(path)):
            if item.id in first_seen:
                raise DatasetError(f"{where}: 'id' {item.id!r} repeats {first_seen[item.id]}")
            first_seen[item.id] = where
            items.append(item)
    return items


def choose(items: Sequence[McqItem], limit: int | None, seed: int) -> list[McqItem]:
    """`limit` items drawn without replacement with `random.Random(seed)`, in their original
    order; all of them when `limit` is None or not below their number.

    >>> numbers = [McqItem(str(i), "s", "en", "q", (("A", "x"), ("B", "y")), "A") for i in range(9)]
    >>> [item.id for item in choose(numbers, 3, seed=0)]
    ['0', '6', '8']
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    if limit is None or limit >= len(items):
        return list(items)
    picked = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[index] for index in picked]


def _permutation(seed: int, item_id: str, size: int) -> list[int]:
    """A permutation of range(size) fixed by (seed, item_id): indices sorted by SHA-256."""

    def rank(index: int) -> bytes:
        return hashlib.sha256(f"{seed}\x00{item_id}\x00{index}".encode()).digest()

    return sorted(range(size), key=rank)


def shuffle_options(item: McqItem, seed: int) -> McqItem:
    """`item` with its options in a new order fixed by (seed, item.id), relettered A.. and
    with the answer key following its text.

    JMED's key is "A" for 85% of its items, so unshuffled a model that always says A looks
    good; sorting by a hash per (seed, id, option) spreads the key evenly over the letters.

    >>> item = McqItem("q1", "s", "en", "?", (("A", "red"), ("B", "blue"), ("C", "green")), "A")
    >>> shuffled = shuffle_options(item, seed=1)
    >>> shuffled.option_map()[shuffled.answer]
    'red'
    >>> shuffle_options(item, seed=1) == shuffled
    True
    """
    order = _permutation(seed, item.id, len(item.options))
    texts = [item.options[index] for index in order]
    new_letter = {old: _UPPER[position] for position, (old, _) in enumerate(texts)}
    answer = ",".join(sorted(new_letter[old] for old in item.answer.split(",")))
    options = tuple((_UPPER[position], text) for position, (_, text) in enumerate(texts))
    return replace(item, options=options, answer=answer)

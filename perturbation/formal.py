"""Formal perturbations: internet slang, dialect and spelling errors, with corrections.

Each detector reports where the patient's wording departs from standard clinical language
and, where one exists, the standard term in the message's own language ('throwing up' ->
'vomiting', '脑壳疼' -> '头痛'). The word lists are YAML data (lexicons/slang.yaml,
dialect.yaml, spelling.yaml); this module compiles them once into `PhraseTable`s.

A phrase table finds every entry that matches and keeps the leftmost, longest ones, so
'tummy ache' beats 'tummy' and '脑壳疼' beats '脑壳' whatever the order of the YAML file.
A pattern may mark the part to report with a group named `t` (English lookbehinds must be
fixed-width, so context words such as 'have' in 'have (pressure)' are matched, not
reported).

Detectors only report. Negation safety (never touching 'no'/'没', never turning a denied
symptom into a present one) is enforced when corrections are applied, in
`perturbation.normalize`.
"""

from __future__ import annotations

import re
import re._constants as _constants
import re._parser as _parser
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from perturbation.analysis import Finding
from perturbation.document import Document, lower_keeping_offsets
from perturbation.lexicon import LexiconError, load

SLANG = "formal.internet_slang"
DIALECT = "formal.dialect"
SPELLING = "formal.spelling_error"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]")
_TARGET = re.compile(r"\(\?P<t>")
# Curly apostrophes are matched as straight ones; same length, so offsets are unchanged.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})


@dataclass(frozen=True)
class Entry:
    regex: re.Pattern[str]
    correction: str | None
    confidence: float
    filler: bool


@dataclass(frozen=True)
class PhraseTable:
    """Literal terms indexed by their first word (English) or first two characters
    (Chinese), so a message costs one dictionary look-up per word; regular-expression
    entries (a few dozen) are found with one alternation."""

    language: str
    literals: dict[str, tuple[Entry, ...]]
    finder: re.Pattern[str] | None
    patterns: tuple[Entry, ...]
    # Chinese: per character, the patterns that can match where it stands (with those that
    # may start with anything); a finder hit then tries a few patterns, not all of them
    patterns_at: dict[str, tuple[Entry, ...]]
    patterns_anywhere: tuple[Entry, ...]

    def _candidates(self, text: str) -> Iterator[tuple[int, int, Entry]]:
        if self.language == "en":
            positions = word_positions(text)
            for key in positions.keys() & self.literals.keys():
                for entry in self.literals[key]:
                    for pos in positions[key]:
                        yield from _span(entry, text, pos)
            if self.finder is not None:
                for found in self.finder.finditer(text):
                    for entry in self.patterns:
                        yield from _span(entry, text, found.start())
        elif self.finder is not None:
            lower = lower_keeping_offsets(text)  # its offsets are the text's
            for found in self.finder.finditer(lower):
                pos = found.start()
                patterns = self.patterns_at.get(text[pos : pos + 1], self.patterns_anywhere)
                for entry in self.literals.get(lower[pos : pos + 2], ()) + patterns:
                    yield from _span(entry, text, pos)

    def matches(self, text: str) -> list[tuple[int, int, Entry]]:
        """Non-overlapping matches, leftmost first and the longest at each position."""
        found = sorted(set(self._candidates(text)), key=lambda m: (m[0], m[0] - m[1]))
        out: list[tuple[int, int, Entry]] = []
        for match in found:
            if not out or match[0] >= out[-1][1]:
                out.append(match)
        return out


def _span(entry: Entry, text: str, pos: int) -> Iterator[tuple[int, int, Entry]]:
    match = entry.regex.match(text, pos)
    if match is not None:
        start, end = match.span("t") if "t" in entry.regex.groupindex else match.span()
        if end > start:
            yield start, end, entry


_KEY_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9']*")


def _key(word: str) -> str:
    return word.lower().replace("'", "")


@lru_cache(maxsize=16)
def word_positions(text: str) -> dict[str, tuple[int, ...]]:
    """Where each distinct word starts (lower case, apostrophes removed), computed once per
    message and shared by every English table: each table then only intersects key sets."""
    positions: dict[str, list[int]] = {}
    for match in _KEY_WORD.finditer(text):
        word = match.group()
        positions.setdefault(_key(word), []).append(match.start())
        if "'" in word:  # "hubby's", "tummy's": the word before the clitic is a key too
            positions.setdefault(_key(word.split("'")[0]), []).append(match.start())
    return {key: tuple(starts) for key, starts in positions.items()}


def _body(item: Mapping[str, Any]) -> str:
    if "pattern" in item:
        return str(item["pattern"])
    body = r"\s+".join(re.escape(part) for part in str(item["term"]).split())
    return body.replace("'", "'?")


def _source(body: str, language: str) -> str:
    """The full expression of one entry: English (and Latin-letter) entries get word edges."""
    if language == "en" or _ASCII_WORD.search(body[:1] + body[-1:]):
        return rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])"
    return body


def _finder(bodies: list[str], language: str) -> re.Pattern[str] | None:
    """One alternation that finds where an entry may start. Word edges are checked once,
    outside the alternation (per alternative they made the scan ten times slower); each
    entry's own expression confirms the match."""
    if not bodies:
        return None
    alternatives = [_TARGET.sub("(?:", body) for body in bodies]
    alternation = "|".join(alternatives)
    if language == "en":
        # every English entry starts with a letter: skip spaces, punctuation and Chinese
        alternation = _by_first_letter(alternatives) or alternation
        alternation = rf"(?<![A-Za-z0-9])(?=[A-Za-z])(?:{alternation})"
    else:
        # a literal prefilter: the characters an entry can start with (a superset), checked
        # once per position before the alternatives are tried one by one
        firsts: set[str] = set()
        for body in bodies:
            chars = _first_chars(body)
            if chars is None:
                break
            firsts |= chars
        else:
            chars_class = "".join(re.escape(c) for c in sorted(firsts))
            alternation = rf"(?=[{chars_class}])(?:{alternation})"
    return re.compile(alternation, re.IGNORECASE)


def _by_first_letter(alternatives: list[str]) -> str | None:
    """The alternatives regrouped by the letter a match can start with, each group behind
    a look-ahead on its letter (case-blind, like the alternatives), the order kept within a
    group. Case-blind alternatives keep `re` from ruling one out on its first character by
    itself, so without this every word start tries them all. The first alternative that
    matches is unchanged: one that cannot start with the letter cannot match there. None
    when an alternative has a capturing group (its copies would renumber the groups that
    back-references name)."""
    groups: dict[str, list[str]] = {}
    for alternative in alternatives:
        if re.compile(alternative).groups:
            return None
        firsts = _first_chars(alternative)
        letters = string.ascii_lowercase
        if firsts is not None and all(char.isascii() for char in firsts):
            letters = "".join(sorted({char.lower() for char in firsts if char.isalpha()}))
        for letter in letters:
            groups.setdefault(letter, []).append(alternative)
    return "|".join(
        f"(?=[{letter}])(?:{'|'.join(members)})" for letter, members in sorted(groups.items())
    )


def _first_chars(body: str) -> set[str] | None:
    """The characters a match of `body` can start with, or None when unknown or unbounded."""
    try:
        parsed = _parser.parse(_TARGET.sub("(?:", body))
    except re.error:
        return None
    found = _firsts(list(parsed))
    return None if found is None or found[1] else found[0]


def _firsts(items: list[Any]) -> tuple[set[str], bool] | None:
    """(possible first characters, whether the sequence can match the empty string)."""
    chars: set[str] = set()
    for op, av in items:
        found = _first_of(op, av)
        if found is None:
            return None
        chars |= found[0]
        if not found[1]:
            return chars, False
    return chars, True


def _first_of(op: Any, av: Any) -> tuple[set[str], bool] | None:
    c = _constants
    if op is c.LITERAL:
        return {chr(av)}, False
    if op is c.IN:
        chars: set[str] = set()
        for kind, value in av:
            if kind is c.LITERAL:
                chars.add(chr(value))
            elif kind is c.RANGE and value[1] - value[0] <= 512:
                chars.update(chr(i) for i in range(value[0], value[1] + 1))
            else:
                return None
        return chars, False
    if op in (c.ASSERT, c.ASSERT_NOT, c.AT):  # zero-width: the next item decides
        return set(), True
    if op is c.SUBPATTERN:
        return _firsts(list(av[-1]))
    if op is c.BRANCH:
        union: set[str] = set()
        nullable = False
        for alternative in av[1]:
            found = _firsts(list(alternative))
            if found is None:
                return None
            union |= found[0]
            nullable = nullable or found[1]
        return union, nullable
    if op in (c.MAX_REPEAT, c.MIN_REPEAT):
        found = _firsts(list(av[2]))
        return None if found is None else (found[0], found[1] or av[0] == 0)
    return None


def compile_table(items: Iterable[Mapping[str, Any]], language: str, default: float) -> PhraseTable:
    """Compile lexicon entries ({term|pattern, correction, confidence?, filler?})."""
    literals: dict[str, list[Entry]] = {}
    patterns: list[Entry] = []
    starts: list[frozenset[str] | None] = []  # per pattern, see `_uncased_first_chars`
    bodies: list[str] = []
    for item in items:
        if "term" not in item and "pattern" not in item:
            raise LexiconError(f"lexicon entry without term or pattern: {item!r}")
        body = _body(item)
        correction = item.get("correction")
        entry = Entry(
            regex=re.compile(_source(body, language), re.IGNORECASE),
            correction=None if correction is None else str(correction),
            confidence=float(item.get("confidence", default)),
            filler=bool(item.get("filler", False)),
        )
        if "pattern" in item:
            patterns.append(entry)
            bodies.append(body)
            starts.append(_uncased_first_chars(body))
            continue
        term = str(item["term"])
        key = _key(term.split()[0]) if language == "en" else term[:2].lower()
        if language == "zh":
            if len(key) < 2:
                raise LexiconError(f"Chinese lexicon term shorter than 2 characters: {term!r}")
            bodies.append(body)
        literals.setdefault(key, []).append(entry)
    pairs = list(zip(patterns, starts, strict=True))
    patterns_at = {
        char: tuple(entry for entry, chars in pairs if chars is None or char in chars)
        for char in set().union(*(chars for _, chars in pairs if chars is not None))
    }
    anywhere = tuple(entry for entry, chars in pairs if chars is None)
    return PhraseTable(
        language,
        {k: tuple(v) for k, v in literals.items()},
        _finder(bodies, language),
        tuple(patterns),
        patterns_at,
        anywhere,
    )


def _uncased_first_chars(body: str) -> frozenset[str] | None:
    """The characters a match of `body` must start with, when they are known and have no
    case (Han characters: the case-blind regex matches them exactly); else None, for a
    pattern to be tried wherever its table's finder stops."""
    chars = _first_chars(body)
    if not chars or any(char.lower() != char or char.upper() != char for char in chars):
        return None
    return frozenset(chars)


@cache
def phrase_tables(name: str) -> dict[str, PhraseTable]:
    """The compiled 'en' and 'zh' tables of lexicon `name` (slang or dialect), cached."""
    data = load(name)
    default = float(data.get("default_confidence", 0.8))
    return {lang: compile_table(data.get(lang) or [], lang, default) for lang in ("en", "zh")}


@cache
def filler_terms() -> frozenset[str]:
    """Slang with no clinical meaning ('lol', 'xswl'), which the normalizer may drop."""
    data = load("slang")
    return frozenset(
        str(item["term"]).lower()
        for lang in ("en", "zh")
        for item in data.get(lang) or []
        if item.get("filler") and "term" in item
    )


def _scan(doc: Document, tables: Mapping[str, PhraseTable], subcategory: str) -> list[Finding]:
    text = doc.text
    if "\u2019" in text or "\u2018" in text:  # translating costs a copy of the message
        text = text.translate(_APOSTROPHES)
    languages = ["en", "zh"] if doc.language == "zh" or _CJK.search(text) else ["en"]
    findings: list[Finding] = []
    for lang in languages:
        for start, end, entry in tables[lang].matches(text):
            findings.append(
                Finding(subcategory, start, end, doc.text[start:end], entry.confidence,
                        entry.correction)
            )  # fmt: skip
    return findings


def detect_internet_slang(doc: Document) -> list[Finding]:
    """Chat abbreviations, slang and hyperbole ('tbh', 'puking', 'xswl', '肚子疼死了'),
    plus drug street names from redmed ('roofies' -> flunitrazepam)."""
    from perturbation.spelling import drug_slang_findings

    findings = _scan(doc, phrase_tables("slang"), SLANG)
    taken = bytearray(len(doc.text))
    for f in findings:
        taken[f.start : f.end] = b"\x01" * (f.end - f.start)
    findings += [f for f in drug_slang_findings(doc) if taken.find(1, f.start, f.end) == -1]
    return sorted(findings, key=lambda f: f.start)


def detect_dialect(doc: Document) -> list[Finding]:
    """Regional and colloquial words for body parts and symptoms ('poorly', 'chesty cough',
    'sugar' for diabetes, '脑壳疼', '拉肚子', '胳肢窝')."""
    return _scan(doc, phrase_tables("dialect"), DIALECT)


def detect_spelling_error(doc: Document) -> list[Finding]:
    """Misspelt symptoms, body parts, conditions and drugs ('feaver', 'ibuprofin',
    '咳簌', '高雪压'): see `perturbation.spelling`."""
    from perturbation.spelling import spelling_findings

    return spelling_findings(doc)

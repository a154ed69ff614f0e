"""Spelling errors: a reviewed misspelling list, redmed drug misspellings, and a cautious
edit-distance fallback for clinical words.

Order of trust, highest first:

1. the hand-written lists in lexicons/spelling.yaml ('feaver' -> 'fever', '咳簌' -> '咳嗽');
2. redmed's drug misspellings ('ibuprofin', 'amoxicilin'), filtered in `perturbation.drugs`;
3. the fallback: an English word of at least 5 letters, unknown to every list we have, one
   edit (5-9 letters) or two edits (10+ letters) from exactly one clinical vocabulary word.

The fallback is where false positives come from, so it refuses: common English words and
their inflections, words of our slang/dialect lexicons, drug names, capitalised words inside
a sentence (names), all-caps words (acronyms) and ties between two candidates. Candidates
are found with a deletion index (SymSpell's idea) so a 2,000-character message costs a few
dictionary look-ups per word, not a scan of the vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from perturbation.analysis import Finding
from perturbation.document import Document, per_document
from perturbation.drugs import drug_lexicon
from perturbation.edit_distance import distance
from perturbation.formal import SLANG, SPELLING, PhraseTable, compile_table
from perturbation.lexicon import load

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")
_SUFFIXES = ("ing", "ed", "es", "s", "ly", "d", "er", "est", "y", "ness")
_SENTENCE_END = ".!?\n"
_DRUG_MISSPELLING_CONFIDENCE = 0.75
_DRUG_SLANG_CONFIDENCE = 0.7


@dataclass(frozen=True)
class SpellingTables:
    en: PhraseTable
    zh: PhraseTable
    guard: frozenset[str]  # words the fallback and the drug list never touch
    vocabulary: frozenset[str]
    deletes: dict[str, frozenset[str]]  # deletion variant -> vocabulary words
    fallback_confidence: float


def _deletions(word: str, depth: int) -> set[str]:
    """`word` with up to `depth` characters deleted (the keys of the deletion index)."""
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


@cache
def tables() -> SpellingTables:
    data = load("spelling")
    default = float(data.get("default_confidence", 0.9))
    en_items = [{"term": k, "correction": v} for k, v in (data.get("en") or {}).items() if v]
    en_items += list(data.get("en_patterns") or [])
    zh_items = [{"term": k, "correction": v} for k, v in (data.get("zh") or {}).items() if v]
    zh_items += list(data.get("zh_patterns") or [])
    vocabulary = frozenset(str(w).lower() for w in data["vocabulary"])

    guard = {str(w).lower() for w in data["common_words"]} | set(vocabulary)
    guard |= {str(k).lower() for k in data.get("en") or {}}
    guard |= {str(v).lower() for v in (data.get("en") or {}).values() if v}
    for name in ("slang", "dialect"):
        for item in load(name).get("en") or []:
            guard.update(w.lower() for w in _WORD.findall(str(item.get("term", ""))))
            guard.update(w.lower() for w in _WORD.findall(str(item.get("correction") or "")))
    guard |= drug_lexicon().known

    deletes: dict[str, set[str]] = {}
    for word in vocabulary:
        for variant in _deletions(word, 2):
            deletes.setdefault(variant, set()).add(word)
    return SpellingTables(
        en=compile_table(en_items, "en", default),
        zh=compile_table(zh_items, "zh", default),
        guard=frozenset(guard),
        vocabulary=vocabulary,
        deletes={k: frozenset(v) for k, v in deletes.items()},
        fallback_confidence=float(data.get("fallback_confidence", 0.6)),
    )


def _known(word: str, guard: frozenset[str]) -> bool:
    """A real word or an inflection of one ('coughed', 'fevers', 'kneeling')."""
    if word in guard:
        return True
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            if (
                stem in guard
                or stem + "e" in guard
                or (stem[-1:] == stem[-2:-1] and stem[:-1] in guard)
            ):
                return True
            if (
                suffix in ("ed", "es", "er", "est")
                and stem.endswith("i")
                and stem[:-1] + "y" in guard
            ):
                return True
    return False


def _same_onset(word: str, candidate: str) -> bool:
    """Typos rarely change the first letter, except silent or sound-alike openings
    ('neumonia', 'sorasis', 'flem')."""
    if word[0] == candidate[0]:
        return True
    if candidate[:2] in ("pn", "ps", "kn", "wr", "rh") and word[0] == candidate[1]:
        return True
    return candidate.startswith("ph") and word[0] == "f"


@lru_cache(maxsize=65536)
def fallback_correction(word: str) -> str | None:
    """The single clinical word `word` is a likely misspelling of, else None.

    >>> fallback_correction("palpitatoins"), fallback_correction("swolllen")
    ('palpitations', 'swollen')
    >>> fallback_correction("never"), fallback_correction("fevers"), fallback_correction("Maria")
    (None, None, None)
    """
    t = tables()
    lower = word.lower()
    if len(lower) < 5 or not lower.isalpha() or _known(lower, t.guard):
        return None
    if lower in drug_lexicon().misspellings:
        return None
    limit = 1 if len(lower) < 10 else 2
    candidates: set[str] = set()
    for variant in _deletions(lower, limit):
        candidates |= t.deletes.get(variant, frozenset())
    scored = sorted((distance(lower, c), c) for c in candidates)
    scored = [(d, c) for d, c in scored if 0 < d <= limit and _same_onset(lower, c)]
    if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
        return None
    return scored[0][1]


def _is_name_like(text: str, start: int, word: str) -> bool:
    """Capitalised inside a sentence (a name), or all capitals (an acronym)."""
    if len(word) > 1 and word.isupper():
        return True
    if not word[0].isupper():
        return False
    before = text[:start].rstrip()
    return bool(before) and before[-1] not in _SENTENCE_END


@per_document
def _words(doc: Document) -> frozenset[str]:
    """The message's distinct words, lower-cased: the spelling and drug-slang checks both
    look them up, so one pass over the message serves both."""
    return frozenset(_WORD.findall(doc.text.lower()))


def spelling_findings(doc: Document) -> list[Finding]:
    t = tables()
    findings: list[Finding] = []
    taken = bytearray(len(doc.text))
    for table in (t.en, t.zh) if doc.language == "zh" or not doc.text.isascii() else (t.en,):
        for start, end, entry in table.matches(doc.text):
            findings.append(
                Finding(SPELLING, start, end, doc.text[start:end], entry.confidence,
                        entry.correction)
            )  # fmt: skip
            taken[start:end] = b"\x01" * (end - start)

    misspellings = drug_lexicon().misspellings
    words = _words(doc)
    corrections: dict[str, tuple[str, float]] = {
        w: (misspellings[w], _DRUG_MISSPELLING_CONFIDENCE) for w in words & misspellings.keys()
    }
    for word in words - t.guard - corrections.keys():
        if len(word) >= 5 and (correction := fallback_correction(word)) is not None:
            corrections[word] = (correction, t.fallback_confidence)
    if not corrections:
        return sorted(findings, key=lambda f: f.start)
    for match in _words_regex(frozenset(corrections)).finditer(doc.text):
        start, end = match.span()
        word = match.group()
        correction, confidence = corrections[word.lower()]
        if taken.find(1, start, end) != -1:
            continue
        if confidence == t.fallback_confidence and _is_name_like(doc.text, start, word):
            continue
        findings.append(Finding(SPELLING, start, end, word, confidence, correction))
    return sorted(findings, key=lambda f: f.start)


@lru_cache(maxsize=256)
def _words_regex(words: frozenset[str]) -> re.Pattern[str]:
    """Where these words occur as whole words (same edges as `_WORD`)."""
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z'-])(?:{alternation})(?![A-Za-z'-])", re.IGNORECASE)


def drug_slang_findings(doc: Document) -> list[Finding]:
    """Street names of drugs (redmed's Urban Dictionary column), as internet slang."""
    slang = drug_lexicon().slang
    hits = _words(doc) & slang.keys()
    if not hits:
        return []
    return [
        Finding(
            SLANG, m.start(), m.end(), m.group(), _DRUG_SLANG_CONFIDENCE, slang[m.group().lower()]
        )
        for m in _words_regex(frozenset(hits)).finditer(doc.text)
    ]
